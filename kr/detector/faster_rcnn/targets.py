"""Faster R-CNN's three creators: anchor targets, proposals and proposal (RoI) targets.

Ren et al., "Faster R-CNN", arXiv:1506.01497, sections 3.1.2-3.1.3 and 3.2; the numbers
are the TF Object Detection API defaults of the seed's ``faster_rcnn_resnet101`` config
(SPEC section 11) unless a constant says otherwise.

* :func:`anchor_targets`: which anchors the region proposal network (RPN) learns from
  (IoU >= 0.7 positive, < 0.3 negative, each box's best anchors positive too; 256 sampled,
  at most half positive) and their box regression targets.
* :func:`create_proposals`: the RPN's boxes -> proposals (decode, clip to the image, drop
  tiny boxes, top-k by objectness, NMS 0.7, keep the best).
* :func:`proposal_targets`: the proposals the box head learns from (the ground-truth
  boxes added; IoU >= 0.5 character, below background; a fixed count, a capped
  character fraction) with their labels and regression targets.

Boxes are ``x_min y_min x_max y_max`` in network-input pixels; NumPy or CuPy arrays.
Sampling draws from ``xp.random`` (seeded by ``kr.runs.seed_everything``).
"""

import chainer
import numpy as np

from kr.bbox import iou_matrix
from kr.detector.anchors import IGNORED
from kr.detector.anchors import match_grid_anchors
from kr.detector.anchors import NEGATIVE
from kr.detector.anchors import POSITIVE
from kr.detector.box_coder import decode_boxes
from kr.detector.box_coder import encode_boxes
from kr.detector.box_coder import TF_OD_WEIGHTS
from kr.detector.nms import non_maximum_suppression

#: RPN anchor matching (TF ``first_stage_positive/negative`` 0.7 / 0.3, the paper's).
RPN_POSITIVE_IOU = 0.7
RPN_NEGATIVE_IOU = 0.3
#: Anchors sampled per image and their largest positive share (TF
#: ``first_stage_minibatch_size`` 256, ``positive_balance_fraction`` 0.5).
RPN_BATCHSIZE = 256
RPN_POSITIVE_FRACTION = 0.5
#: IoU of the RPN's NMS (TF ``first_stage_nms_iou_threshold``).
RPN_NMS_THRESHOLD = 0.7
#: Proposals ranked before the NMS and kept after it. The paper keeps 2,000 of 12,000 in
#: training and 300 of 6,000 at test time (TF: ``first_stage_max_proposals`` 300), too
#: few for a page of up to 614 characters (SPEC section 11): 2,000 after the NMS here, in
#: both. Before it, 4,000: the NMS of a dense page costs the square of its overlapping
#: boxes (12,000 took seconds on a CPU), and 4,000 is still six per character.
PRE_NMS_TRAIN, POST_NMS_TRAIN = 4000, 2000
PRE_NMS_TEST, POST_NMS_TEST = 4000, 2000
#: Proposals narrower or lower than this many input pixels are dropped (a character at
#: 512 x 512 is 8-20 px high and rarely under 4 px wide).
MIN_PROPOSAL_SIZE = 2.0
#: Proposal (RoI) sampling: count per image and largest character share (Detectron's
#: 512 / 0.25; the TF proto's 64 / 0.25 would see a tenth of a dense page's characters).
ROI_BATCHSIZE = 512
ROI_POSITIVE_FRACTION = 0.25
#: A RoI is a character from this IoU with a box, background below it (TF, the paper).
ROI_POSITIVE_IOU = 0.5


def _sample(xp, candidates, count: int):
    """``count`` of the indices ``candidates`` drawn without replacement (all if fewer)."""
    if len(candidates) <= count:
        return candidates
    return candidates[xp.random.permutation(len(candidates))[:count]]


def anchor_targets(anchors, levels, gt_bboxes, positive_iou: float = RPN_POSITIVE_IOU,
                   negative_iou: float = RPN_NEGATIVE_IOU, batchsize: int = RPN_BATCHSIZE,
                   positive_fraction: float = RPN_POSITIVE_FRACTION, weights=TF_OD_WEIGHTS):
    """Labels and regression targets of the anchors of one image.

    Args:
        anchors: ``(A, 4)`` anchors of all levels.
        levels: Their grid, per level ``(stride, shapes, height, width)``.
        gt_bboxes: ``(G, 4)`` character boxes (``G`` may be 0).
        positive_iou: IoU from which an anchor is positive.
        negative_iou: IoU below which an anchor is negative.
        batchsize: Anchors sampled for the loss.
        positive_fraction: Largest share of positives in the sample.
        weights: Box coder weights.

    Returns:
        tuple ``(labels, targets)``: ``(A,)`` int32, :data:`~kr.detector.anchors.POSITIVE`
        (1) or :data:`~kr.detector.anchors.NEGATIVE` (0) for the sampled anchors and
        :data:`~kr.detector.anchors.IGNORED` (-1) for the rest; ``(A, 4)`` float32
        targets of the positives (zero elsewhere).
    """
    xp = chainer.backend.get_array_module(anchors)
    grids = [(height, width, stride, shapes) for stride, shapes, height, width in levels]
    index, label = match_grid_anchors(anchors, grids, gt_bboxes, positive_iou, negative_iou)
    positive = xp.nonzero(label == POSITIVE)[0]
    negative = xp.nonzero(label == NEGATIVE)[0]
    positive = _sample(xp, positive, int(batchsize * positive_fraction))
    negative = _sample(xp, negative, batchsize - len(positive))
    labels = xp.full(len(anchors), IGNORED, dtype=np.int32)
    labels[negative] = NEGATIVE
    labels[positive] = POSITIVE
    targets = xp.zeros((len(anchors), 4), dtype=np.float32)
    if len(positive):
        gt_bboxes = xp.asarray(gt_bboxes, dtype=np.float32).reshape(-1, 4)
        targets[positive] = encode_boxes(anchors[positive], gt_bboxes[index[positive]],
                                         weights)
    return labels, targets


