"""Activations, pooling, channel rounding and the class head of the classifier backbones
(ConvBN and the basic block are shared with the detector: :mod:`kr.links`)."""

import chainer
import chainer.functions as F
import chainer.links as L



def hard_sigmoid(x):
    """``relu6(x + 3) / 6`` (MobileNetV3's piecewise-linear sigmoid, arXiv:1905.02244).

    Not :func:`chainer.functions.hard_sigmoid`, which is ``clip(0.2 x + 0.5, 0, 1)``.
    """
    return F.relu6(x + 3) / 6


def hard_swish(x):
    """``x * relu6(x + 3) / 6`` (MobileNetV3's h-swish, arXiv:1905.02244)."""
    return x * hard_sigmoid(x)


def global_average_pool(x):
    """``(N, C, H, W)`` -> ``(N, C)`` mean over space."""
    return F.mean(x, axis=(2, 3))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor``, losing at most 10%.

    The channel rounding of the MobileNet family when a width multiplier is applied.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ClassifierHead(chainer.Chain):
    """Dropout, then a fully connected layer from pooled features to the class logits.

    Forward: ``(N, in_ch)`` -> ``(N, out_ch)`` logits.

    Args:
        in_ch: Feature channels.
        out_ch: Number of classes.
        dropout_ratio: Dropout before the last layer (0 for none).
    """

    def __init__(self, in_ch: int, out_ch: int, dropout_ratio: float):
        super().__init__()
        self.dropout_ratio = dropout_ratio
        with self.init_scope():
            self.fc = L.Linear(in_ch, out_ch)

    def forward(self, h):
        if self.dropout_ratio:
            h = F.dropout(h, self.dropout_ratio)
        return self.fc(h)
