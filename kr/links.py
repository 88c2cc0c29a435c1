"""Building blocks shared by the model families: ConvBN and the residual basic block.

Both are made of the links of :mod:`kr.functions`, which run our CPU kernels on the CPU and
Chainer's own functions (so cuDNN) on a GPU; their parameters are laid out as Chainer's
(``conv/W``, ``bn/gamma`` ...), so snapshots load either way.
"""

import chainer
import chainer.functions as F
from chainer import initializers

from kr.functions import BatchNormalization
from kr.functions import Convolution2D


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
