"""The CPU kernels of kr.functions against Chainer's own functions."""

import copy

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np
import pytest
from chainer import gradient_check
from chainer import testing

from kr import functions as K
from tests.onnx_tests.conftest import make_classifier
from tests.onnx_tests.conftest import make_detector


@pytest.fixture(params=['numba', 'numpy'])
def backend(request, monkeypatch):
    """Run a test with the numba kernels and with the NumPy fallback (numba hidden)."""
    if request.param == 'numba':
        pytest.importorskip('numba')
    else:
        monkeypatch.setattr(K, 'numba', None)
    return request.param


def _allclose(a, b, **kwargs):
    np.testing.assert_allclose(chainer.backend.CpuDevice().send(a),
                               chainer.backend.CpuDevice().send(b), **kwargs)


# ---- depthwise convolution

DEPTHWISE_CASES = [  # n, c, size, k, stride, pad
    (2, 3, 8, 3, 1, 1), (2, 3, 8, 3, 2, 1), (2, 4, 9, 5, 1, 2), (2, 4, 9, 5, 2, 2),
    (1, 2, 7, 3, 1, 0), (1, 2, 7, 5, 2, 0), (3, 5, 5, 3, 2, 2), (1, 1, 1, 3, 1, 1),
]


def _check_depthwise_forward(xp, n, c, size, k, stride, pad):
    rng = np.random.RandomState(0)
    x = xp.asarray(rng.randn(n, c, size, size + 1).astype(np.float32))
    W = xp.asarray(rng.randn(c, 1, k, k).astype(np.float32))
    y = K.depthwise_convolution_2d(x, W, stride, pad)
    expected = F.convolution_2d(x, W, stride=stride, pad=pad, groups=c)
    assert y.shape == expected.shape and y.dtype == np.float32
    _allclose(y.array, expected.array, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('n, c, size, k, stride, pad', DEPTHWISE_CASES)
def test_depthwise_forward(backend, n, c, size, k, stride, pad):
    _check_depthwise_forward(np, n, c, size, k, stride, pad)


@pytest.mark.parametrize('n, c, size, k, stride, pad', DEPTHWISE_CASES)
def test_depthwise_backward(backend, n, c, size, k, stride, pad):
    rng = np.random.RandomState(1)
    x = rng.randn(n, c, size, size + 1)
    W = rng.randn(c, 1, k, k)
    gy = rng.randn(*F.convolution_2d(x, W, stride=stride, pad=pad, groups=c).shape)
    gradient_check.check_backward(
        lambda x, W: K.depthwise_convolution_2d(x, W, stride, pad), (x, W), gy,
        dtype=np.float64, atol=1e-6, rtol=1e-5)


def test_depthwise_runs_our_node_on_cpu_and_chainer_under_stock_kernels():
    x = np.ones((1, 2, 4, 4), np.float32)
    W = np.ones((2, 1, 3, 3), np.float32)
    assert isinstance(K.depthwise_convolution_2d(x, W, 1, 1).creator, K.DepthwiseConvolution2D)
    with K.stock_kernels():
        y = K.depthwise_convolution_2d(x, W, 1, 1)
    assert not isinstance(y.creator, K.DepthwiseConvolution2D)


@testing.attr.gpu
def test_gpu_runs_chainer_functions():
    import cupy
    _check_depthwise_forward(cupy, 2, 4, 7, 5, 2, 2)
    x = cupy.ones((1, 2, 4, 4), np.float32)
    W = cupy.ones((2, 1, 3, 3), np.float32)
    assert type(K.depthwise_convolution_2d(x, W, 1, 1).creator).__name__ == \
        'Convolution2DFunction'
    assert type(K.convolution_2d(x, cupy.ones((3, 2, 3, 3), np.float32)).creator).__name__ == \
        'Convolution2DFunction'


# ---- dense and transposed convolution

CONV_CASES = [  # n, c, o, h, w, k, stride, pad, bias
    (2, 3, 5, 8, 6, 3, 1, 1, True), (2, 4, 6, 9, 9, 3, 2, 1, False),
    (2, 3, 4, 7, 5, 1, 1, 0, True), (2, 3, 4, 7, 7, 1, 2, 0, False),
    (1, 3, 2, 10, 12, 7, 2, 3, True), (2, 3, 4, 5, 6, 4, 2, 1, False),
]


@pytest.mark.parametrize('blocks', ['whole', 'per-sample'])
@pytest.mark.parametrize('n, c, o, h, w, k, stride, pad, bias', CONV_CASES)
def test_convolution(monkeypatch, blocks, n, c, o, h, w, k, stride, pad, bias):
    if blocks == 'per-sample':
        # One sample per im2col block, and the per-sample weight-gradient products.
        monkeypatch.setattr(K, '_COL_BLOCK_BYTES', 1)
        monkeypatch.setattr(K, '_SMALL_MAP', 0)
    rng = np.random.RandomState(2)
    x, W = rng.randn(n, c, h, w), rng.randn(o, c, k, k)
    b = rng.randn(o) if bias else None
    expected = F.convolution_2d(x, W, b, stride, pad)
    y = K.convolution_2d(x, W, b, stride, pad)
    assert isinstance(y.creator, K.CpuConvolution2D)
    _allclose(y.array, expected.array, rtol=1e-10, atol=1e-10)
    inputs = (x, W) if b is None else (x, W, b)
    gradient_check.check_backward(
        lambda *a: K.convolution_2d(a[0], a[1], a[2] if len(a) == 3 else None, stride, pad),
        inputs, rng.randn(*expected.shape), dtype=np.float64, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('n, c, o, h, w, k, stride, pad, bias', CONV_CASES)
def test_deconvolution(n, c, o, h, w, k, stride, pad, bias):
    rng = np.random.RandomState(3)
    x, W = rng.randn(n, c, h, w), rng.randn(c, o, k, k)
    b = rng.randn(o) if bias else None
    expected = F.deconvolution_2d(x, W, b, stride, pad)
    y = K.deconvolution_2d(x, W, b, stride, pad)
    assert isinstance(y.creator, K.CpuDeconvolution2D)
    _allclose(y.array, expected.array, rtol=1e-10, atol=1e-10)
    inputs = (x, W) if b is None else (x, W, b)
    gradient_check.check_backward(
        lambda *a: K.deconvolution_2d(a[0], a[1], a[2] if len(a) == 3 else None, stride, pad),
        inputs, rng.randn(*expected.shape), dtype=np.float64, atol=1e-6, rtol=1e-5)


def test_pointwise_is_a_1x1_convolution():
    rng = np.random.RandomState(4)
    x, W = rng.randn(2, 3, 4, 5).astype(np.float32), rng.randn(6, 3, 1, 1).astype(np.float32)
    _allclose(K.pointwise_convolution_2d(x, W).array, F.convolution_2d(x, W).array,
              rtol=1e-5, atol=1e-5)


# ---- batch normalisation

@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_batch_normalization_link_matches_chainer(dtype):
    pytest.importorskip('numba')
    rng = np.random.RandomState(5)
    x = (rng.randn(4, 3, 5, 6) * 3 + 2).astype(dtype)
    gy = rng.randn(*x.shape).astype(dtype)
    ours, theirs = K.BatchNormalization(3, dtype=dtype), L.BatchNormalization(3, dtype=dtype)
    for link in (ours, theirs):
        link.gamma.array[...] = [0.5, 1.0, 1.5]
        link.beta.array[...] = [-1.0, 0.0, 2.0]
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    for _ in range(2):  # the running averages move twice the same way
        xs = [chainer.Variable(x.copy()) for _ in range(2)]
        ys = [link(v) for link, v in zip((ours, theirs), xs)]
        assert isinstance(ys[0].creator, K.CpuBatchNormalization)
        _allclose(ys[0].array, ys[1].array, **tol)
        for y in ys:
            y.grad = gy.copy()
            y.backward()
        _allclose(xs[0].grad, xs[1].grad, **tol)
    _allclose(ours.gamma.grad, theirs.gamma.grad, **tol)
    _allclose(ours.beta.grad, theirs.beta.grad, **tol)
    _allclose(ours.avg_mean, theirs.avg_mean, **tol)
    _allclose(ours.avg_var, theirs.avg_var, **tol)
    with chainer.using_config('train', False):  # inference: Chainer's fixed statistics
        _allclose(ours(x).array, theirs(x).array, **tol)


def test_batch_normalization_backward():
    pytest.importorskip('numba')
    rng = np.random.RandomState(6)
    x, gamma, beta = rng.randn(3, 2, 4, 5), rng.uniform(0.5, 1.5, 2), rng.randn(2)
    gradient_check.check_backward(
        lambda x, g, b: K.CpuBatchNormalization(2e-5, None, None, 0.9).apply((x, g, b))[0],
        (x, gamma, beta), rng.randn(*x.shape), dtype=np.float64, atol=1e-6, rtol=1e-5)


# ---- whole models

def _train_pass(model, x, kernels: bool):
    """Logits/output and parameter gradients of one training-mode pass with either kernel."""
    model.cleargrads()
    np.random.seed(8)  # the same dropout mask
    with chainer.using_config(K.CONFIG_KEY, kernels):
        y = model(x)
        F.sum(y * y).backward()
    return y.array, {name: p.grad for name, p in model.namedparams()}


@pytest.mark.parametrize('make, shape', [
    (make_classifier, (3, 3, 32, 32)),
    (make_detector, (2, 3, 64, 96)),
])
def test_models_give_the_same_results_with_either_kernel(make, shape):
    x = np.random.RandomState(7).uniform(-1, 1, shape)
    # Training mode in float64: batch statistics of 3 samples at 1 x 1 pixel amplify float32
    # rounding to 1e-4, which would hide nothing but noise.
    with chainer.using_config('dtype', np.float64):
        model = make()
    twin = copy.deepcopy(model)
    y_ours, g_ours = _train_pass(model, x, True)
    y_stock, g_stock = _train_pass(twin, x, False)
    _allclose(y_ours, y_stock, rtol=1e-9, atol=1e-9)
    for name in g_stock:
        _allclose(g_ours[name], g_stock[name], rtol=1e-8, atol=1e-8)
    model = make()
    x = x.astype(np.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        y_ours = model(x).array
        with K.stock_kernels():
            y_stock = model(x).array
    _allclose(y_ours, y_stock, rtol=1e-4, atol=1e-4)


def test_models_use_the_kernel_links_and_load_chainer_snapshots(tmp_path):
    detector = make_detector()
    assert type(detector.up1.deconv) is K.Deconvolution2D
    assert type(detector.encoder.stem.conv) is K.Convolution2D
    assert type(detector.encoder.stem.bn) is K.BatchNormalization
    classifier = make_classifier()
    assert type(classifier.stem.conv) is K.Convolution2D
    # A plain-Chainer link's snapshot loads into the kernel link and back.
    plain = L.Convolution2D(3, 4, 3)
    path = str(tmp_path / 'conv.npz')
    chainer.serializers.save_npz(path, plain)
    fast = K.Convolution2D(3, 4, 3)
    chainer.serializers.load_npz(path, fast)
    _allclose(fast.W.array, plain.W.array)
    chainer.serializers.save_npz(path, fast)
    chainer.serializers.load_npz(path, plain)
    _allclose(plain.W.array, fast.W.array)


def test_kernels_run_from_several_threads():
    # numba's workqueue threading layer aborts on concurrent parallel launches.
    import threading
    rng = np.random.RandomState(9)
    x = rng.randn(4, 8, 12, 12).astype(np.float32)
    W = rng.randn(8, 1, 3, 3).astype(np.float32)
    expected = F.convolution_2d(x, W, pad=1, groups=8).array
    errors = []

    def work():
        try:
            for _ in range(20):
                _allclose(K.depthwise_convolution_2d(x, W, 1, 1).array, expected,
                          rtol=1e-5, atol=1e-5)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
