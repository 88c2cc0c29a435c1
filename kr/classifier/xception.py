"""Xception character classifier (Chollet, arXiv:1610.02357), one of the second seed's.

Entry flow, 8 middle-flow blocks and exit flow of the paper, then global average pooling,
dropout and the class layer ("backbone, average pooling, dropout, softmax").
"""

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import initializers

from kr.classifier.base import ClassifierBase
from kr.functions import BatchNormalization
from kr.functions import depthwise_convolution_2d
from kr.functions import pointwise_convolution_2d
from kr.classifier.layers import ClassifierHead
from kr.classifier.layers import global_average_pool
from kr.classifier.transforms import INPUT_SIZE
from kr.links import ConvBN
from kr.links import identity

#: Channels of the paper's flows (Figure 5).
ENTRY_CONV_CH = (32, 64)
ENTRY_BLOCK_CH = (128, 256, 728)
MIDDLE_CH = 728
MIDDLE_BLOCKS = 8
EXIT_BLOCK_CH = (728, 1024)
EXIT_CONV_CH = (1536, 2048)
#: Dropout before the class layer: the seed names dropout without a ratio; 0.5 is our choice.
DROPOUT_RATIO = 0.5


class SeparableConvBN(chainer.Chain):
    """3x3 depthwise then 1x1 pointwise convolution (nothing between), then BN."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        init = initializers.HeNormal()
        with self.init_scope():
            self.depthwise = L.Convolution2D(in_ch, in_ch, 3, 1, 1, nobias=True, initialW=init,
                                             groups=in_ch)
            self.pointwise = L.Convolution2D(in_ch, out_ch, 1, nobias=True, initialW=init)
            self.bn = BatchNormalization(out_ch)

    def forward(self, x):
        h = depthwise_convolution_2d(x, self.depthwise.W, 1, 1)
        return self.bn(pointwise_convolution_2d(h, self.pointwise.W))


class XceptionBlock(chainer.Chain):
    """ReLU + separable conv + BN, repeated; 3x3 max pool when strided; residual connection.

    Args:
        channels: ``(in, c1, c2, ...)``: one separable conv per step.
        stride: 2 ends the block with a 3x3/2 max pool and projects the shortcut with a 1x1/2
            conv + BN; 1 keeps an identity shortcut (if the channels match).
        relu_first: Start with a ReLU (False only for the first block, which follows a ReLU).
    """

    def __init__(self, channels, stride: int = 1, relu_first: bool = True):
        super().__init__()
        self.stride = stride
        self.relu_first = relu_first
        with self.init_scope():
            self.convs = chainer.ChainList(*[SeparableConvBN(a, b)
                                             for a, b in zip(channels[:-1], channels[1:])])
            self.shortcut = (ConvBN(channels[0], channels[-1], 1, stride, activation=identity)
                             if stride != 1 or channels[0] != channels[-1] else None)

    def forward(self, x):
        h = x
        for i, conv in enumerate(self.convs):
            if i > 0 or self.relu_first:
                h = F.relu(h)
            h = conv(h)
        if self.stride != 1:
            h = F.max_pooling_2d(h, 3, self.stride, pad=1, cover_all=False)
        return h + (x if self.shortcut is None else self.shortcut(x))


class Xception(ClassifierBase):
    """Xception classifier (arXiv:1610.02357).

    Entry: 3x3/2 conv 32 and 3x3 conv 64 (+ BN + ReLU), three strided blocks to 128, 256,
    728 channels; middle: eight 3-conv identity blocks at 728; exit: a strided block
    728 -> 1024, separable convs 1536 and 2048 (+ BN + ReLU); then global average pool,
    dropout and FC. Padding keeps sizes (the paper's first conv is unpadded), so a 112 x 112
    crop ends at 4 x 4.

    Arguments and forward as :class:`~kr.classifier.MobileNetV3` (``width`` scales every
    flow, rounded to multiples of 8).
    """

    def __init__(self, out_ch: int, width: float = 1.0, input_size: int = INPUT_SIZE,
                 dropout_ratio: float = DROPOUT_RATIO):
        super().__init__(out_ch, width, input_size)
        ch = self.scaled
        c1, c2 = (ch(c) for c in ENTRY_CONV_CH)
        blocks = []
        in_ch = c2
        for i, c in enumerate(ENTRY_BLOCK_CH):
            blocks.append(XceptionBlock((in_ch, ch(c), ch(c)), 2, relu_first=i > 0))
            in_ch = ch(c)
        for _ in range(MIDDLE_BLOCKS):
            blocks.append(XceptionBlock((in_ch,) + (ch(MIDDLE_CH),) * 3))
            in_ch = ch(MIDDLE_CH)
        blocks.append(XceptionBlock((in_ch,) + tuple(ch(c) for c in EXIT_BLOCK_CH), 2))
        e1, e2 = (ch(c) for c in EXIT_CONV_CH)
        with self.init_scope():
            self.conv1 = ConvBN(3, c1, 3, 2)
            self.conv2 = ConvBN(c1, c2, 3)
            self.blocks = chainer.ChainList(*blocks)
            self.exit1 = SeparableConvBN(ch(EXIT_BLOCK_CH[-1]), e1)
            self.exit2 = SeparableConvBN(e1, e2)
            self.head = ClassifierHead(e2, out_ch, dropout_ratio)

    def forward(self, x):
        h = self.conv2(self.conv1(x))
        for block in self.blocks:
            h = block(h)
        h = F.relu(self.exit2(F.relu(self.exit1(h))))
        return self.head(global_average_pool(h))
