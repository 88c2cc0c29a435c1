"""Anchors of the anchor-based detectors and their assignment to ground-truth boxes.

* :func:`anchor_shapes`: the ``(w, h)`` of the anchors at one location, from sizes and
  aspect ratios.
* :func:`grid_anchors`: those shapes at every cell of a feature map.
* :func:`match_anchors`: each anchor's ground-truth box and label (positive, negative or
  ignored) by IoU, as RetinaNet's and Faster R-CNN's target assignment do.
* :func:`match_grid_anchors`: the same for anchors laid out on level grids, from the IoUs of
  only the anchor-box pairs that can overlap (a page has ~10^5 anchors and ~10^2
  characters: the dense IoU matrix took 1-4 s a 512 x 512 page on one core, most of a
  training step; this about 0.1 s).

Boxes are ``x_min y_min x_max y_max`` in network-input pixels. An aspect ratio here is
``h / w`` (kuzushiji characters are mostly taller than wide), which is the inverse of the TF
Object Detection API's ``aspect_ratio = w / h``; the ratio set 0.5 / 1 / 2 of the seed's
configs is the same either way (SPEC section 11).
"""

import chainer
import numpy as np

from kr.bbox import iou_matrix

#: Label of an anchor matched to a box, of a background anchor, and of one left out of the
#: loss (between the two IoU thresholds).
POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


def anchor_shapes(sizes, ratios):
    """``(w, h)`` of anchors of area ``size ** 2`` and ``h / w = ratio``.

    Args:
        sizes: Anchor sides (pixels) of the square anchor of each scale.
        ratios: Aspect ratios ``h / w``.

    Returns:
        ``(len(sizes) * len(ratios), 2)`` float64 ``(w, h)``, size-major (all ratios of
        the first size, then the next).

    Raises:
        ValueError: An empty list, or a size or ratio that is not positive.
    """
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1)
    ratios = np.asarray(ratios, dtype=np.float64).reshape(-1)
    if len(sizes) == 0 or len(ratios) == 0:
        raise ValueError('anchor sizes and ratios must not be empty')
    if (sizes <= 0).any() or (ratios <= 0).any():
        raise ValueError('anchor sizes and ratios must be positive, got {} and {}'.format(
            sizes.tolist(), ratios.tolist()))
    w = sizes[:, None] / np.sqrt(ratios)[None]
    h = sizes[:, None] * np.sqrt(ratios)[None]
    return np.stack([w.ravel(), h.ravel()], axis=1)


def grid_anchors(height: int, width: int, stride: float, shapes, xp=np):
    """The anchors of a ``height x width`` feature map of stride ``stride``.

    Anchors are centred on the cells, at ``((x + 0.5) stride, (y + 0.5) stride)``.

    Args:
        height: Feature map rows.
        width: Feature map columns.
        stride: Input pixels per cell.
        shapes: ``(A, 2)`` ``(w, h)`` of the anchors at one cell (:func:`anchor_shapes`).
        xp: ``numpy`` or ``cupy``.

    Returns:
        ``(height * width * A, 4)`` float32 xyxy, row-major over cells and anchor-minor:
        anchor ``a`` of cell ``(y, x)`` is row ``(y * width + x) * A + a``, the order of a
        ``(N, A * k, H, W)`` head output transposed to ``(N, H, W, A, k)`` and reshaped.
    """
    shapes = np.asarray(shapes, dtype=np.float64).reshape(-1, 2)
    ys, xs = np.meshgrid((np.arange(height) + 0.5) * stride,
                         (np.arange(width) + 0.5) * stride, indexing='ij')
    centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
    half = shapes / 2
    anchors = np.concatenate([centres[:, None] - half[None], centres[:, None] + half[None]],
                             axis=2)
    return xp.asarray(anchors.reshape(-1, 4).astype(np.float32))


def match_anchors(anchors, gt_bboxes, positive_iou: float, negative_iou: float,
                  low_quality: bool = True):
    """Assign each anchor a ground-truth box and a label by IoU.

    An anchor whose best IoU is at least ``positive_iou`` is :data:`POSITIVE` (matched to
    that box), below ``negative_iou`` :data:`NEGATIVE`, otherwise :data:`IGNORED`. With
    ``low_quality``, each box's best anchors (all that tie for its highest IoU, if it is
    above zero) are positive too and matched to it, so that no box is left without an
    anchor (Ren et al., "Faster R-CNN", arXiv:1506.01497, section 3.1.2).

    Args:
        anchors: ``(R, 4)`` xyxy (NumPy or CuPy).
        gt_bboxes: ``(G, 4)`` xyxy; ``G`` may be 0 (every anchor is negative).
        positive_iou: IoU from which an anchor is positive.
        negative_iou: IoU under which an anchor is negative (``<= positive_iou``).
        low_quality: Also match each box's best anchors.

    Returns:
        tuple ``(index, label)``: ``(R,)`` int32 index of the matched box (``-1`` where
        none: negative anchors) and ``(R,)`` int32 labels.

    Raises:
        ValueError: ``negative_iou > positive_iou``.
    """
    if negative_iou > positive_iou:
        raise ValueError('negative_iou {} must not exceed positive_iou {}'.format(
            negative_iou, positive_iou))
    xp = chainer.backend.get_array_module(anchors)
    n = len(anchors)
    gt_bboxes = xp.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
    if len(gt_bboxes) == 0:
        return (xp.full(n, -1, dtype=np.int32), xp.full(n, NEGATIVE, dtype=np.int32))
    iou = iou_matrix(xp.asarray(anchors, dtype=np.float64), gt_bboxes)
    index = iou.argmax(axis=1).astype(np.int32)
    best = iou[xp.arange(n), index]
    label = xp.full(n, IGNORED, dtype=np.int32)
    label[best < negative_iou] = NEGATIVE
    label[best >= positive_iou] = POSITIVE
    if low_quality:
        gt_best = iou.max(axis=0)
        ties = (iou == gt_best[None]) & (gt_best[None] > 0)
        anchor_ids, gt_ids = xp.nonzero(ties)
        # An anchor that is the best of several boxes keeps the last of them (any is right).
        index[anchor_ids] = gt_ids.astype(np.int32)
        label[anchor_ids] = POSITIVE
    index[label == NEGATIVE] = -1
    return index, label


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
