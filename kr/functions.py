"""Fast CPU kernels for the convolutions and batch normalisation of our models.

Chainer 7 computes every convolution through im2col followed by a ``tensordot`` that copies
the column buffer once more into matrix order and returns a non-contiguous (channels-last)
result; grouped (depthwise) convolutions become a batched matrix product over a buffer of
``k x k`` times the input. On the CPU those copies dominate: a MobileNetV3-Large training
step on 64 crops of 112 x 112 took 7.5 s, 70% of it in depthwise convolutions (issue 6).

What is here, each used only for NumPy arrays (CuPy and ChainerX keep Chainer's functions,
hence cuDNN on the GPU) and while ``chainer.config.kr_cpu_kernels`` is not ``False``
(:func:`stock_kernels` turns them off, e.g. for the ONNX export, which must see Chainer's
own FunctionNodes):

* depthwise convolution (:func:`depthwise_convolution_2d`): numba kernels over a
  channels-last copy, so the innermost loop runs over contiguous channels (on the 15 layers
  of MobileNetV3 at 64 x 112 x 112: forward 2.3x and backward 2.5x faster than the NumPy
  tap-by-tap kernel kept as the fallback without numba, forward about 10x faster than
  Chainer's grouped convolution);
* dense convolution and transposed convolution (:func:`convolution_2d`,
  :func:`deconvolution_2d`): the same im2col, but one matrix product per sample on the
  ``(C k k, H W)`` column matrix, so neither the columns nor the result are copied again
  and the output is contiguous NCHW (forward + backward 1.0-1.7x faster than Chainer's per
  layer of the detector); 1x1 convolutions skip im2col altogether;
* batch normalisation in training mode (:class:`BatchNormalization`): one numba pass per
  channel for the statistics and one for the output, and the same for the gradients
  (forward + backward 3.5x faster than Chainer's on the layer shapes of both networks).

The links :class:`Convolution2D`, :class:`Deconvolution2D` and :class:`BatchNormalization`
subclass Chainer's, with the same parameters (so snapshots load into either) and choose
the kernel per call (:mod:`kr.links`, the detector and the classifiers are built of them);
gradient nodes do not support double backpropagation. The numba kernels run on all cores
(``NUMBA_NUM_THREADS`` sets fewer) with numba's own "workqueue" threads (see below).
"""

import os
import threading

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
from chainer import function_node
from chainer.utils import conv
from chainer.utils import type_check

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; the NumPy paths stay usable
    numba = None

#: Name of the ``chainer.config`` switch of the CPU kernels (``True`` when unset).
CONFIG_KEY = 'kr_cpu_kernels'
#: Bytes of input handled at once by the NumPy depthwise fallback: the tap-by-tap passes
#: then stay in the L2/L3 caches (one 64 x 56 x 56 sample per block ran 2.3x faster than
#: whole batches).
_CPU_BLOCK_BYTES = 1 << 20
#: Bytes of im2col columns built at once by the dense convolutions: bounds the temporary
#: memory (a whole batch of 16 detector crops would need 400 MB per 3x3 layer).
_COL_BLOCK_BYTES = 32 << 20
#: Below this many output pixels per sample, the weight gradient of a dense convolution is
#: one matrix product over the whole block instead of one per sample (tiny products waste
#: most of their time in call overhead).
_SMALL_MAP = 256
#: Dtypes the numba kernels are compiled for.
_NUMBA_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
#: One numba kernel at a time: the workqueue threading layer aborts the process when two
#: threads enter parallel code at once.
_KERNEL_LOCK = threading.Lock()


def cpu_kernels_enabled(x) -> bool:
    """Whether our CPU kernels run for ``x``: a NumPy array (or Variable) while the
    ``chainer.config.kr_cpu_kernels`` switch is not ``False``."""
    return (chainer.backend.get_array_module(x) is numpy
            and getattr(chainer.config, CONFIG_KEY, True) is not False)


def stock_kernels():
    """Context manager running Chainer's own functions instead of these kernels.

    Used by the ONNX export (onnx_chainer converts Chainer's FunctionNodes only) and by the
    benchmarks' "stock" column::

        with stock_kernels():
            y = model(x)
    """
    return chainer.using_config(CONFIG_KEY, False)


