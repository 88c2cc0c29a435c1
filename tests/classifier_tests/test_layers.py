import chainer
import numpy as np
import pytest
from chainer import gradient_check

from kr.classifier.layers import ClassifierHead
from kr.classifier.layers import hard_sigmoid
from kr.classifier.layers import hard_swish
from kr.classifier.layers import make_divisible
from kr.links import ConvBN

X = np.array([-5, -3, -1.5, 0, 1.5, 3, 5], dtype=np.float32)


def test_hard_sigmoid_values():
    # relu6(x + 3) / 6: 0 below -3, 1 above 3, linear between (MobileNetV3, eq. 1).
    expected = np.array([0, 0, 0.25, 0.5, 0.75, 1, 1], dtype=np.float32)
    np.testing.assert_array_equal(hard_sigmoid(X).array, expected)


def test_hard_swish_values():
    expected = X * np.array([0, 0, 0.25, 0.5, 0.75, 1, 1], dtype=np.float32)
    np.testing.assert_array_equal(hard_swish(X).array, expected)
    assert hard_swish(X).dtype == np.float32


def test_hard_swish_gradient():
    x = np.array([-4.0, -1.0, 0.0, 2.0, 4.0])
    gradient_check.check_backward(hard_swish, x, np.ones_like(x), dtype=np.float64)


@pytest.mark.parametrize('value, expected', [
    (16, 16), (8, 8), (3, 8), (36, 40), (20, 24), (12, 16), (0.35 * 240, 88), (960 * 0.5, 480),
])
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected
    assert make_divisible(value) >= 0.9 * value


@pytest.mark.parametrize('ksize, stride, depthwise, size, out_size', [
    (1, 1, False, 8, 8), (3, 2, False, 8, 4), (3, 1, True, 7, 7), (5, 2, True, 7, 4),
    (3, 2, True, 1, 1),
])
def test_conv_bn_matches_plain_convolution(ksize, stride, depthwise, size, out_size):
    layer = ConvBN(4, 4, ksize, stride, depthwise=depthwise)
    x = np.random.RandomState(0).randn(2, 4, size, size).astype(np.float32)
    with chainer.using_config('train', False):
        y = layer(x)
        expected = layer.activation(layer.bn(layer.conv(x)))
    assert y.shape == (2, 4, out_size, out_size)
    np.testing.assert_allclose(y.array, expected.array, rtol=1e-5, atol=1e-5)


def test_conv_bn_depthwise_needs_equal_channels():
    with pytest.raises(ValueError, match='channel'):
        ConvBN(4, 8, 3, depthwise=True)


def test_classifier_head_shape_and_dropout():
    head = ClassifierHead(6, 3, dropout_ratio=0.5)
    h = np.ones((2, 6), np.float32)
    assert head(h).shape == (2, 3)
    with chainer.using_config('train', False):
        np.testing.assert_array_equal(head(h).array, head(h).array)
