"""Building blocks shared by the model families: ConvBN, the residual blocks and ResNet stages.

Both are made of the links of :mod:`kr.functions`, which run our CPU kernels on the CPU and
Chainer's own functions (so cuDNN) on a GPU; their parameters are laid out as Chainer's
(``conv/W``, ``bn/gamma`` ...), so snapshots load either way.
"""

import chainer
import chainer.functions as F
from chainer import initializers

from kr.functions import BatchNormalization
from kr.functions import Convolution2D


#: Narrowest layer a ``width`` multiplier may produce (keeps BN statistics meaningful).
MIN_CHANNELS = 4


def scale_channels(channels: int, width: float) -> int:
    """``channels x width`` rounded, at least :data:`MIN_CHANNELS`."""
    return max(MIN_CHANNELS, int(round(channels * width)))


def check_width(width: float) -> None:
    """Raise ValueError unless ``width`` (a channel multiplier) is a positive number."""
    if not width > 0:
        raise ValueError('width must be positive, got {}'.format(width))


def identity(x):
    """The activation of a layer without one."""
    return x


class ConvBN(chainer.Chain):
    """Convolution without bias, batch normalisation, then ``activation``.

    Args:
        in_ch: Input channels.
        out_ch: Output channels.
        ksize: Square kernel side; padding keeps the size at stride 1 (``ksize // 2``).
        stride: Stride.
        depthwise: One filter per channel (``out_ch`` must equal ``in_ch``).
        activation: Function applied last (:func:`identity` for none).

    Forward: ``(N, in_ch, H, W)`` -> ``(N, out_ch, ceil(H / stride), ceil(W / stride))``
    (for odd ``ksize``).
    """

    def __init__(self, in_ch: int, out_ch: int, ksize: int = 1, stride: int = 1,
                 depthwise: bool = False, activation=F.relu):
        super().__init__()
        if depthwise and in_ch != out_ch:
            raise ValueError('a depthwise convolution keeps the channel count: {} != {}'.format(
                in_ch, out_ch))
        self.activation = activation
        self.depthwise = depthwise
        self.stride = stride
        self.pad = ksize // 2
        with self.init_scope():
            self.conv = Convolution2D(in_ch, out_ch, ksize, stride, self.pad, nobias=True,
                                      initialW=initializers.HeNormal(),
                                      groups=in_ch if depthwise else 1)
            self.bn = BatchNormalization(out_ch)

    def forward(self, x):
        return self.activation(self.bn(self.conv(x)))


class BasicBlock(chainer.Chain):
    """Residual basic block (He et al., arXiv:1512.03385): two 3x3 conv + BN (ReLU
    between), added to the input, or to its 1x1 conv + BN projection when the stride or the
    channel count changes; ReLU last.

    Args:
        in_ch: Input channels.
        ch: Output channels.
        stride: Stride of the first convolution and of the projection.
    """

    #: Output channels per ``ch`` (a bottleneck block has 4).
    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int = 1):
        super().__init__()
        with self.init_scope():
            self.conv1 = ConvBN(in_ch, ch, 3, stride)
            self.conv2 = ConvBN(ch, ch, 3, activation=identity)
            self.shortcut = (ConvBN(in_ch, ch, 1, stride, activation=identity)
                             if stride != 1 or in_ch != ch else None)

    def forward(self, x):
        h = self.conv2(self.conv1(x))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class Bottleneck(chainer.Chain):
    """Residual bottleneck block: 1x1 reduce, 3x3 (carrying the stride, as in the common
    "v1.5" variant), 1x1 expand x4, added to the input or to its 1x1 conv + BN projection;
    ReLU last.

    Args:
        in_ch: Input channels.
        ch: Inner channels (the output has ``4 * ch``).
        stride: Stride of the 3x3 convolution and of the projection.
    """

    #: Output channels per ``ch``.
    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int = 1):
        super().__init__()
        out_ch = ch * self.expansion
        with self.init_scope():
            self.conv1 = ConvBN(in_ch, ch, 1)
            self.conv2 = ConvBN(ch, ch, 3, stride)
            self.conv3 = ConvBN(ch, out_ch, 1, activation=identity)
            self.shortcut = (ConvBN(in_ch, out_ch, 1, stride, activation=identity)
                             if stride != 1 or in_ch != out_ch else None)

    def forward(self, x):
        h = self.conv3(self.conv2(self.conv1(x)))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


#: ResNet depth -> (block, blocks per stage) (He et al., arXiv:1512.03385, table 1).
RESNET_LAYOUTS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}
#: Stage widths (a basic block's output; a bottleneck's inner width) and strides.
RESNET_STAGE_CHANNELS = (64, 128, 256, 512)
RESNET_STAGE_STRIDES = (1, 2, 2, 2)
#: Channels of the 7x7 stem convolution.
RESNET_STEM_CHANNELS = 64


def resnet_layout(depth: int):
    """``(block, blocks per stage)`` of a ResNet depth.

    Raises:
        ValueError: A depth that is not one of :data:`RESNET_LAYOUTS` (they are named).
    """
    if depth not in RESNET_LAYOUTS:
        raise ValueError('no ResNet of depth {}: choose one of {}'.format(
            depth, ', '.join(str(d) for d in sorted(RESNET_LAYOUTS))))
    return RESNET_LAYOUTS[depth]


def resnet_stages(in_ch: int, block, n_blocks, scaled=int):
    """The four residual stages of a ResNet (strides 1, 2, 2, 2).

    Args:
        in_ch: Channels entering the first stage (the stem's output).
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        n_blocks: Blocks per stage, e.g. ``(3, 4, 6, 3)``.
        scaled: Maps a stage's nominal width (:data:`RESNET_STAGE_CHANNELS`) to the channels
            built (a width multiplier; default: unchanged).

    Returns:
        tuple ``(stages, channels)``: a ``chainer.ChainList`` of four ``chainer.Sequential``
        stages and the output channels of each.
    """
    stages, channels = [], []
    for ch, stride, n in zip(RESNET_STAGE_CHANNELS, RESNET_STAGE_STRIDES, n_blocks):
        ch = scaled(ch)
        blocks = []
        for i in range(n):
            blocks.append(block(in_ch, ch, stride if i == 0 else 1))
            in_ch = ch * block.expansion
        stages.append(chainer.Sequential(*blocks))
        channels.append(in_ch)
    return chainer.ChainList(*stages), tuple(channels)
