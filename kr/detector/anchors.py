"""Anchors of the anchor-based detectors and their assignment to ground-truth boxes.

* :func:`anchor_shapes`: the ``(w, h)`` of the anchors at one location, from sizes and
  aspect ratios.
* :func:`grid_anchors`: those shapes at every cell of a feature map.
* :func:`match_anchors`: each anchor's ground-truth box and label (positive, negative or
  ignored) by IoU, as RetinaNet's and Faster R-CNN's target assignment do.

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
