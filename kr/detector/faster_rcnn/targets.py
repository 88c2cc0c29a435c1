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


def _grid_pairs(levels, gt_bboxes):
    """Every (anchor, box) pair of positive IoU, found from the anchor grid.

    An anchor can overlap a box only if its centre lies within half the anchor's extent
    of the box, so each box is compared with the cells of a small window on each level
    instead of with every anchor (a page has about 10^5 anchors and 10^2-10^3 boxes).

    Args:
        levels: Per level ``(stride, shapes, height, width)``, the arguments of
            :func:`~kr.detector.anchors.grid_anchors`, in the order of the anchors.
        gt_bboxes: ``(G, 4)`` float64 NumPy boxes.

    Returns:
        tuple ``(anchor, box)`` of int64 NumPy index arrays (some pairs may have IoU 0).
    """
    anchor_ids, box_ids = [], []
    offset = 0
    for stride, shapes, height, width in levels:
        shapes = np.asarray(shapes, dtype=np.float64).reshape(-1, 2)
        n_shapes = len(shapes)
        half_w, half_h = shapes[:, 0].max() / 2, shapes[:, 1].max() / 2
        # Cells whose centre (i + 0.5) * stride is strictly inside the widened box.
        x0 = np.clip(np.floor((gt_bboxes[:, 0] - half_w) / stride - 0.5), 0, width)
        x1 = np.clip(np.ceil((gt_bboxes[:, 2] + half_w) / stride - 0.5), 0, width)
        y0 = np.clip(np.floor((gt_bboxes[:, 1] - half_h) / stride - 0.5), 0, height)
        y1 = np.clip(np.ceil((gt_bboxes[:, 3] + half_h) / stride - 0.5), 0, height)
        nx = (x1 - x0).astype(np.int64)
        ny = (y1 - y0).astype(np.int64)
        counts = nx * ny
        box = np.repeat(np.arange(len(gt_bboxes)), counts)
        k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        cx = x0.astype(np.int64)[box] + k % nx[box]
        cy = y0.astype(np.int64)[box] + k // nx[box]
        cell = cy * width + cx
        anchor_ids.append((offset + cell[:, None] * n_shapes
                           + np.arange(n_shapes)[None]).ravel())
        box_ids.append(np.repeat(box, n_shapes))
        offset += height * width * n_shapes
    return np.concatenate(anchor_ids), np.concatenate(box_ids)


def match_grid_anchors(anchors, levels, gt_bboxes, positive_iou: float = RPN_POSITIVE_IOU,
                       negative_iou: float = RPN_NEGATIVE_IOU):
    """:func:`kr.detector.anchors.match_anchors` (with ``low_quality``) for grid anchors,
    computing only the IoUs that can be positive.

    The result is the same as ``match_anchors(anchors, gt_bboxes, positive_iou,
    negative_iou)`` (ties included: an anchor that is the best of several boxes keeps the
    last), but its cost grows with the pairs that overlap, not with anchors x boxes: the
    dense IoU matrix of a page takes seconds on a CPU.

    Args:
        anchors: ``(R, 4)`` anchors of ``levels`` (NumPy or CuPy).
        levels: Per level ``(stride, shapes, height, width)`` (see :func:`_grid_pairs`).
        gt_bboxes: ``(G, 4)`` boxes (``G`` may be 0).
        positive_iou: IoU from which an anchor is positive.
        negative_iou: IoU under which an anchor is negative.

    Returns:
        tuple ``(index, label)`` of ``(R,)`` int32 arrays (the anchors' array module).

    Raises:
        ValueError: ``negative_iou > positive_iou`` or anchors that do not fit ``levels``.
    """
    if negative_iou > positive_iou:
        raise ValueError('negative_iou {} must not exceed positive_iou {}'.format(
            negative_iou, positive_iou))
    xp = chainer.backend.get_array_module(anchors)
    cpu = chainer.backend.CpuDevice()
    n = len(anchors)
    if n != sum(h * w * len(shapes) for _, shapes, h, w in levels):
        raise ValueError('{} anchors do not fit the grid levels given'.format(n))
    gt = np.asarray(cpu.send(gt_bboxes), dtype=np.float64).reshape(-1, 4)
    index = np.full(n, -1, dtype=np.int32)
    label = np.full(n, NEGATIVE, dtype=np.int32)
    if len(gt):
        a, g = _grid_pairs(levels, gt)
        boxes = np.asarray(cpu.send(anchors), dtype=np.float64)[a]
        iou = _pair_iou(boxes, gt[g])
        # Best box of each anchor: the first of its pairs by (anchor, -iou, box).
        order = np.lexsort((g, -iou, a))
        first = order[np.concatenate([[True], a[order][1:] != a[order][:-1]])]
        best = np.zeros(n)
        best[a[first]] = iou[first]
        index[a[first]] = g[first]
        label[best >= negative_iou] = IGNORED
        label[best >= positive_iou] = POSITIVE
        gt_best = np.zeros(len(gt))
        np.maximum.at(gt_best, g, iou)
        tie = (iou == gt_best[g]) & (gt_best[g] > 0)
        # Ascending box order, so that assigning leaves the last box of each anchor.
        ties = np.lexsort((g[tie], a[tie]))
        index[a[tie][ties]] = g[tie][ties]
        label[a[tie]] = POSITIVE
        index[label == NEGATIVE] = -1
    return xp.asarray(index), xp.asarray(label)


def _pair_iou(a, b):
    """IoU of the rows of ``a`` and ``b`` (``(E, 4)`` NumPy each)."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
             + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


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
    index, label = match_grid_anchors(anchors, levels, gt_bboxes, positive_iou, negative_iou)
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
