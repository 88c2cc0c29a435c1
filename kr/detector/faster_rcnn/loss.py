"""Faster R-CNN's losses: the RPN's and the box head's (Ren et al., arXiv:1506.01497, eq. 1).

Both are a classification term over the sampled anchors (RoIs) plus a Huber ("smooth L1",
delta 1) regression term over the positive ones, each divided by the number sampled; the
regression term is weighted 2 and the classification term 1, as the TF Object Detection API
config of the seed (``first/second_stage_localization_loss_weight: 2.0``, SPEC section 11).
The RPN's objectness is one sigmoid logit per anchor where TF has a two-way softmax: for two
classes the two are the same model (a softmax over ``(a, b)`` is the sigmoid of ``b - a``).
"""

import chainer
import chainer.functions as F
import numpy as np

from kr.detector.anchors import IGNORED
from kr.detector.anchors import POSITIVE

#: Weights of the regression and classification terms (TF config).
LOC_WEIGHT = 2.0
CLS_WEIGHT = 1.0


def _huber_sum(locs, targets, positive):
    """Huber loss (delta 1) summed over the rows ``positive`` of ``locs``."""
    if len(positive) == 0:
        return F.sum(locs[:0])
    return F.sum(F.huber_loss(locs[positive], targets[positive], 1.0, reduce='no'))


def rpn_loss(scores, locs, labels, targets):
    """The RPN loss of a batch.

    Args:
        scores: ``(N, A)`` objectness logits (Variable).
        locs: ``(N, A, 4)`` box regression outputs (Variable).
        labels: ``(N, A)`` int32 anchor labels of :func:`~kr.detector.faster_rcnn.targets.
            anchor_targets` (1 positive, 0 negative, -1 not sampled).
        targets: ``(N, A, 4)`` float32 regression targets.

    Returns:
        tuple ``(cls, loc)`` of scalar Variables (weights applied), each the batch's sum
        over the sampled anchors divided by their count (1 when none is sampled).
    """
    xp = chainer.backend.get_array_module(labels)
    labels = labels.reshape(-1)
    sampled = xp.nonzero(labels != IGNORED)[0]
    n = max(int(len(sampled)), 1)
    scores = F.reshape(scores, (-1,))
    cls = F.sum(F.sigmoid_cross_entropy(scores[sampled], labels[sampled], reduce='no'))
    positive = xp.nonzero(labels == POSITIVE)[0]
    loc = _huber_sum(F.reshape(locs, (-1, 4)), targets.reshape(-1, 4), positive)
    return CLS_WEIGHT * cls / n, LOC_WEIGHT * loc / n


def head_loss(cls_logits, locs, labels, targets):
    """The box head's loss over the sampled RoIs of a batch.

    Args:
        cls_logits: ``(S, n_fg_class + 1)`` class logits, background first (Variable).
        locs: ``(S, 4 * n_fg_class)`` class-specific box regression outputs (Variable).
        labels: ``(S,)`` int32 labels (0 background, ``c + 1`` foreground class ``c``).
        targets: ``(S, 4)`` float32 regression targets (of the labelled class).

    Returns:
        tuple ``(cls, loc)`` of scalar Variables (weights applied): the softmax cross
        entropy and the Huber loss of the foreground RoIs' own class, each summed and
        divided by ``S``.
    """
    xp = chainer.backend.get_array_module(labels)
    n = max(len(labels), 1)
    cls = F.sum(F.softmax_cross_entropy(cls_logits, labels, reduce='no'))
    positive = xp.nonzero(labels > 0)[0]
    locs = F.reshape(locs, (len(labels), -1, 4))
    # The regression of each foreground RoI's own class: (S, 4).
    own = locs[xp.arange(len(labels)), xp.maximum(labels - 1, 0)]
    loc = _huber_sum(own, targets.astype(np.float32), positive)
    return CLS_WEIGHT * cls / n, LOC_WEIGHT * loc / n
