"""RetinaNet's training loss as a pure function of the head outputs and the targets.

Lin et al., "Focal Loss for Dense Object Detection" (arXiv:1708.02002): the sigmoid focal
loss ``FL(p_t) = -alpha_t (1 - p_t) ** gamma log(p_t)`` on every class of every anchor not
left out (``alpha`` 0.25, ``gamma`` 2: the paper's best and the seed's TF config), and a
smooth-L1 loss on the box deltas of the positive anchors (the TF config's
``weighted_smooth_l1``, delta 1), both summed and divided by the number of positive
anchors of the batch (the paper's normalisation, the TF config's
``normalize_loss_by_num_matches``), at least 1.
"""

import chainer
import chainer.functions as F

#: Weight of the positive class in the focal loss (``1 - alpha`` for the negatives).
FOCAL_ALPHA = 0.25
#: Focusing exponent of the focal loss.
FOCAL_GAMMA = 2.0
#: Smooth-L1 (Huber) transition of the box loss (TF OD API default ``delta``).
HUBER_DELTA = 1.0
#: Weights of the two terms (TF config: ``classification_weight``, ``localization_weight``).
CLASS_WEIGHT = 1.0
BOX_WEIGHT = 1.0


def sigmoid_focal_loss(logits, targets, alpha: float = FOCAL_ALPHA,
                       gamma: float = FOCAL_GAMMA):
    """Element-wise sigmoid focal loss.

    ``p = sigmoid(x)``; with ``t`` the 0/1 target, ``p_t = p`` where ``t = 1`` and ``1 - p``
    where ``t = 0``, ``alpha_t`` likewise ``alpha`` and ``1 - alpha``; the loss is
    ``-alpha_t (1 - p_t) ** gamma log(p_t)``, with ``-log p_t`` computed from the logit
    (``softplus(x) - t x``), stable for any ``x``.

    Args:
        logits: ``(...)`` float logits (Variable or array).
        targets: ``(...)`` 0/1 targets of the same shape (array).
        alpha: Weight of the positive targets, in ``[0, 1]``.
        gamma: Focusing exponent (0: the weighted cross-entropy).

    Returns:
        Variable of ``logits``' shape.
    """
    xp = chainer.backend.get_array_module(targets)
    dtype = logits.dtype
    t = xp.asarray(targets).astype(dtype, copy=False)
    p = F.sigmoid(logits)
    ce = F.softplus(logits) - logits * t
    p_t = p * t + (1 - p) * (1 - t)
    alpha_t = (alpha * t + (1 - alpha) * (1 - t)).astype(dtype, copy=False)
    if gamma == 0:
        return alpha_t * ce
    return alpha_t * (1 - p_t) ** gamma * ce


def retinanet_loss(cls_logits, box_deltas, labels, target_deltas, alpha: float = FOCAL_ALPHA,
                   gamma: float = FOCAL_GAMMA, class_weight: float = CLASS_WEIGHT,
                   box_weight: float = BOX_WEIGHT, huber_delta: float = HUBER_DELTA):
    """The two loss terms of a batch.

    Args:
        cls_logits: ``(N, R, C)`` float class logits of the ``R`` anchors of each image
            (Variable or array).
        box_deltas: ``(N, R, 4)`` float predicted ``(dx, dy, dw, dh)``.
        labels: ``(N, R)`` int targets of :func:`kr.detector.retinanet.targets.assign_targets`
            (``1 + class``, 0 background, -1 left out).
        target_deltas: ``(N, R, 4)`` float coded boxes of the positive anchors.
        alpha: Focal loss weight of the positives.
        gamma: Focal loss exponent.
        class_weight: Weight of the classification term.
        box_weight: Weight of the box term.
        huber_delta: Smooth-L1 transition point.

    Returns:
        dict of scalar Variables ``cls`` (focal loss) and ``box`` (smooth L1), already
        weighted and divided by ``max(1, number of positive anchors)``; the training loss
        is their sum.
    """
    xp = chainer.backend.get_array_module(labels)
    dtype = cls_logits.dtype
    n_class = cls_logits.shape[-1]
    labels = xp.asarray(labels)
    one_hot = (labels[..., None] == xp.arange(1, n_class + 1)[None, None]).astype(dtype)
    valid = (labels >= 0).astype(dtype)[..., None]
    positive = (labels > 0).astype(dtype)
    n_positive = max(1.0, float(positive.sum()))
    focal = sigmoid_focal_loss(cls_logits, one_hot, alpha, gamma)
    cls = F.sum(focal * valid) / n_positive
    huber = F.huber_loss(box_deltas, xp.asarray(target_deltas).astype(dtype, copy=False),
                         huber_delta, reduce='no')
    box = F.sum(huber * positive[..., None]) / n_positive
    return {'cls': cls * class_weight, 'box': box * box_weight}
