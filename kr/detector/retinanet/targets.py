"""RetinaNet's target assignment: each anchor's class label and box regression target.

Lin et al. (arXiv:1708.02002, section 4): an anchor is assigned to the ground-truth box
it overlaps most when their IoU is at least the positive threshold, to the background
below the negative threshold, and is left out of the loss in between. The paper uses 0.5
and 0.4; the seed's TF config (``argmax_matcher``, SPEC section 11) uses 0.5 for both and
``force_match_for_each_row``, which also matches every box to its best anchor: that is
:func:`kr.detector.anchors.match_anchors` with ``low_quality=True``, our default too (a
character far smaller than every anchor is then still learned).

:func:`match_grid_anchors` gives exactly what ``match_anchors`` gives for anchors laid out
on level grids, from the IoUs of only the anchor-box pairs that can overlap: a page has
~10^5 anchors and ~10^2 characters, and the dense IoU matrix took 2 s per 512 x 512 page
on one core, most of a CPU training step.
"""

import chainer
import numpy as np

from kr.detector.anchors import IGNORED
from kr.detector.anchors import match_anchors
from kr.detector.anchors import NEGATIVE
from kr.detector.anchors import POSITIVE
from kr.detector.box_coder import encode_boxes
from kr.detector.box_coder import TF_OD_WEIGHTS

#: IoU from which an anchor is positive (paper and TF config).
POSITIVE_IOU = 0.5
#: IoU under which an anchor is background (TF config: ``unmatched_threshold`` 0.5; the
#: paper's 0.4 leaves anchors of IoU 0.4-0.5 out of the loss).
NEGATIVE_IOU = 0.5
#: Class target of an anchor left out of the loss (``labels`` of :func:`assign_targets`).
IGNORE_LABEL = -1


def _grid_pairs(xp, height, width, stride, shapes, offset, gt):
    """Anchor and box indices of the pairs of one level that may overlap (a superset)."""
    pairs_a, pairs_g = [], []
    n_shapes = len(shapes)
    for a, (aw, ah) in enumerate(shapes):
        # cells whose anchor centre (c + 0.5) stride is within half the anchor of the box
        x_lo = xp.maximum(xp.floor((gt[:, 0] - aw / 2) / stride - 0.5), 0).astype(np.int64)
        x_hi = xp.minimum(xp.ceil((gt[:, 2] + aw / 2) / stride - 0.5), width - 1)
        y_lo = xp.maximum(xp.floor((gt[:, 1] - ah / 2) / stride - 0.5), 0).astype(np.int64)
        y_hi = xp.minimum(xp.ceil((gt[:, 3] + ah / 2) / stride - 0.5), height - 1)
        nx = xp.maximum(x_hi.astype(np.int64) - x_lo + 1, 0)
        ny = xp.maximum(y_hi.astype(np.int64) - y_lo + 1, 0)
        counts = nx * ny
        total = int(counts.sum())
        if total == 0:
            continue
        # pair p belongs to box g(p), the k-th cell of its range (no repeat with array
        # counts: CuPy lacks it)
        ends = xp.cumsum(counts)
        pair = xp.arange(total)
        g = xp.searchsorted(ends, pair, side='right')
        k = pair - (ends - counts)[g]
        x = x_lo[g] + k % nx[g]
        y = y_lo[g] + k // nx[g]
        pairs_a.append(offset + (y * width + x) * n_shapes + a)
        pairs_g.append(g)
    return pairs_a, pairs_g


