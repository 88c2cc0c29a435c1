import chainer
import chainer.functions as F
import numpy as np
import pytest
from chainer import gradient_check
from chainer import testing

from kr.functions import depthwise_convolution_2d
from kr.functions import pointwise_convolution_2d


def _check_depthwise(xp, n, c, size, k, stride, pad, dtype=np.float32):
    rng = np.random.RandomState(0)
    x = xp.asarray(rng.randn(n, c, size, size).astype(dtype))
    W = xp.asarray(rng.randn(c, 1, k, k).astype(dtype))
    y = depthwise_convolution_2d(x, W, stride, pad)
    expected = F.convolution_2d(x, W, stride=stride, pad=pad, groups=c)
    assert y.shape == expected.shape
    assert y.dtype == dtype
    np.testing.assert_allclose(chainer.backend.CpuDevice().send(y.array),
                               chainer.backend.CpuDevice().send(expected.array),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('n, c, size, k, stride, pad', [
    (2, 3, 8, 3, 1, 1), (2, 4, 7, 5, 2, 2), (1, 2, 6, 3, 2, 1), (3, 5, 5, 3, 1, 0),
    (1, 1, 1, 3, 1, 1),
])
def test_depthwise_matches_grouped_convolution(n, c, size, k, stride, pad):
    _check_depthwise(np, n, c, size, k, stride, pad)


def test_depthwise_in_cpu_blocks_matches(monkeypatch):
    # A tiny block size forces one sample per block, the path taken by big inputs.
    monkeypatch.setattr('kr.functions._CPU_BLOCK_BYTES', 1)
    _check_depthwise(np, 5, 3, 9, 3, 2, 1)


@pytest.mark.parametrize('stride, pad', [(1, 1), (2, 1), (2, 2)])
def test_depthwise_backward(stride, pad):
    rng = np.random.RandomState(1)
    x = rng.randn(2, 3, 6, 6)
    W = rng.randn(3, 1, 3, 3)
    y_shape = depthwise_convolution_2d(x, W, stride, pad).shape
    gy = rng.randn(*y_shape)
    gradient_check.check_backward(
        lambda x, W: depthwise_convolution_2d(x, W, stride, pad), (x, W), gy,
        dtype=np.float64, atol=1e-6, rtol=1e-5)


def test_pointwise_matches_and_backward():
    rng = np.random.RandomState(2)
    x = rng.randn(2, 3, 4, 5)
    W = rng.randn(6, 3, 1, 1)
    np.testing.assert_allclose(pointwise_convolution_2d(x, W).array,
                               F.convolution_2d(x, W).array, rtol=1e-10)
    gradient_check.check_backward(pointwise_convolution_2d, (x, W), rng.randn(2, 6, 4, 5),
                                  dtype=np.float64, atol=1e-6, rtol=1e-5)


@testing.attr.gpu
def test_depthwise_gpu():
    import cupy
    _check_depthwise(cupy, 2, 4, 7, 5, 2, 2)