def _use_numba(*arrays) -> bool:
    """numba is installed and every array has a dtype the kernels are compiled for."""
    return numba is not None and all(a.dtype in _NUMBA_DTYPES for a in arrays)


def _out_size(size: int, ksize: int, stride: int, pad: int) -> int:
    """Output length of a convolution axis."""
    return (size + 2 * pad - ksize) // stride + 1


def _pair(v):
    """``v`` as a pair of ints (Chainer accepts an int or a pair for stride and pad)."""
    return (int(v[0]), int(v[1])) if hasattr(v, '__getitem__') else (int(v), int(v))


# ------------------------------------------------------------------------------------------
# numba kernels (compiled on first use, cached on disk beside this file)

if numba is not None:
    if 'NUMBA_THREADING_LAYER' not in os.environ:
        # numba takes the OpenMP layer when it finds libgomp; its threads then spin against
        # those of BLAS and PyTorch: measured, a MobileNetV3 step took 3.5 s instead of
        # 1.5 s, and a PyTorch step in the same process 2x longer after one kernel call.
        # The workqueue layer's threads sleep; it is not thread-safe, hence _KERNEL_LOCK.
        numba.config.THREADING_LAYER = 'workqueue'
    # Reassociation lets the per-channel sums vectorise; NaN and inf keep their meaning
    # (no 'nnan'/'ninf'), so a diverging step still shows as NaN.
    _jit = numba.njit(parallel=True, fastmath={'reassoc', 'contract', 'nsz', 'arcp'},
                      cache=True)

    @numba.njit(inline='always')
    def _column_range(j, stride, pad, wd, out_w):  # pragma: no cover (JIT)
        """Output columns ``[lo, hi)`` whose input column ``ow * stride + j - pad`` is inside
        ``[0, wd)``."""
        lo = max(0, (pad - j + stride - 1) // stride)
        return lo, min(out_w, (wd - 1 + pad - j) // stride + 1)

    @numba.njit(inline='always', fastmath={'reassoc', 'contract', 'nsz', 'arcp'})
    def _depthwise_row(x, w, out, gy, gx, gw_part, b, oh, stride, pad,
                       backward):  # pragma: no cover (JIT)
        """Visit the windows of output row ``oh`` of sample ``b`` once: add the row's
        outputs to ``out`` (forward), or its input and weight gradients to ``gx`` and
        ``gw_part[b]`` (backward). One traversal for both passes; ``backward`` is a
        constant at each call, so the compiled loops carry no branch."""
        _, h, wd, c = x.shape
        k = w.shape[0]
        out_w = out.shape[2]
        for i in range(k):
            ih = oh * stride + i - pad
            if ih < 0 or ih >= h:
                continue
            for j in range(k):
                lo, hi = _column_range(j, stride, pad, wd, out_w)
                for ow in range(lo, hi):
                    iw = ow * stride + j - pad
                    if backward:
                        for ch in range(c):
                            g = gy[b, oh, ow, ch]
                            gx[b, ih, iw, ch] += g * w[i, j, ch]
                            gw_part[b, i, j, ch] += g * x[b, ih, iw, ch]
                    else:
                        for ch in range(c):
                            out[b, oh, ow, ch] += x[b, ih, iw, ch] * w[i, j, ch]

    @_jit
    def _depthwise_forward_nhwc(x, w, stride, pad, out_h, out_w):  # pragma: no cover (JIT)
        """``x`` (N, H, W, C), ``w`` (k, k, C) -> (N, out_h, out_w, C)."""
        n, c = x.shape[0], x.shape[3]
        y = numpy.zeros((n, out_h, out_w, c), dtype=x.dtype)
        for r in numba.prange(n * out_h):
            _depthwise_row(x, w, y, y, x, y, r // out_h, r % out_h, stride, pad, False)
        return y

    @_jit
    def _depthwise_backward_nhwc(x, w, gy, stride, pad):  # pragma: no cover (JIT)
        """Gradients ``(gx (N, H, W, C), gw (k, k, C))`` of the forward kernel."""
        n, c = x.shape[0], x.shape[3]
        k = w.shape[0]
        out_h = gy.shape[1]
        gx = numpy.zeros_like(x)
        # One partial weight gradient per sample: samples run in parallel without races.
        gw_part = numpy.zeros((n, k, k, c), dtype=x.dtype)
        for b in numba.prange(n):
            for oh in range(out_h):
                _depthwise_row(x, w, gy, gy, gx, gw_part, b, oh, stride, pad, True)
        return gx, gw_part.sum(axis=0)

    @numba.njit(inline='always', fastmath={'reassoc', 'contract', 'nsz', 'arcp'})
    def _channel_sums(u, v, ch):  # pragma: no cover (JIT)
        """``(sum(u), sum(u * v))`` over channel ``ch`` of two (N, C, L) arrays, in float64."""
        n, _, length = u.shape
        su = 0.0
        suv = 0.0
        for b in range(n):
            for i in range(length):
                a = u[b, ch, i]
                su += a
                suv += a * v[b, ch, i]
        return su, suv

    @_jit
    def _bn_forward_kernel(x, gamma, beta, eps, y, mean, var, inv_std):  # pragma: no cover
        """Batch statistics per channel of ``x`` (N, C, L) and ``y = gamma x_hat + beta``."""
        n, c, length = x.shape
        m = n * length
        for ch in numba.prange(c):
            s, ss = _channel_sums(x, x, ch)
            mu = s / m
            # float64 sums: the one-pass variance loses nothing at activation scales.
            sigma2 = max(ss / m - mu * mu, 0.0)
            istd = 1.0 / numpy.sqrt(sigma2 + eps)
            scale = gamma[ch] * istd
            shift = beta[ch] - mu * scale
            for b in range(n):
                for i in range(length):
                    y[b, ch, i] = x[b, ch, i] * scale + shift
            mean[ch] = mu
            var[ch] = sigma2
            inv_std[ch] = istd

    @_jit
    def _bn_backward_kernel(x, gy, gamma, mean, inv_std, gx, ggamma, gbeta):  # pragma: no cover
        """Gradients of :func:`_bn_forward_kernel` (Ioffe and Szegedy, arXiv:1502.03167)."""
        n, c, length = x.shape
        m = n * length
        for ch in numba.prange(c):
            sg, sgx = _channel_sums(gy, x, ch)
            mu = mean[ch]
            istd = inv_std[ch]
            g_gamma = (sgx - mu * sg) * istd  # sum(gy * x_hat)
            ggamma[ch] = g_gamma
            gbeta[ch] = sg
            # gx = gamma istd (gy - (x_hat g_gamma + g_beta) / m), as a * gy + b * x + c.
            a = gamma[ch] * istd
            bx = -a * g_gamma * istd / m
            c0 = -a * sg / m - bx * mu
            for b in range(n):
                for i in range(length):
                    gx[b, ch, i] = a * gy[b, ch, i] + bx * x[b, ch, i] + c0


def _run(kernel, *args):
    """Call a numba kernel under :data:`_KERNEL_LOCK`."""
    with _KERNEL_LOCK:
        return kernel(*args)


def _to_nhwc(x):
    return numpy.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _to_nchw(x):
    return numpy.ascontiguousarray(x.transpose(0, 3, 1, 2))


# ------------------------------------------------------------------------------------------
# Depthwise convolution

def _windows(k: int, stride: int, out_h: int, out_w: int):
    """Yield ``(i, j, slices)``: the input window of kernel tap ``(i, j)`` on the padded input."""
    for i in range(k):
        for j in range(k):
            yield i, j, (slice(None), slice(None),
                         slice(i, i + stride * (out_h - 1) + 1, stride),
                         slice(j, j + stride * (out_w - 1) + 1, stride))


def _pad(x, pad: int):
    """Zero-pad the two spatial axes of ``(N, C, H, W)``."""
    if not pad:
        return x
    return numpy.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def _batch_step(x) -> int:
    """Samples the NumPy fallback processes together: few enough to stay in cache."""
    per_sample = x[0].size * x.dtype.itemsize
    return max(1, min(len(x), _CPU_BLOCK_BYTES // max(1, per_sample)))


def _depthwise_forward_numpy(x, W, s, p):
    """NumPy fallback: one multiply-add pass per kernel tap, a few samples at a time."""
    n, c, h, w = x.shape
    k = W.shape[2]
    out_h, out_w = _out_size(h, k, s, p), _out_size(w, k, s, p)
    y = numpy.empty((n, c, out_h, out_w), dtype=x.dtype)
    step = _batch_step(x)
    tmp = numpy.empty((step, c, out_h, out_w), dtype=x.dtype)
    for b in range(0, n, step):
        xpad = _pad(x[b:b + step], p)
        yb, tmpb = y[b:b + step], tmp[:len(xpad)]
        yb[...] = 0
        for i, j, window in _windows(k, s, out_h, out_w):
            numpy.multiply(xpad[window], W[:, 0, i, j][:, None, None], out=tmpb)
            yb += tmpb
    return y


def _depthwise_backward_numpy(x, W, gy, s, p):
    """NumPy fallback of the depthwise gradients ``(gx, gW)``."""
    n, c, h, w = x.shape
    k = W.shape[2]
    out_h, out_w = gy.shape[2:]
    gx = numpy.empty_like(x)
    gW = numpy.zeros_like(W)
    step = _batch_step(x)
    tmp = numpy.empty((step, c, out_h, out_w), dtype=x.dtype)
    for b in range(0, n, step):
        xpad = _pad(x[b:b + step], p)
        gyb, tmpb = gy[b:b + step], tmp[:len(xpad)]
        gxpad = numpy.zeros_like(xpad)
        for i, j, window in _windows(k, s, out_h, out_w):
            numpy.multiply(gyb, W[:, 0, i, j][:, None, None], out=tmpb)
            gxpad[window] += tmpb
            gW[:, 0, i, j] += numpy.einsum('nchw,nchw->c', xpad[window], gyb)
        gx[b:b + step] = gxpad[:, :, p:p + h, p:p + w]
    return gx, gW


class DepthwiseConvolution2D(function_node.FunctionNode):
    """One ``k x k`` filter per channel, no bias, on the CPU; see
    :func:`depthwise_convolution_2d`."""

    def __init__(self, stride: int = 1, pad: int = 0):
        self.stride = stride
        self.pad = pad

    def check_type_forward(self, in_types):
        type_check._argname(in_types, ('x', 'W'))
        x_type, w_type = in_types
        type_check.expect(
            x_type.dtype.kind == 'f',
            w_type.dtype == x_type.dtype,
            x_type.ndim == 4,
            w_type.ndim == 4,
            w_type.shape[0] == x_type.shape[1],
            w_type.shape[1] == 1,
            w_type.shape[2] == w_type.shape[3],
        )

    def forward_cpu(self, inputs):
        self.retain_inputs((0, 1))
        x, W = inputs
        s, p = self.stride, self.pad
        if not _use_numba(x):
            return _depthwise_forward_numpy(x, W, s, p),
        k = W.shape[2]
        out_h, out_w = _out_size(x.shape[2], k, s, p), _out_size(x.shape[3], k, s, p)
        wk = numpy.ascontiguousarray(W[:, 0].transpose(1, 2, 0))
        return _to_nchw(_run(_depthwise_forward_nhwc, _to_nhwc(x), wk, s, p, out_h, out_w)),

    def backward(self, indexes, grad_outputs):
        x, W = self.get_retained_inputs()
        gy, = grad_outputs
        gx, gW = DepthwiseConvolution2DGrad(self.stride, self.pad).apply((x, W, gy))
        return tuple((gx, gW)[i] for i in indexes)


class DepthwiseConvolution2DGrad(function_node.FunctionNode):
    """Gradients of :class:`DepthwiseConvolution2D` with respect to ``x`` and ``W``."""

    def __init__(self, stride: int, pad: int):
        self.stride = stride
        self.pad = pad

    def forward_cpu(self, inputs):
        x, W, gy = inputs
        s, p = self.stride, self.pad
        if not _use_numba(x):
            return _depthwise_backward_numpy(x, W, gy, s, p)
        wk = numpy.ascontiguousarray(W[:, 0].transpose(1, 2, 0))
        gx, gw = _run(_depthwise_backward_nhwc, _to_nhwc(x), wk, _to_nhwc(gy), s, p)
        return _to_nchw(gx), numpy.ascontiguousarray(gw.transpose(2, 0, 1))[:, None]

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError('double backpropagation of depthwise_convolution_2d')


def depthwise_convolution_2d(x, W, stride: int = 1, pad: int = 0):
    """Depthwise convolution without bias (the result of ``F.convolution_2d(groups=C)``).

    Our kernel on the CPU (see the module docstring), Chainer's grouped convolution
    elsewhere or under :func:`stock_kernels`.

    Args:
        x: ``(N, C, H, W)`` input.
        W: ``(C, 1, k, k)`` filters (the layout of ``L.Convolution2D(C, C, k, groups=C)``).
        stride: Stride on both axes.
        pad: Zero padding on each side of both axes.

    Returns:
        ``(N, C, H_out, W_out)`` Variable, ``H_out = (H + 2 pad - k) // stride + 1``.
    """
    if cpu_kernels_enabled(x):
        return DepthwiseConvolution2D(stride, pad).apply((x, W))[0]
    return F.convolution_2d(x, W, stride=stride, pad=pad, groups=W.shape[0])


# ------------------------------------------------------------------------------------------
# Dense convolution and transposed convolution as one matrix product per sample

def _col_block(x, kh: int, kw: int, out_len: int) -> int:
    """Samples whose im2col columns fit in :data:`_COL_BLOCK_BYTES`."""
    per_sample = x.shape[1] * kh * kw * out_len * x.dtype.itemsize
    return max(1, min(len(x), _COL_BLOCK_BYTES // max(1, per_sample)))


def _columns(x, kh, kw, stride, pad, out_h, out_w):
    """``(n, C kh kw, out_h out_w)`` im2col columns of ``x``; a view for 1x1 convolutions."""
    n, c = x.shape[:2]
    if (kh, kw) == (1, 1) and pad == (0, 0):
        if stride != (1, 1):
            x = numpy.ascontiguousarray(x[:, :, ::stride[0], ::stride[1]])
        return x.reshape(n, c, out_h * out_w)
    col = conv.im2col_cpu(x, kh, kw, stride[0], stride[1], pad[0], pad[1],
                          out_h=out_h, out_w=out_w)
    return col.reshape(n, c * kh * kw, out_h * out_w)


def _conv_forward(x, W, stride, pad):
    """``y[n] = W (O, C kh kw) @ columns(x[n])``: ``(N, O, out_h, out_w)`` contiguous."""
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    out_h, out_w = _out_size(h, kh, stride[0], pad[0]), _out_size(w, kw, stride[1], pad[1])
    w2 = W.reshape(o, -1)
    y = numpy.empty((n, o, out_h * out_w), dtype=x.dtype)
    step = _col_block(x, kh, kw, out_h * out_w)
    for b in range(0, n, step):
        numpy.matmul(w2, _columns(x[b:b + step], kh, kw, stride, pad, out_h, out_w),
                     out=y[b:b + step])
    return y.reshape(n, o, out_h, out_w)


def _conv_grad_x(gy, W, x_shape, stride, pad):
    """Gradient of :func:`_conv_forward` with respect to ``x`` (``W.T @ gy`` then col2im);
    also the forward pass of a transposed convolution."""
    n, c, h, w = x_shape
    o, _, kh, kw = W.shape
    out_h, out_w = gy.shape[2:]
    gcol = numpy.matmul(W.reshape(o, -1).T, gy.reshape(n, o, out_h * out_w))
    if (kh, kw) == (1, 1) and pad == (0, 0):
        if stride == (1, 1):
            return gcol.reshape(n, c, h, w)
        gx = numpy.zeros((n, c, h, w), dtype=gy.dtype)
        gx[:, :, ::stride[0], ::stride[1]] = gcol.reshape(n, c, out_h, out_w)
        return gx
    gcol = gcol.reshape(n, c, kh, kw, out_h, out_w)
    return conv.col2im_cpu(gcol, stride[0], stride[1], pad[0], pad[1], h, w)


def _conv_grad_w(x, gy, ksize, stride, pad):
    """Gradient of :func:`_conv_forward` with respect to ``W``: ``sum_n gy[n] @ col[n].T``,
    ``(O, C, kh, kw)``."""
    n, c = x.shape[:2]
    o, out_h, out_w = gy.shape[1:]
    kh, kw = ksize
    gy3 = gy.reshape(n, o, out_h * out_w)
    gW = numpy.zeros((o, c * kh * kw), dtype=x.dtype)
    step = _col_block(x, kh, kw, out_h * out_w)
    for b in range(0, n, step):
        col = _columns(x[b:b + step], kh, kw, stride, pad, out_h, out_w)
        g = gy3[b:b + step]
        if out_h * out_w < _SMALL_MAP:
            gW += numpy.tensordot(g, col, ((0, 2), (0, 2)))
        else:
            for i in range(len(col)):
                gW += g[i] @ col[i].T
    return gW.reshape(o, c, kh, kw)


class _CpuConvolutionNode(function_node.FunctionNode):
    """What the dense and the transposed convolution nodes share: stride and padding, type
    checks, the bias, and the gradient node. Subclasses define ``_apply(x, W)`` and
    ``grad_node`` (and ``w_in_axis``, the axis of ``W`` that matches ``x``'s channels)."""

    w_in_axis = 1
    grad_node = None

    def __init__(self, stride=1, pad=0):
        self.stride = _pair(stride)
        self.pad = _pair(pad)

    def check_type_forward(self, in_types):
        type_check.expect(2 <= in_types.size(), in_types.size() <= 3)
        x_type, w_type = in_types[:2]
        type_check.expect(
            x_type.dtype.kind == 'f',
            w_type.dtype == x_type.dtype,
            x_type.ndim == 4,
            w_type.ndim == 4,
            x_type.shape[1] == w_type.shape[self.w_in_axis],
        )

    def forward_cpu(self, inputs):
        self.retain_inputs((0, 1))
        x, W = inputs[:2]
        y = self._apply(x, W)
        if len(inputs) == 3:
            y += inputs[2][:, None, None]
        return y,

    def backward(self, indexes, grad_outputs):
        x, W = self.get_retained_inputs()
        gy, = grad_outputs
        grads = self.grad_node(self.stride, self.pad, len(self.inputs) == 3).apply((x, W, gy))
        return tuple(grads[i] for i in indexes)


class _CpuConvolutionGradNode(function_node.FunctionNode):
    """Gradients ``(gx, gW)`` or ``(gx, gW, gb)`` of a convolution node; subclasses define
    ``_grads(x, W, gy) -> (gx, gW)``."""

    def __init__(self, stride, pad, with_bias: bool):
        self.stride = stride
        self.pad = pad
        self.with_bias = with_bias

    def forward_cpu(self, inputs):
        x, W, gy = inputs
        gx, gW = self._grads(x, W, gy)
        if self.with_bias:
            return gx, gW, gy.sum(axis=(0, 2, 3))
        return gx, gW

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError('double backpropagation of a convolution')


class CpuConvolution2DGrad(_CpuConvolutionGradNode):
    """Gradients of :class:`CpuConvolution2D`."""

    def _grads(self, x, W, gy):
        return (_conv_grad_x(gy, W, x.shape, self.stride, self.pad),
                _conv_grad_w(x, gy, W.shape[2:], self.stride, self.pad))


class CpuConvolution2D(_CpuConvolutionNode):
    """Dense 2D convolution on the CPU; see :func:`convolution_2d`."""

    grad_node = CpuConvolution2DGrad

    def _apply(self, x, W):
        return _conv_forward(x, W, self.stride, self.pad)


class CpuDeconvolution2DGrad(_CpuConvolutionGradNode):
    """Gradients of :class:`CpuDeconvolution2D`."""

    def _grads(self, x, W, gy):
        # A transposed convolution's input gradient is the convolution of gy with W, and
        # its weight gradient the convolution weight gradient with gy and x swapped.
        return (_conv_forward(gy, W, self.stride, self.pad),
                _conv_grad_w(gy, x, W.shape[2:], self.stride, self.pad))


class CpuDeconvolution2D(_CpuConvolutionNode):
    """Transposed 2D convolution on the CPU (the gradient of a convolution with respect
    to its input); see :func:`deconvolution_2d`."""

    w_in_axis = 0
    grad_node = CpuDeconvolution2DGrad

    def _apply(self, x, W):
        n, _, h, w = x.shape
        _, c, kh, kw = W.shape
        (sy, sx), (ph, pw) = self.stride, self.pad
        out_shape = (n, c, sy * (h - 1) + kh - 2 * ph, sx * (w - 1) + kw - 2 * pw)
        return _conv_grad_x(x, W, out_shape, self.stride, self.pad)


def convolution_2d(x, W, b=None, stride=1, pad=0):
    """2D convolution (the result of ``F.convolution_2d``), our kernel on the CPU.

    Args:
        x: ``(N, C, H, W)`` input.
        W: ``(O, C, kh, kw)`` filters.
        b: ``(O,)`` bias or ``None``.
        stride: Int or ``(sy, sx)``.
        pad: Int or ``(ph, pw)`` zero padding on each side.

    Returns:
        ``(N, O, H_out, W_out)`` Variable, ``H_out = (H + 2 ph - kh) // sy + 1``.
    """
    if not cpu_kernels_enabled(x):
        return F.convolution_2d(x, W, b, stride, pad)
    inputs = (x, W) if b is None else (x, W, b)
    return CpuConvolution2D(stride, pad).apply(inputs)[0]


def deconvolution_2d(x, W, b=None, stride=1, pad=0):
    """Transposed 2D convolution (the result of ``F.deconvolution_2d`` without
    ``outsize``), our kernel on the CPU.

    Args:
        x: ``(N, C, H, W)`` input.
        W: ``(C, O, kh, kw)`` filters (the layout of ``L.Deconvolution2D``).
        b: ``(O,)`` bias or ``None``.
        stride: Int or ``(sy, sx)``.
        pad: Int or ``(ph, pw)``.

    Returns:
        ``(N, O, sy (H - 1) + kh - 2 ph, sx (W - 1) + kw - 2 pw)`` Variable.
    """
    if not cpu_kernels_enabled(x):
        return F.deconvolution_2d(x, W, b, stride, pad)
    inputs = (x, W) if b is None else (x, W, b)
    return CpuDeconvolution2D(stride, pad).apply(inputs)[0]


def pointwise_convolution_2d(x, W):
    """1x1 convolution without bias (the result of ``F.convolution_2d``).

    Args:
        x: ``(N, C, H, W)`` input.
        W: ``(O, C, 1, 1)`` filters (the layout of ``L.Convolution2D(C, O, 1)``).

    Returns:
        ``(N, O, H, W)`` Variable.
    """
    return convolution_2d(x, W)


# ------------------------------------------------------------------------------------------
# Batch normalisation (training mode)

class CpuBatchNormalization(function_node.FunctionNode):
    """Batch normalisation over ``(N, H, W)`` of an ``(N, C, H, W)`` input with batch
    statistics, updating the running averages like Chainer's (unbiased variance)."""

    def __init__(self, eps, running_mean, running_var, decay):
        self.eps = eps
        self.running_mean = running_mean
        self.running_var = running_var
        self.decay = decay

    def check_type_forward(self, in_types):
        type_check._argname(in_types, ('x', 'gamma', 'beta'))
        x_type, gamma_type, beta_type = in_types
        type_check.expect(
            x_type.dtype.kind == 'f',
            x_type.ndim == 4,
            gamma_type.dtype == x_type.dtype,
            beta_type.dtype == x_type.dtype,
            gamma_type.shape == (x_type.shape[1],),
            beta_type.shape == (x_type.shape[1],),
        )

    def forward_cpu(self, inputs):
        self.retain_inputs((0, 1))
        x, gamma, beta = inputs
        n, c = x.shape[:2]
        x3 = numpy.ascontiguousarray(x).reshape(n, c, -1)
        y = numpy.empty_like(x3)
        mean = numpy.empty(c, dtype=numpy.float64)
        var = numpy.empty(c, dtype=numpy.float64)
        inv_std = numpy.empty(c, dtype=numpy.float64)
        _run(_bn_forward_kernel, x3, gamma, beta, float(self.eps), y, mean, var, inv_std)
        self.mean, self.inv_std = mean, inv_std
        if self.running_mean is not None:
            m = x3.shape[0] * x3.shape[2]
            adjust = m / max(m - 1., 1.)  # unbiased estimate, as Chainer's
            self.running_mean *= self.decay
            self.running_mean += ((1 - self.decay) * mean).astype(self.running_mean.dtype)
            self.running_var *= self.decay
            self.running_var += ((1 - self.decay) * adjust * var).astype(
                self.running_var.dtype)
        return y.reshape(x.shape),

    def backward(self, indexes, grad_outputs):
        x, gamma = self.get_retained_inputs()
        gy, = grad_outputs
        grads = CpuBatchNormalizationGrad(self.mean, self.inv_std).apply((x, gamma, gy))
        return tuple(grads[i] for i in indexes)


class CpuBatchNormalizationGrad(function_node.FunctionNode):
    """Gradients ``(gx, ggamma, gbeta)`` of :class:`CpuBatchNormalization`."""

    def __init__(self, mean, inv_std):
        self.mean = mean
        self.inv_std = inv_std

    def forward_cpu(self, inputs):
        x, gamma, gy = inputs
        n, c = x.shape[:2]
        x3 = numpy.ascontiguousarray(x).reshape(n, c, -1)
        gy3 = numpy.ascontiguousarray(gy).reshape(n, c, -1)
        gx = numpy.empty_like(x3)
        ggamma = numpy.empty(c, dtype=numpy.float64)
        gbeta = numpy.empty(c, dtype=numpy.float64)
        _run(_bn_backward_kernel, x3, gy3, gamma, self.mean, self.inv_std, gx, ggamma, gbeta)
        return gx.reshape(x.shape), ggamma.astype(x.dtype), gbeta.astype(x.dtype)

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError('double backpropagation of batch normalisation')


# ------------------------------------------------------------------------------------------
# Links: Chainer's, with the kernel chosen per call

class Convolution2D(L.Convolution2D):
    """:class:`chainer.links.Convolution2D` that runs our CPU kernels.

    Same arguments and parameters (``W``, ``b``), so snapshots load into either. Dense
    convolutions use :func:`convolution_2d`, depthwise ones (``groups`` = input channels
    = output channels, square kernel) :func:`depthwise_convolution_2d`; anything else
    (dilation, other groupings, GPU arrays, :func:`stock_kernels`) runs Chainer's.
    """

    def forward(self, x):
        if self.W.array is None:
            self._initialize_params(x.shape[1])
        if not cpu_kernels_enabled(x) or self.dilate != (1, 1) or self.cudnn_fast:
            return super().forward(x)
        o, _, kh, kw = self.W.shape
        if self.groups == 1:
            return convolution_2d(x, self.W, self.b, self.stride, self.pad)
        stride, pad = _pair(self.stride), _pair(self.pad)
        if (self.groups == x.shape[1] == o and kh == kw and stride[0] == stride[1]
                and pad[0] == pad[1]):
            y = depthwise_convolution_2d(x, self.W, stride[0], pad[0])
            return y if self.b is None else y + F.broadcast_to(self.b[:, None, None], y.shape)
        return super().forward(x)


class Deconvolution2D(L.Deconvolution2D):
    """:class:`chainer.links.Deconvolution2D` that runs :func:`deconvolution_2d` on the
    CPU (without ``outsize``, dilation and groups; else Chainer's)."""

    def forward(self, x):
        if self.W.array is None:
            self._initialize_params(x.shape[1])
        if (not cpu_kernels_enabled(x) or self.outsize != (None, None)
                or self.dilate != (1, 1) or self.groups != 1):
            return super().forward(x)
        return deconvolution_2d(x, self.W, self.b, self.stride, self.pad)


class BatchNormalization(L.BatchNormalization):
    """:class:`chainer.links.BatchNormalization` whose training-mode pass over an
    ``(N, C, H, W)`` input runs our numba kernels on the CPU.

    Same arguments, parameters and running statistics as Chainer's (snapshots load into
    either). Inference (fixed statistics), fine-tuning, other axes and devices, and
    :func:`stock_kernels` run Chainer's.
    """

    def forward(self, x, **kwargs):
        if (kwargs or not chainer.config.train or self.avg_mean is None
                or self.gamma is None or self.beta is None or x.ndim != 4
                or self.axis not in (None, (0, 2, 3)) or not cpu_kernels_enabled(x)
                or not _use_numba(x)):
            return super().forward(x, **kwargs)
        # Like Chainer's: no statistics update in the extra forward of a recomputation.
        if chainer.config.in_recomputing:
            mean, var = None, None
        else:
            mean, var = self.avg_mean, self.avg_var
        return CpuBatchNormalization(self.eps, mean, var, self.decay).apply(
            (x, self.gamma, self.beta))[0]
