"""Box regression targets of the anchor-based detectors: the R-CNN box coder.

A box is coded relative to an anchor (or a proposal) as ``(dx, dy, dw, dh)``:
``dx = wx (cx - cx_a) / w_a``, ``dy = wy (cy - cy_a) / h_a``, ``dw = ww log(w / w_a)``,
``dh = wh log(h / h_a)`` (Girshick et al., "Rich feature hierarchies", arXiv:1311.2524,
appendix C). The weights ``(wx, wy, ww, wh)`` scale the targets to unit-ish variance: the
TF Object Detection API configs of the second seed use ``(10, 10, 5, 5)`` for both Faster
R-CNN stages and for RetinaNet (SPEC section 11). Boxes are ``x_min y_min x_max y_max``.
Every function takes NumPy or CuPy arrays and returns the same module's.
"""

import math

import chainer
import numpy as np

#: The TF Object Detection API's ``faster_rcnn_box_coder`` scale factors.
TF_OD_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
#: Unit weights (the coder of the original R-CNN papers).
UNIT_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
#: Largest ``dw``, ``dh`` (after dividing by their weights) that decoding exponentiates: a
#: box at most 1000/16 times its anchor, which keeps a wild regression from overflowing.
MAX_LOG_SCALE = math.log(1000.0 / 16)


def _pair(anchors, other, name: str):
    """``(xp, anchors, other)`` as float64 arrays of one module, both ``(R, 4)``."""
    xp = chainer.backend.get_array_module(anchors)
    anchors = xp.asarray(anchors, dtype=np.float64)
    other = xp.asarray(other, dtype=np.float64)
    if anchors.ndim != 2 or anchors.shape[1] != 4 or anchors.shape != other.shape:
        raise ValueError('anchors and {} must both be (R, 4), got {} and {}'.format(
            name, anchors.shape, other.shape))
    return xp, anchors, other


def _centre_size(boxes):
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_boxes(anchors, boxes, weights=UNIT_WEIGHTS):
    """Regression targets of ``boxes`` relative to ``anchors``, row by row.

    Args:
        anchors: ``(R, 4)`` float xyxy boxes with positive width and height.
        boxes: ``(R, 4)`` float xyxy boxes with positive width and height.
        weights: ``(wx, wy, ww, wh)``.

    Returns:
        ``(R, 4)`` float32 ``(dx, dy, dw, dh)``.

    Raises:
        ValueError: Shapes that differ or are not ``(R, 4)``.
    """
    xp, anchors, boxes = _pair(anchors, boxes, 'boxes')
    ax, ay, aw, ah = _centre_size(anchors)
    bx, by, bw, bh = _centre_size(boxes)
    wx, wy, ww, wh = weights
    return xp.stack([wx * (bx - ax) / aw, wy * (by - ay) / ah,
                     ww * xp.log(bw / aw), wh * xp.log(bh / ah)], axis=1).astype(np.float32)


def decode_boxes(anchors, deltas, weights=UNIT_WEIGHTS):
    """Boxes from regression outputs: the inverse of :func:`encode_boxes`.

    Args:
        anchors: ``(R, 4)`` float xyxy boxes.
        deltas: ``(R, 4)`` float ``(dx, dy, dw, dh)``.
        weights: ``(wx, wy, ww, wh)`` of the encoding.

    Returns:
        ``(R, 4)`` float32 xyxy boxes (``dw``, ``dh`` clipped at :data:`MAX_LOG_SCALE`).

    Raises:
        ValueError: Shapes that differ or are not ``(R, 4)``.
    """
    xp, anchors, deltas = _pair(anchors, deltas, 'deltas')
    ax, ay, aw, ah = _centre_size(anchors)
    wx, wy, ww, wh = weights
    cx = deltas[:, 0] / wx * aw + ax
    cy = deltas[:, 1] / wy * ah + ay
    w = xp.exp(xp.minimum(deltas[:, 2] / ww, MAX_LOG_SCALE)) * aw
    h = xp.exp(xp.minimum(deltas[:, 3] / wh, MAX_LOG_SCALE)) * ah
    return xp.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h],
                    axis=1).astype(np.float32)
