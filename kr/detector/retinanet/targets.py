"""RetinaNet's target assignment: each anchor's class label and box regression target.

Lin et al. (arXiv:1708.02002, section 4): an anchor is assigned to the ground-truth box
it overlaps most when their IoU is at least the positive threshold, to the background
below the negative threshold, and is left out of the loss in between. The paper uses 0.5
and 0.4; the seed's TF config (``argmax_matcher``, SPEC section 11) uses 0.5 for both and
``force_match_for_each_row``, which also matches every box to its best anchor: that is
:func:`kr.detector.anchors.match_anchors` with ``low_quality=True``, our default too (a
character far smaller than every anchor is then still learned).

:func:`kr.detector.anchors.match_grid_anchors` gives exactly what ``match_anchors`` gives
for anchors laid out on level grids, from the IoUs of only the anchor-box pairs that can overlap: a page has
~10^5 anchors and ~10^2 characters, and the dense IoU matrix took 2 s per 512 x 512 page
on one core, most of a CPU training step.
"""

import chainer
import numpy as np

from kr.detector.anchors import match_anchors
from kr.detector.anchors import match_grid_anchors
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