def match_grid_anchors(anchors, grids, gt_bboxes, positive_iou: float, negative_iou: float,
                       low_quality: bool = True):
    """:func:`kr.detector.anchors.match_anchors` for anchors on level grids, computed
    from the anchor-box pairs that can overlap; the same result (same IoUs, same ties).

    Args:
        anchors: ``(R, 4)`` float32 xyxy: the levels' :func:`kr.detector.anchors.grid_anchors`
            concatenated.
        grids: ``(height, width, stride, shapes)`` of each level, as given to
            ``grid_anchors``.
        gt_bboxes: ``(G, 4)`` xyxy; ``G`` may be 0.
        positive_iou: IoU from which an anchor is positive.
        negative_iou: IoU under which an anchor is negative.
        low_quality: Also match each box's best anchors.

    Returns:
        tuple ``(index, label)`` as ``match_anchors``.

    Raises:
        ValueError: ``negative_iou > positive_iou`` or grids that do not add up to
        ``anchors``.
    """
    if negative_iou > positive_iou:
        raise ValueError('negative_iou {} must not exceed positive_iou {}'.format(
            negative_iou, positive_iou))
    xp = chainer.backend.get_array_module(anchors)
    n = len(anchors)
    if sum(h * w * len(s) for h, w, _, s in grids) != n:
        raise ValueError('the level grids hold {} anchors, not {}'.format(
            sum(h * w * len(s) for h, w, _, s in grids), n))
    gt = xp.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
    index = xp.zeros(n, dtype=np.int32)
    best = xp.zeros(n, dtype=np.float64)
    pairs_a, pairs_g, offset = [], [], 0
    for height, width, stride, shapes in grids:
        level_a, level_g = _grid_pairs(xp, height, width, stride,
                                       np.asarray(shapes, dtype=np.float64), offset, gt)
        pairs_a += level_a
        pairs_g += level_g
        offset += height * width * len(shapes)
    if pairs_a:
        pa, pg = xp.concatenate(pairs_a), xp.concatenate(pairs_g)
        # the IoU of each pair with the operations of kr.bbox.iou_matrix (same values)
        a, b = xp.asarray(anchors, dtype=np.float64)[pa], gt[pg]
        wh = xp.clip(xp.minimum(a[:, 2:4], b[:, 2:4]) - xp.maximum(a[:, :2], b[:, :2]), 0,
                     None)
        inter = wh[:, 0] * wh[:, 1]
        union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
                 + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)
        iou = xp.where(union > 0, inter / xp.where(union > 0, union, 1), 0)
        overlap = iou > 0
        pa, pg, iou = pa[overlap], pg[overlap], iou[overlap]
    else:
        pa = pg = xp.zeros(0, dtype=np.int64)
        iou = xp.zeros(0, dtype=np.float64)
    if len(iou):
        # per anchor its best box, the first of ties (argmax's choice)
        order = xp.lexsort(xp.stack([pg, -iou, pa]))
        first = xp.ones(len(order), dtype=bool)
        first[1:] = pa[order][1:] != pa[order][:-1]
        top = order[first]
        index[pa[top]] = pg[top].astype(np.int32)
        best[pa[top]] = iou[top]
    label = xp.full(n, IGNORED, dtype=np.int32)
    label[best < negative_iou] = NEGATIVE
    label[best >= positive_iou] = POSITIVE
    if low_quality and len(iou):
        gt_best = xp.zeros(len(gt), dtype=np.float64)
        by_gt = xp.lexsort(xp.stack([-iou, pg]))
        head = xp.ones(len(by_gt), dtype=bool)
        head[1:] = pg[by_gt][1:] != pg[by_gt][:-1]
        gt_best[pg[by_gt[head]]] = iou[by_gt[head]]
        ties = xp.nonzero(iou == gt_best[pg])[0]
        # in (anchor, box) order: an anchor that is the best of several boxes keeps the
        # last of them, as match_anchors
        ties = ties[xp.lexsort(xp.stack([pg[ties], pa[ties]]))]
        index[pa[ties]] = pg[ties].astype(np.int32)
        label[pa[ties]] = POSITIVE
    index[label == NEGATIVE] = -1
    return index, label


def assign_targets(anchors, gt_bboxes, gt_labels=None, positive_iou: float = POSITIVE_IOU,
                   negative_iou: float = NEGATIVE_IOU, low_quality: bool = True,
                   weights=TF_OD_WEIGHTS, grids=None):
    """Class and box targets of the anchors of one image.

    Args:
        anchors: ``(R, 4)`` float32 xyxy network-input pixels (NumPy or CuPy).
        gt_bboxes: ``(G, 4)`` float xyxy boxes, same pixels; ``G`` may be 0.
        gt_labels: ``(G,)`` int foreground classes from 0 (``None``: all 0, "character").
        positive_iou: IoU from which an anchor is positive.
        negative_iou: IoU under which an anchor is background.
        low_quality: Also make each box's best anchors positive.
        weights: Box coder weights (:mod:`kr.detector.box_coder`).
        grids: The anchors' level grids (:func:`match_grid_anchors`: the same targets,
            much faster); ``None``: any anchors, matched by the dense IoU matrix.

    Returns:
        tuple ``(labels, deltas)``: ``(R,)`` int32 ``1 + class`` of positive anchors, 0 for
        background and :data:`IGNORE_LABEL` for anchors left out; ``(R, 4)`` float32
        ``(dx, dy, dw, dh)`` of each positive anchor's box (0 elsewhere). Same array
        module as ``anchors``.

    Raises:
        ValueError: ``negative_iou > positive_iou``.
    """
    xp = chainer.backend.get_array_module(anchors)
    gt_bboxes = xp.asarray(gt_bboxes, dtype=np.float32).reshape(-1, 4)
    if grids is None:
        index, match = match_anchors(anchors, gt_bboxes, positive_iou, negative_iou,
                                     low_quality)
    else:
        index, match = match_grid_anchors(anchors, grids, gt_bboxes, positive_iou,
                                          negative_iou, low_quality)
    if gt_labels is None:
        gt_labels = xp.zeros(len(gt_bboxes), dtype=np.int32)
    gt_labels = xp.asarray(gt_labels, dtype=np.int32).reshape(-1)
    labels = xp.where(match == POSITIVE, 0, match).astype(np.int32)
    deltas = xp.zeros((len(anchors), 4), dtype=np.float32)
    positive = xp.nonzero(match == POSITIVE)[0]
    if len(positive):
        labels[positive] = 1 + gt_labels[index[positive]]
        deltas[positive] = encode_boxes(anchors[positive], gt_bboxes[index[positive]],
                                        weights)
    return labels, deltas
