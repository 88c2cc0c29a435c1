"""Building blocks shared by the classifier backbones."""

import chainer
import chainer.functions as F
import chainer.links as L
from chainer import initializers

from kr.functions import BatchNormalization
from kr.functions import Convolution2D


def hard_sigmoid(x):
    """``relu6(x + 3) / 6`` (MobileNetV3's piecewise-linear sigmoid, arXiv:1905.02244).

    Not :func:`chainer.functions.hard_sigmoid`, which is ``clip(0.2 x + 0.5, 0, 1)``.
    """
    return F.relu6(x + 3) / 6


def hard_swish(x):
    """``x * relu6(x + 3) / 6`` (MobileNetV3's h-swish, arXiv:1905.02244)."""
    return x * hard_sigmoid(x)


def identity(x):
    """The activation of a layer without one."""
    return x


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


class ConvBN(chainer.Chain):
    """Convolution without bias, batch normalisation, then ``activation``.

    Args:
        in_ch: Input channels.
        out_ch: Output channels.
        ksize: Square kernel side; padding keeps the size at stride 1 (``ksize // 2``).
        stride: Stride.
        depthwise: One filter per channel (``out_ch`` must equal ``in_ch``).
        activation: Function applied last (:func:`identity` for none).
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
        # Convolution2D and BatchNormalization choose the fast CPU kernels per call
        # (kr.functions); Chainer's own run on the GPU.
        return self.activation(self.bn(self.conv(x)))


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
