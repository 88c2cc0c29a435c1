"""ResNet18/34/50 character classifiers (He et al., arXiv:1512.03385).

ResNet18/34 are the original solution's alternatives to MobileNetV3; ResNet50 is one of the
second seed's classifiers ("backbone, average pooling, dropout, softmax").
"""

import chainer.functions as F

from kr.classifier.base import ClassifierBase
from kr.classifier.layers import ClassifierHead
from kr.classifier.layers import global_average_pool
from kr.classifier.transforms import INPUT_SIZE
from kr.links import BasicBlock
from kr.links import Bottleneck  # NOQA (kr.classifier.resnet.Bottleneck, as before)
from kr.links import ConvBN
from kr.links import RESNET_STEM_CHANNELS
from kr.links import resnet_stages

#: Dropout before the class layer: the second seed names dropout without a ratio; 0.5 is
#: our choice, the usual one before a wide softmax layer.
DROPOUT_RATIO = 0.5


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
        stem_ch = self.scaled(RESNET_STEM_CHANNELS)
        stages, channels = resnet_stages(stem_ch, block, n_blocks, self.scaled)
        with self.init_scope():
            self.stem = ConvBN(3, stem_ch, 7, 2)
            self.stages = stages
            self.head = ClassifierHead(channels[-1], out_ch, dropout_ratio)

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
