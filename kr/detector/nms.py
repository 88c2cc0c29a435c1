"""Greedy non-maximum suppression, vectorised for NumPy and CuPy.

Boxes are visited by descending score (ties: lower index first); a box is dropped when its
IoU with an already kept box is at least the threshold. Instead of a Python loop over
boxes, the candidate pairs are found with a sweep along x (only boxes whose x-ranges
overlap can have IoU > 0), their IoUs computed at once, and the greedy result obtained as
the fixed point of "kept = not suppressed by a kept, higher-scoring box", which takes as
many passes over the pairs as the longest chain of suppressions (2-4 on text pages).
"""

import chainer
import numpy as np


def _overlap_pairs(bboxes):
    """Index pairs ``(a, b)`` of boxes whose x-ranges overlap (each unordered pair once)."""
    xp = chainer.backend.get_array_module(bboxes)
    n = len(bboxes)
    by_x1 = xp.argsort(bboxes[:, 0], kind='stable')
    x1 = bboxes[by_x1, 0]
    # In x1 order, box k can only overlap the boxes after it whose x1 is left of its x2.
    end = xp.searchsorted(x1, bboxes[by_x1, 2], side='left')
    start = xp.arange(1, n + 1)
    counts = xp.maximum(end - start, 0)
    n_pairs = int(counts.sum())
    cum = xp.cumsum(counts)
    pair = xp.arange(n_pairs)
    first = xp.searchsorted(cum, pair, side='right')
    second = pair - (cum - counts)[first] + start[first]
    return by_x1[first], by_x1[second]


def _pair_iou(a, b):
    """IoU of the box pairs ``a[k], b[k]`` (``(E, 4)`` each); 0 where the union is empty."""
    xp = chainer.backend.get_array_module(a)
    w = xp.minimum(a[:, 2], b[:, 2]) - xp.maximum(a[:, 0], b[:, 0])
    h = xp.minimum(a[:, 3], b[:, 3]) - xp.maximum(a[:, 1], b[:, 1])
    inter = xp.maximum(w, 0) * xp.maximum(h, 0)
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
             + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)
    return xp.where(union > 0, inter / xp.where(union > 0, union, 1), 0)


def non_maximum_suppression(bboxes, threshold: float, scores=None, limit: int = None):
    """Greedy NMS: keep boxes by descending score, dropping those with IoU >= ``threshold``
    to a box kept before them.

    Args:
        bboxes: ``(R, 4)`` float ``x_min y_min x_max y_max`` (any consistent unit), NumPy or
            CuPy.
        threshold: IoU at or above which a box is suppressed, in ``(0, 1]``.
        scores: ``(R,)`` scores; ``None`` visits the boxes in the given order.
        limit: Keep at most this many boxes.

    Returns:
        ``(K,)`` int32 indices into ``bboxes`` of the kept boxes, highest score first (same
        array module as ``bboxes``).

    Raises:
        ValueError: ``threshold`` outside ``(0, 1]`` or ``bboxes`` not ``(R, 4)``.
    """
    if not 0 < threshold <= 1:
        raise ValueError('NMS threshold must be in (0, 1], got {}'.format(threshold))
    xp = chainer.backend.get_array_module(bboxes)
    bboxes = xp.asarray(bboxes)
    if bboxes.ndim != 2 or bboxes.shape[1] != 4:
        raise ValueError('bboxes must be (R, 4), got shape {}'.format(bboxes.shape))
    n = len(bboxes)
    if n == 0:
        return xp.zeros((0,), dtype=np.int32)
    if scores is None:
        order = xp.arange(n)
    else:
        order = xp.argsort(-xp.asarray(scores), kind='stable')
    ranked = bboxes[order].astype(np.float64)
    a, b = _overlap_pairs(ranked)
    hit = _pair_iou(ranked[a], ranked[b]) >= threshold
    # Orient each suppressing pair from the higher-ranked (lower position) box.
    strong = xp.minimum(a[hit], b[hit])
    weak = xp.maximum(a[hit], b[hit])
    keep = xp.ones(n, dtype=bool)
    for _ in range(n + 1):
        suppressed = xp.zeros(n, dtype=bool)
        suppressed[weak[keep[strong]]] = True
        new_keep = ~suppressed
        if bool((new_keep == keep).all()):
            break
        keep = new_keep
    kept = order[xp.nonzero(keep)[0]].astype(np.int32)
    return kept if limit is None else kept[:limit]


def per_class_nms(bboxes, labels, scores, threshold: float, n_class: int):
    """:func:`non_maximum_suppression` within each class.

    Args:
        bboxes: ``(R, 4)`` xyxy boxes (NumPy or CuPy).
        labels: ``(R,)`` int class of each box.
        scores: ``(R,)`` scores.
        threshold: IoU at or above which a lower-scored box of the same class is dropped.
        n_class: Number of classes.

    Returns:
        Indices of the kept boxes, highest score first.
    """
    if n_class == 1:
        return non_maximum_suppression(bboxes, threshold, scores)
    xp = chainer.backend.get_array_module(bboxes)
    keep = xp.concatenate([
        xp.nonzero(labels == c)[0][non_maximum_suppression(
            bboxes[labels == c], threshold, scores[labels == c])]
        for c in range(n_class)])
    return keep[xp.argsort(-scores[keep], kind='stable')]
