"""RoIAlign (He et al., "Mask R-CNN", arXiv:1703.06870, section 3) vectorised for the CPU.

The second stage of Faster R-CNN pools a fixed ``outsize x outsize`` grid of features for
every region of interest. Chainer 7's ``F.roi_average_align_2d`` computes it, but its CPU
code is a Python loop over every output element (seconds for one page's proposals), so on
the CPU this module computes the same function with array operations; on a GPU it calls
Chainer's CUDA kernel.

Conventions are Chainer's (checked against ``F.roi_average_align_2d`` in the tests): rois
are ``(y_min, x_min, y_max, x_max)`` in input pixels, ``roi_indices`` the batch index of
each, ``spatial_scale`` the feature cells per input pixel (``1 / stride``); a RoI shorter
than one cell is treated as one cell long; each output bin averages
``sampling_ratio x sampling_ratio`` bilinear samples at the centres of a regular grid in
the bin; a sample more than one cell outside the map counts as zero, one within a cell
of the border reads the border.
"""

import chainer
import chainer.functions as F
import numpy as np
from chainer import function_node

#: Bilinear samples per bin and axis (Detectron's and chainercv's FPN default; a fixed
#: count keeps every RoI the same shape, so the CPU code needs no loop over RoIs).
SAMPLING_RATIO = 2


def _axis_taps(start, length, bins: int, sampling_ratio: int, limit: int):
    """Cell indices and weights along one axis: ``(R, bins, 2 * sampling_ratio)`` each.

    The weights of a bin sum to at most one: each sample contributes its two linear
    interpolation weights divided by ``sampling_ratio`` (zero for a sample outside).
    """
    bin_size = length / bins
    offsets = (np.arange(bins)[:, None]
               + (np.arange(sampling_ratio)[None] + 0.5) / sampling_ratio)  # (bins, s)
    p = start[:, None, None] + bin_size[:, None, None] * offsets[None]  # (R, bins, s)
    valid = (p >= -1) & (p <= limit)
    low = np.floor(p).astype(np.int64)
    low[low == limit] = limit - 1
    high = low + 1
    p = np.where(low <= -1, 0.0, np.where(high >= limit, limit - 1.0, p))
    w_low = (high - p) * (valid & (low >= 0))
    w_high = (p - low) * (valid & (high <= limit - 1))
    index = np.concatenate([np.clip(low, 0, limit - 1), np.clip(high, 0, limit - 1)], axis=2)
    weight = np.concatenate([w_low, w_high], axis=2) / sampling_ratio
    return index, weight


def _taps(shape, rois, roi_indices, outsize: int, spatial_scale: float,
          sampling_ratio: int):
    """Flat feature indices ``(R, o, o, T)`` and weights ``(R, o, o, T)`` of every bin
    (``T = (2 sampling_ratio) ** 2`` taps)."""
    _, _, height, width = shape
    rois = rois.astype(np.float64) * spatial_scale
    h = np.maximum(rois[:, 2] - rois[:, 0], 1.0)
    w = np.maximum(rois[:, 3] - rois[:, 1], 1.0)
    iy, wy = _axis_taps(rois[:, 0], h, outsize, sampling_ratio, height)
    ix, wx = _axis_taps(rois[:, 1], w, outsize, sampling_ratio, width)
    base = roi_indices.astype(np.int64)[:, None, None, None, None] * height * width
    index = base + iy[:, :, None, :, None] * width + ix[:, None, :, None, :]
    weight = wy[:, :, None, :, None] * wx[:, None, :, None, :]
    r = len(rois)
    return (index.reshape(r, outsize, outsize, -1),
            weight.reshape(r, outsize, outsize, -1).astype(np.float32))


class RoIAlignCPU(function_node.FunctionNode):
    """RoIAlign of NumPy features as a sparse linear map (one gather, one scatter-add)."""

    def __init__(self, outsize: int, spatial_scale: float, sampling_ratio: int):
        self.outsize = outsize
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio

    def forward_cpu(self, inputs):
        x, rois, roi_indices = inputs
        self._shape = x.shape
        n, c, h, w = x.shape
        self._index, self._weight = _taps(x.shape, rois, roi_indices, self.outsize,
                                          self.spatial_scale, self.sampling_ratio)
        flat = x.transpose(0, 2, 3, 1).reshape(n * h * w, c)
        y = np.zeros(self._index.shape[:3] + (c,), dtype=x.dtype)
        for t in range(self._index.shape[3]):  # a (R, o, o, C) gather per tap, not all at once
            y += self._weight[..., t, None] * flat[self._index[..., t]]
        y = y.transpose(0, 3, 1, 2)
        return y.astype(x.dtype, copy=False),

    def backward(self, indexes, grad_outputs):
        return RoIAlignCPUGrad(self).apply(grad_outputs) + (None, None)


class RoIAlignCPUGrad(function_node.FunctionNode):
    """The gradient of :class:`RoIAlignCPU` with respect to the features."""

    def __init__(self, forward):
        self.forward_node = forward

    def forward_cpu(self, inputs):
        gy, = inputs
        node = self.forward_node
        n, c, h, w = node._shape
        index = node._index.reshape(-1)
        weight = node._weight.reshape(len(gy), -1, node._weight.shape[3])  # (R, o * o, T)
        gy = gy.reshape(len(gy), c, -1)  # (R, C, o * o)
        # One weighted histogram of the taps per channel: faster than a scatter-add.
        flat = np.stack([np.bincount(index, (weight * gy[:, k, :, None]).reshape(-1),
                                     minlength=n * h * w) for k in range(c)], axis=1)
        flat = flat.astype(gy.dtype, copy=False)
        return flat.reshape(n, h, w, c).transpose(0, 3, 1, 2).copy(),

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError('RoIAlign has no second derivative here')


def roi_align_2d(x, rois, roi_indices, outsize: int, spatial_scale: float,
                 sampling_ratio: int = SAMPLING_RATIO):
    """Average RoIAlign of ``x`` over ``rois``: ``F.roi_average_align_2d``, fast on the CPU.

    Args:
        x: ``(N, C, H, W)`` float32 features (Variable or array).
        rois: ``(R, 4)`` float32 ``(y_min, x_min, y_max, x_max)`` in input pixels (array).
        roi_indices: ``(R,)`` int32 batch index of each RoI (array).
        outsize: Side of the pooled grid.
        spatial_scale: Feature cells per input pixel (``1 / stride``).
        sampling_ratio: Bilinear samples per bin and axis.

    Returns:
        ``(R, C, outsize, outsize)`` Variable.

    Raises:
        ValueError: ``rois`` and ``roi_indices`` that do not fit.
    """
    rois = chainer.as_array(rois)
    roi_indices = chainer.as_array(roi_indices)
    if rois.ndim != 2 or rois.shape[1] != 4 or roi_indices.shape != (len(rois),):
        raise ValueError('rois must be (R, 4) and roi_indices (R,), got {} and {}'.format(
            rois.shape, roi_indices.shape))
    rois = rois.astype(np.float32, copy=False)
    roi_indices = roi_indices.astype(np.int32, copy=False)
    if chainer.backend.get_array_module(rois) is not np:
        return F.roi_average_align_2d(x, rois, roi_indices, outsize, spatial_scale,
                                      sampling_ratio)
    y, = RoIAlignCPU(outsize, spatial_scale, sampling_ratio).apply((x, rois, roi_indices))
    return y
