"""ResNet18 encoder of the CenterNet detector (SPEC section 3).

The stem is a 7x7 stride-2 convolution without max-pooling, so the first residual stage
already works at stride 4. Basic blocks follow He et al., "Deep Residual Learning for Image
Recognition" (arXiv:1512.03385).
"""

import chainer

from kr.links import BasicBlock
from kr.links import check_width
from kr.links import ConvBN
from kr.links import scale_channels

#: Channels of the encoder stages at strides 4, 8, 16, 32 for ``width=1.0`` (ResNet18).
STAGE_CHANNELS = (64, 128, 256, 512)
#: Channels of the stride-2 stem convolution for ``width=1.0``.
STEM_CHANNELS = 64


class ResNet18Encoder(chainer.Chain):
    """ResNet18 feature pyramid: stem 7x7/2, then pairs of basic blocks
    64/2, 64, 128/2, 128, 256/2, 256, 512/2, 512 (channels times ``width``).

    Args:
        width: Channel multiplier (1.0 = the original network).

    Call:
        ``x``: ``(N, 3, H, W)`` float32 normalised images, ``H`` and ``W`` multiples of 32.

    Returns:
        list of four ``Variable``: features at strides 4, 8, 16, 32, shapes
        ``(N, C_k, H / s, W / s)`` with ``C_k`` = :attr:`channels` ``[k]``.
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        check_width(width)
        self.channels = tuple(scale_channels(c, width) for c in STAGE_CHANNELS)
        stem = scale_channels(STEM_CHANNELS, width)
        with self.init_scope():
            self.stem = ConvBN(3, stem, 7, 2)
            in_ch = stem
            for k, out_ch in enumerate(self.channels):
                setattr(self, 'res{}a'.format(k + 1), BasicBlock(in_ch, out_ch, 2))
                setattr(self, 'res{}b'.format(k + 1), BasicBlock(out_ch, out_ch, 1))
                in_ch = out_ch

    def forward(self, x):
        h = self.stem(x)
        features = []
        for k in range(len(self.channels)):
            h = self['res{}a'.format(k + 1)](h)
            h = self['res{}b'.format(k + 1)](h)
            features.append(h)
        return features
