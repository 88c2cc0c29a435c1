"""ResNet feature extractor of the anchor-based detector families (RetinaNet, Faster R-CNN).

The usual ImageNet ResNet trunk (He et al., arXiv:1512.03385): a 7x7 stride-2 stem, a 3x3
stride-2 max pool, four stages of residual blocks at strides 4, 8, 16, 32 (C2-C5). The
second seed's detectors use ResNet101 (SPEC section 11); ResNet50 is the lighter choice,
and ``width`` shrinks every layer for CPU-sized runs. There are no pretrained weights here
(nothing is downloaded): the families train from scratch.
"""

import chainer
import chainer.functions as F

from kr.links import check_width
from kr.links import ConvBN
from kr.links import RESNET_STEM_CHANNELS
from kr.links import resnet_layout
from kr.links import resnet_stages
from kr.links import scale_channels

#: Strides of the stage outputs C2, C3, C4, C5.
FEATURE_STRIDES = (4, 8, 16, 32)


class ResNetFeatures(chainer.Chain):
    """ResNet trunk returning the outputs of its four stages.

    Args:
        depth: 18, 34, 50 or 101.
        width: Channel multiplier of every layer (1.0 = the standard network).
        n_stages: Build only the first this many stages (Faster R-CNN's C4 trunk stops at
            3 and runs the fourth stage as its box head).

    Call:
        ``x``: ``(N, 3, H, W)`` float32 normalised images, ``H`` and ``W`` multiples of 32.

    Returns:
        list of ``n_stages`` Variables at strides :data:`FEATURE_STRIDES`, with
        :attr:`channels` channels.
    """

    def __init__(self, depth: int = 50, width: float = 1.0, n_stages: int = 4):
        super().__init__()
        check_width(width)
        if not 1 <= n_stages <= 4:
            raise ValueError('n_stages must be 1 to 4, got {}'.format(n_stages))
        block, n_blocks = resnet_layout(depth)
        self.depth = depth
        stem_ch = scale_channels(RESNET_STEM_CHANNELS, width)
        stages, channels = resnet_stages(stem_ch, block, n_blocks,
                                         lambda c: scale_channels(c, width))
        #: The channels of each stage output (all four, built or not).
        self.all_channels = channels
        self.channels = channels[:n_stages]
        with self.init_scope():
            self.stem = ConvBN(3, stem_ch, 7, 2)
            self.stages = chainer.ChainList(*list(stages)[:n_stages])

    def forward(self, x):
        h = F.max_pooling_2d(self.stem(x), 3, 2, pad=1, cover_all=False)
        features = []
        for stage in self.stages:
            h = stage(h)
            features.append(h)
        return features
