"""The output layout of the CenterNet head, and decoding it into boxes.

The head predicts, per output cell, ``n_fg_class`` class logits, then the box size
``(w, h)`` in output cells, then the centre offset ``(dx, dy)`` (a logit, squashed by a
sigmoid into ``[0, 1)`` of a cell). This module is the only place that knows that order:
the loss, the decoder and ``detect`` go through :func:`split_output`.
Zhou et al., "Objects as Points" (arXiv:1904.07850).
"""

import collections

import chainer
import chainer.functions as F
import numpy as np

#: Channels after the class logits: size (w, h), then offset (dx, dy).
N_SIZE_CHANNELS = 2
N_OFFSET_CHANNELS = 2
N_BOX_CHANNELS = N_SIZE_CHANNELS + N_OFFSET_CHANNELS
#: Side of the max-pooling window that finds the heatmap peaks (CenterNet's NMS-free decoding).
PEAK_WINDOW = 3

HeadOutput = collections.namedtuple('HeadOutput', ['score', 'size', 'offset'])
HeadOutput.__doc__ = """The parts of a head output (Variables or arrays).

* ``score``: ``(N, n_fg_class, h, w)`` class logits (before the sigmoid);
* ``size``: ``(N, 2, h, w)`` box ``(width, height)`` in output cells;
* ``offset``: ``(N, 2, h, w)`` centre offset ``(dx, dy)`` in cells, after the sigmoid.
"""


def n_output_channels(n_fg_class: int) -> int:
    """Channels of the head for ``n_fg_class`` classes: classes + size + offset."""
    return n_fg_class + N_BOX_CHANNELS


def initial_head_bias(n_fg_class: int, score_bias: float) -> np.ndarray:
    """``(n_fg_class + 4,)`` float32 initial bias of the head: ``score_bias`` on the class
    logits, 0 on size and offset."""
    bias = np.zeros(n_output_channels(n_fg_class), dtype=np.float32)
    bias[:n_fg_class] = score_bias
    return bias


def split_output(y, n_fg_class: int) -> HeadOutput:
    """Split a raw head output ``(N, n_fg_class + 4, h, w)`` into its named parts.

    The offset logits go through a sigmoid here (and only here). Works on Variables
    (keeps the graph) and on NumPy/CuPy arrays (returns Variables).
    """
    if y.shape[1] != n_output_channels(n_fg_class):
        raise ValueError('head output has {} channels, expected {} for n_fg_class={}'.format(
            y.shape[1], n_output_channels(n_fg_class), n_fg_class))
    score, size, offset = F.split_axis(y, [n_fg_class, n_fg_class + N_SIZE_CHANNELS], axis=1)
    return HeadOutput(score, size, F.sigmoid(offset))


def find_peaks(prob, score_threshold: float):
    """Cells that equal the maximum of their 3x3 neighbourhood and reach the threshold.

    Args:
        prob: ``(C, h, w)`` float heatmap probabilities (NumPy or CuPy).
        score_threshold: Minimum probability of a peak.

    Returns:
        tuple ``(labels, ys, xs)`` of ``(K,)`` int32 arrays (class, row, column), in
        row-major order of ``(label, y, x)``.
    """
    xp = chainer.backend.get_array_module(prob)
    pooled = F.max_pooling_2d(prob[None], PEAK_WINDOW, stride=1, pad=PEAK_WINDOW // 2,
                              cover_all=False).array[0]
    keep = (prob == pooled) & (prob >= score_threshold)
    labels, ys, xs = xp.nonzero(keep)
    return labels.astype(np.int32), ys.astype(np.int32), xs.astype(np.int32)


def decode(y, n_fg_class: int, score_threshold: float, stride: int):
    """Decode one image's head output into boxes in input pixels (before NMS).

    Class probabilities are ``sigmoid(logit)`` and ``score_threshold`` is a probability
    (see ``Res18UnetCenterNet`` for why the original's thresholds became 0.62 / 0.57).
    A peak at cell ``(i, j)`` gives the box ``(j + dx -/+ w / 2, i + dy -/+ h / 2)`` in
    cells, times ``stride``.

    Args:
        y: ``(n_fg_class + 4, h, w)`` raw head output of one image (NumPy or CuPy).
        n_fg_class: Number of classes.
        score_threshold: Minimum class probability of a detection.
        stride: Input pixels per output cell.

    Returns:
        tuple ``(bboxes, labels, scores)``: ``(K, 4)`` float32 ``x_min y_min x_max y_max``
        in input pixels, ``(K,)`` int32 class, ``(K,)`` float32 probability; same array
        module as ``y``.
    """
    with chainer.no_backprop_mode():
        out = split_output(y[None], n_fg_class)
        prob = F.sigmoid(out.score).array[0]
        size = out.size.array[0]
        offset = out.offset.array[0]
    xp = chainer.backend.get_array_module(prob)
    labels, ys, xs = find_peaks(prob, score_threshold)
    cx = xs.astype(np.float32) + offset[0, ys, xs]
    cy = ys.astype(np.float32) + offset[1, ys, xs]
    # A negative size (an untrained head) would make an inverted box; clamp it to a point.
    half_w = xp.maximum(size[0, ys, xs], 0) / 2
    half_h = xp.maximum(size[1, ys, xs], 0) / 2
    bboxes = xp.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    bboxes = (bboxes * np.float32(stride)).astype(np.float32).reshape(-1, 4)
    scores = prob[labels, ys, xs].astype(np.float32)
    return bboxes, labels, scores
