"""ResNet18/34/50 character classifiers (He et al., arXiv:1512.03385).

ResNet18/34 are the original solution's alternatives to MobileNetV3; ResNet50 is one of the
second seed's classifiers ("backbone, average pooling, dropout, softmax").
"""

import chainer
import chainer.functions as F

from kr.classifier.base import ClassifierBase
from kr.classifier.layers import ClassifierHead
from kr.classifier.layers import global_average_pool
from kr.classifier.transforms import INPUT_SIZE
from kr.links import BasicBlock
from kr.links import ConvBN
from kr.links import identity

#: Stage widths (the basic block's output; a bottleneck's inner width) and strides.
STAGE_CHANNELS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
STEM_CH = 64
#: Output channels of a bottleneck block per inner channel.
BOTTLENECK_EXPANSION = 4
#: Dropout before the class layer: the second seed names dropout without a ratio; 0.5 is
#: our choice, the usual one before a wide softmax layer.
DROPOUT_RATIO = 0.5


class Bottleneck(chainer.Chain):
    """1x1 reduce, 3x3 (carrying the stride, as in the common "v1.5" variant), 1x1 expand x4."""

    expansion = BOTTLENECK_EXPANSION

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


class ResNet(ClassifierBase):
    """ResNet classifier: 7x7/2 conv + BN + ReLU, 3x3/2 max pool, four stages of residual
    blocks (strides 1, 2, 2, 2), global average pool, dropout, FC to the classes.

    Args:
        out_ch: Number of classes.
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        n_blocks: Blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet18.
        width: Channel multiplier (rounded to multiples of 8).
        input_size: Side of the crops ``classify`` feeds (the network takes any size).
        dropout_ratio: Dropout before the class layer.

    Forward: ``(N, 3, H, W)`` float32 normalised images -> ``(N, out_ch)`` float32 logits.
    """

    def __init__(self, out_ch: int, block, n_blocks, width: float = 1.0,
                 input_size: int = INPUT_SIZE, dropout_ratio: float = DROPOUT_RATIO):
        super().__init__(out_ch, width, input_size)
        in_ch = self.scaled(STEM_CH)
        stages = []
        for ch, stride, n in zip(STAGE_CHANNELS, STAGE_STRIDES, n_blocks):
            ch = self.scaled(ch)
            blocks = []
            for i in range(n):
                blocks.append(block(in_ch, ch, stride if i == 0 else 1))
                in_ch = ch * block.expansion
            stages.append(chainer.Sequential(*blocks))
        with self.init_scope():
            self.stem = ConvBN(3, self.scaled(STEM_CH), 7, 2)
            self.stages = chainer.ChainList(*stages)
            self.head = ClassifierHead(in_ch, out_ch, dropout_ratio)

    def forward(self, x):
        h = F.max_pooling_2d(self.stem(x), 3, 2, pad=1, cover_all=False)
        for stage in self.stages:
            h = stage(h)
        return self.head(global_average_pool(h))


class Resnet18(ResNet):
    """ResNet18: basic blocks (2, 2, 2, 2). Arguments as :class:`ResNet` after ``block``."""

    def __init__(self, out_ch: int, **kwargs):
        super().__init__(out_ch, BasicBlock, (2, 2, 2, 2), **kwargs)


class Resnet34(ResNet):
    """ResNet34: basic blocks (3, 4, 6, 3). Arguments as :class:`ResNet` after ``block``."""

    def __init__(self, out_ch: int, **kwargs):
        super().__init__(out_ch, BasicBlock, (3, 4, 6, 3), **kwargs)


class Resnet50(ResNet):
    """ResNet50: bottleneck blocks (3, 4, 6, 3). Arguments as :class:`ResNet` after ``block``."""

    def __init__(self, out_ch: int, **kwargs):
        super().__init__(out_ch, Bottleneck, (3, 4, 6, 3), **kwargs)
