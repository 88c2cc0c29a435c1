"""MobileNetV3-Large, the character classifier of the original solution (arXiv:1905.02244)."""

import chainer
import chainer.functions as F
import chainer.links as L

from kr.classifier.base import ClassifierBase
from kr.classifier.layers import ClassifierHead
from kr.classifier.layers import global_average_pool
from kr.classifier.layers import hard_sigmoid
from kr.classifier.layers import hard_swish
from kr.classifier.layers import make_divisible
from kr.classifier.transforms import INPUT_SIZE
from kr.links import ConvBN
from kr.links import identity

#: Bottlenecks of MobileNetV3-Large (arXiv:1905.02244, Table 1; SPEC section 4):
#: ``(in, expand, out, kernel, stride, squeeze-excite, activation)``; RE = ReLU, HS = h-swish.
LARGE_BLOCKS = (
    (16, 16, 16, 3, 1, False, 'RE'),
    (16, 64, 24, 3, 2, False, 'RE'),
    (24, 72, 24, 3, 1, False, 'RE'),
    (24, 72, 40, 5, 2, True, 'RE'),
    (40, 120, 40, 5, 1, True, 'RE'),
    (40, 120, 40, 5, 1, True, 'RE'),
    (40, 240, 80, 3, 2, False, 'HS'),
    (80, 200, 80, 3, 1, False, 'HS'),
    (80, 184, 80, 3, 1, False, 'HS'),
    (80, 184, 80, 3, 1, False, 'HS'),
    (80, 480, 112, 3, 1, True, 'HS'),
    (112, 672, 112, 3, 1, True, 'HS'),
    (112, 672, 160, 5, 2, True, 'HS'),
    (160, 960, 160, 5, 1, True, 'HS'),
    (160, 960, 160, 5, 1, True, 'HS'),
)
ACTIVATIONS = {'RE': F.relu, 'HS': hard_swish}
#: Stem, last convolution and hidden FC widths (Table 1).
STEM_CH = 16
LAST_CONV_CH = 960
HEAD_CH = 1280
#: Squeeze-excite bottleneck: expand channels / 4 (section 5.3 of the paper).
SE_REDUCTION = 4
#: Dropout before the class layer (SPEC section 4).
DROPOUT_RATIO = 0.2


class SqueezeExcite(chainer.Chain):
    """Channel attention: global pool, FC + ReLU, FC + hard-sigmoid, scale the input.

    Args:
        ch: Channels of the input.
        reduction: The hidden FC has ``ch / reduction`` channels (rounded to a multiple of 8).
    """

    def __init__(self, ch: int, reduction: int = SE_REDUCTION):
        super().__init__()
        mid = make_divisible(ch / reduction)
        with self.init_scope():
            self.fc1 = L.Linear(ch, mid)
            self.fc2 = L.Linear(mid, ch)

    def forward(self, x):
        """``(N, C, H, W)`` -> same shape, each channel scaled by a weight in ``[0, 1]``."""
        w = hard_sigmoid(self.fc2(F.relu(self.fc1(global_average_pool(x)))))
        return x * F.broadcast_to(w[:, :, None, None], x.shape)


class InvertedResidual(chainer.Chain):
    """MobileNetV3 bottleneck: 1x1 expand, kxk depthwise, optional SE, 1x1 linear project.

    The input is added back when stride is 1 and the channel count is unchanged.
    """

    def __init__(self, in_ch: int, expand_ch: int, out_ch: int, ksize: int, stride: int,
                 use_se: bool, activation):
        super().__init__()
        self.use_residual = stride == 1 and in_ch == out_ch
        with self.init_scope():
            self.expand = ConvBN(in_ch, expand_ch, 1, activation=activation)
            self.depthwise = ConvBN(expand_ch, expand_ch, ksize, stride, depthwise=True,
                                    activation=activation)
            self.se = SqueezeExcite(expand_ch) if use_se else None
            self.project = ConvBN(expand_ch, out_ch, 1, activation=identity)

    def forward(self, x):
        h = self.depthwise(self.expand(x))
        if self.se is not None:
            h = self.se(h)
        h = self.project(h)
        return h + x if self.use_residual else h


class MobileNetV3(ClassifierBase):
    """MobileNetV3-Large character classifier (SPEC section 4; arXiv:1905.02244).

    Stem 3x3/2 conv + BN + h-swish, the 15 bottlenecks of :data:`LARGE_BLOCKS`, 1x1 conv 960
    + BN + h-swish, global average pool, FC 1280 + h-swish, dropout 0.2, FC to the classes.
    Every bottleneck has its 1x1 expansion, also the first one whose expansion equals its
    input (as SPEC's table lists it).

    Args:
        out_ch: Number of classes (``len(KuzushijiUnicodeMapping)``; 4,787 on the real data).
        width: Channel multiplier of the stem, bottlenecks and last conv (rounded to
            multiples of 8). The 1280-wide hidden FC grows with ``width > 1`` but does not
            shrink below 1280, as in the paper's smaller models.
        input_size: Side of the crops ``classify`` feeds (the network takes any size).
        dropout_ratio: Dropout before the class layer.

    Forward: ``(N, 3, H, W)`` float32 normalised images -> ``(N, out_ch)`` float32 logits.
    """

    def __init__(self, out_ch: int, width: float = 1.0, input_size: int = INPUT_SIZE,
                 dropout_ratio: float = DROPOUT_RATIO):
        super().__init__(out_ch, width, input_size)
        ch = self.scaled
        last_ch = ch(LAST_CONV_CH)
        head_ch = max(HEAD_CH, ch(HEAD_CH))
        with self.init_scope():
            self.stem = ConvBN(3, ch(STEM_CH), 3, 2, activation=hard_swish)
            self.blocks = chainer.ChainList(*[
                InvertedResidual(ch(i), ch(e), ch(o), k, s, se, ACTIVATIONS[act])
                for i, e, o, k, s, se, act in LARGE_BLOCKS])
            self.last = ConvBN(ch(LARGE_BLOCKS[-1][2]), last_ch, 1, activation=hard_swish)
            self.fc = L.Linear(last_ch, head_ch)
            self.head = ClassifierHead(head_ch, out_ch, dropout_ratio)

    def forward(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return self.head(hard_swish(self.fc(global_average_pool(self.last(h)))))
