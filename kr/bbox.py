"""Box helpers shared by datasets, models and the pipeline (one copy of each).

Boxes are float arrays of shape ``(R, 4)`` in image pixels, ordered ``(x_min, y_min, x_max,
y_max)`` unless a name says ``xywh`` (Kaggle's ``x y w h``: top-left corner, width, height).
The functions take NumPy or CuPy arrays and return the same kind.
"""

import chainer
import numpy as np


def xywh_to_xyxy(boxes):
    """``(R, 4)`` ``x y w h`` -> ``(R, 4)`` ``x_min y_min x_max y_max`` (same dtype and module)."""
    xp = chainer.backend.get_array_module(boxes)
    boxes = xp.asarray(boxes)
    return xp.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:4]], axis=1)


def xyxy_to_xywh(boxes):
    """``(R, 4)`` ``x_min y_min x_max y_max`` -> ``(R, 4)`` ``x y w h``."""
    xp = chainer.backend.get_array_module(boxes)
    boxes = xp.asarray(boxes)
    return xp.concatenate([boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]], axis=1)


def box_centers(boxes):
    """``(R, 4)`` xyxy boxes -> ``(R, 2)`` centres ``(x, y)``."""
    return (boxes[:, :2] + boxes[:, 2:4]) / 2


def padded_square_boxes(boxes, pad_ratio: float):
    """Squares centred on each box, side = longer box side x (1 + 2 x ``pad_ratio``).

    Character crops use ``pad_ratio = 0.2`` (SPEC section 2); the classifier's inference crop
    uses 0.1 (side = longer side x 1.2, SPEC section 4).

    Args:
        boxes: ``(R, 4)`` float xyxy boxes in pixels.
        pad_ratio: Margin on each side as a fraction of the longer box side.

    Returns:
        ``(R, 4)`` float xyxy squares (not rounded; see :func:`round_boxes_outward`).
    """
    xp = chainer.backend.get_array_module(boxes)
    boxes = xp.asarray(boxes, dtype=np.float64)
    centers = box_centers(boxes)
    side = xp.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * (1 + 2 * pad_ratio)
    half = xp.stack([side, side], axis=1) / 2
    return xp.concatenate([centers - half, centers + half], axis=1)


def round_boxes_outward(boxes):
    """Floor the top-left and ceil the bottom-right corners; returns ``(R, 4)`` int64."""
    xp = chainer.backend.get_array_module(boxes)
    return xp.concatenate([xp.floor(boxes[:, :2]), xp.ceil(boxes[:, 2:4])],
                          axis=1).astype(np.int64)


def iou_matrix(a, b):
    """Intersection over union of every pair of boxes.

    Args:
        a: ``(N, 4)`` xyxy boxes.
        b: ``(K, 4)`` xyxy boxes.

    Returns:
        ``(N, K)`` float IoU; 0 where both areas are zero.
    """
    xp = chainer.backend.get_array_module(a)
    tl = xp.maximum(a[:, None, :2], b[None, :, :2])
    br = xp.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = xp.prod(xp.clip(br - tl, 0, None), axis=2)
    area_a = xp.prod(a[:, 2:4] - a[:, :2], axis=1)
    area_b = xp.prod(b[:, 2:4] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return xp.where(union > 0, inter / xp.where(union > 0, union, 1), 0)
