"""The CenterNet training loss as a pure function of the head output and the targets.

Zhou et al., "Objects as Points" (arXiv:1904.07850): a focal-weighted logistic loss on the
class heatmap (the CornerNet variant with alpha = 2, beta = 4) and L1 losses on the box
size and centre offset at the centre cells.
"""

import chainer
import chainer.functions as F
import numpy as np

from kr.detector.centernet.decode import split_output

#: Weight of the size L1 term (CenterNet's lambda_size = 0.1; the original solution used 0.4).
SIZE_WEIGHT = 0.4
#: Weight of the offset L1 term (CenterNet's lambda_off).
OFFSET_WEIGHT = 1.0
#: Focal exponents: (1 - p)^alpha at peaks, (1 - y)^beta p^alpha elsewhere (CornerNet).
FOCAL_ALPHA = 2
FOCAL_BETA = 4


def centernet_loss(y, heatmap, size, offset, mask, n_fg_class: int = 1,
                   size_weight: float = SIZE_WEIGHT, offset_weight: float = OFFSET_WEIGHT):
    """Loss terms of a batch, each the mean over images of a per-image loss.

    Per image, with ``p = sigmoid(logit)`` and ``n`` = its number of centre cells (at least 1):

    * score: ``-(sum over peaks (1 - p)^2 log p + sum elsewhere (1 - y)^4 p^2 log(1 - p)) / n``,
      peaks being the cells where the target ``y`` is exactly 1;
    * size: ``size_weight x sum over centre cells |w - w*| + |h - h*| / n``;
    * offset: ``offset_weight x sum over centre cells |dx - dx*| + |dy - dy*| / n``.

    The batch value of each term is the mean over images, i.e. the batch sum divided by
    the batch size. The original divided the batch sum by the number of output channels
    (``n_fg_class + 4``) instead, a slip; we divide by the batch size (SPEC section 3 quirk
    (b)), so our loss is ``n_channels / batchsize`` times the original's, and the ``full``
    training preset rescales lr, weight decay and the clipping norm to take the same steps
    (see ``kr.detector.centernet.training.PRESETS``).

    Args:
        y: ``(N, n_fg_class + 4, h, w)`` float head output (Variable or array).
        heatmap: ``(N, n_fg_class, h, w)`` float targets in ``[0, 1]``.
        size: ``(N, 2, h, w)`` float ``(w, h)`` targets in cells.
        offset: ``(N, 2, h, w)`` float ``(dx, dy)`` targets in cells.
        mask: ``(N, h, w)`` float, 1 at centre cells, else 0.
        n_fg_class: Number of classes.
        size_weight: Weight of the size term.
        offset_weight: Weight of the offset term.

    Returns:
        dict of scalar Variables ``score``, ``size``, ``offset`` (already weighted; the
        training loss is their sum).
    """
    out = split_output(y, n_fg_class)
    xp = chainer.backend.get_array_module(heatmap)
    dtype = out.score.dtype
    heatmap = heatmap.astype(dtype, copy=False)
    mask = mask.astype(dtype, copy=False)[:, None]
    batchsize = len(heatmap)
    n = xp.maximum(mask.sum(axis=(1, 2, 3)), 1)

    peak = (heatmap == 1).astype(dtype)
    neg_weight = (1 - heatmap) ** FOCAL_BETA * (1 - peak)
    logit = out.score
    prob = F.sigmoid(logit)
    # -log p and -log(1 - p) from the logits, stable (and warning-free) for large |x|.
    ones = xp.ones(logit.shape, dtype=np.int32)
    neg_log_p = F.sigmoid_cross_entropy(logit, ones, normalize=False, reduce='no')
    neg_log_1mp = F.sigmoid_cross_entropy(logit, ones * 0, normalize=False, reduce='no')
    pos_loss = (1 - prob) ** FOCAL_ALPHA * neg_log_p * peak
    neg_loss = prob ** FOCAL_ALPHA * neg_log_1mp * neg_weight
    score = F.sum(F.sum(pos_loss + neg_loss, axis=(1, 2, 3)) / n) / batchsize

    size_l1 = F.sum(F.sum(F.absolute(out.size - size.astype(dtype, copy=False)) * mask,
                          axis=(1, 2, 3)) / n) / batchsize
    offset_l1 = F.sum(F.sum(F.absolute(out.offset - offset.astype(dtype, copy=False)) * mask,
                            axis=(1, 2, 3)) / n) / batchsize
    return {'score': score, 'size': size_l1 * size_weight, 'offset': offset_l1 * offset_weight}