def create_proposals(anchors, scores, deltas, size: int, pre_nms: int, post_nms: int,
                     nms_threshold: float = RPN_NMS_THRESHOLD,
                     min_size: float = MIN_PROPOSAL_SIZE, weights=TF_OD_WEIGHTS):
    """The proposals of one image from its RPN outputs.

    Args:
        anchors: ``(A, 4)`` anchors.
        scores: ``(A,)`` objectness logits.
        deltas: ``(A, 4)`` box regression outputs.
        size: Side of the (square) network input: proposals are clipped to it.
        pre_nms: Best-scored boxes kept before the NMS.
        post_nms: Most proposals returned.
        nms_threshold: IoU of the NMS.
        min_size: Proposals with a side below this are dropped.
        weights: Box coder weights.

    Returns:
        ``(K, 4)`` float32 proposals, best objectness first, ``K <= post_nms``.
    """
    xp = chainer.backend.get_array_module(anchors)
    order = xp.argsort(-scores, kind='stable')[:pre_nms]
    boxes = xp.clip(decode_boxes(anchors[order], deltas[order], weights), 0, size)
    keep = xp.nonzero((boxes[:, 2] - boxes[:, 0] >= min_size)
                      & (boxes[:, 3] - boxes[:, 1] >= min_size))[0]
    boxes = boxes[keep]
    keep = non_maximum_suppression(boxes, nms_threshold, limit=post_nms)
    return boxes[keep].astype(np.float32)


def proposal_targets(rois, gt_bboxes, batchsize: int = ROI_BATCHSIZE,
                     positive_fraction: float = ROI_POSITIVE_FRACTION,
                     positive_iou: float = ROI_POSITIVE_IOU, weights=TF_OD_WEIGHTS):
    """The RoIs the box head learns from in one image, with their targets.

    The ground-truth boxes join the proposals (so every character has a RoI from the first
    iteration); a RoI is a character (label 1) when its best IoU with a box is at least
    ``positive_iou``, background (0) otherwise. At most ``batchsize * positive_fraction``
    characters are sampled, and background fills the rest of ``batchsize`` (fewer when
    there are fewer RoIs).

    Args:
        rois: ``(K, 4)`` proposals.
        gt_bboxes: ``(G, 4)`` character boxes (``G`` may be 0).
        batchsize: RoIs sampled.
        positive_fraction: Largest share of characters.
        positive_iou: IoU from which a RoI is a character.
        weights: Box coder weights.

    Returns:
        tuple ``(rois, labels, targets)``: ``(S, 4)`` float32 sampled RoIs, characters
        first; ``(S,)`` int32 labels; ``(S, 4)`` float32 regression targets of the
        characters (zero for background).
    """
    xp = chainer.backend.get_array_module(rois)
    gt_bboxes = xp.asarray(gt_bboxes, dtype=np.float32).reshape(-1, 4)
    rois = xp.concatenate([xp.asarray(rois, dtype=np.float32).reshape(-1, 4), gt_bboxes])
    if len(gt_bboxes):
        iou = iou_matrix(rois, gt_bboxes)
        index = iou.argmax(axis=1)
        best = iou.max(axis=1)
    else:
        index = xp.zeros(len(rois), dtype=np.int64)
        best = xp.zeros(len(rois), dtype=np.float32)
    positive = _sample(xp, xp.nonzero(best >= positive_iou)[0],
                       int(round(batchsize * positive_fraction)))
    negative = _sample(xp, xp.nonzero(best < positive_iou)[0], batchsize - len(positive))
    keep = xp.concatenate([positive, negative])
    labels = xp.zeros(len(keep), dtype=np.int32)
    labels[:len(positive)] = 1
    targets = xp.zeros((len(keep), 4), dtype=np.float32)
    if len(positive):
        targets[:len(positive)] = encode_boxes(rois[positive], gt_bboxes[index[positive]],
                                               weights)
    return rois[keep], labels, targets
