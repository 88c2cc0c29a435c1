"""The layout of RetinaNet's head outputs, and their decoding into boxes.

The network returns, for each pyramid level from the finest, the class-subnet output
``(N, A * C, H_l, W_l)`` (anchor-major: channel ``a * C + c`` is class ``c`` of anchor
``a``) and then, for each level, the box-subnet output ``(N, A * 4, H_l, W_l)`` (channel
``a * 4 + k`` is ``(dx, dy, dw, dh)[k]`` of anchor ``a``). :func:`flatten_level` turns a
level's output into rows in the order of :func:`kr.detector.anchors.grid_anchors`. Only
this module knows the layout: the loss, the decoding and the ONNX export use it.

Decoding follows Lin et al. (arXiv:1708.02002, section 4, "Inference"): at each level,
the anchors whose best class probability reaches the threshold, at most
:data:`PRE_NMS_TOP_K` of them (the highest), are decoded; the boxes of all levels are
clipped to the input, merged by NMS and capped.
"""

import chainer
import chainer.functions as F
import numpy as np

from kr.detector.box_coder import decode_boxes
from kr.detector.box_coder import TF_OD_WEIGHTS
from kr.detector.nms import non_maximum_suppression

#: Candidates kept per level before NMS. The paper keeps 1,000; a page has up to 614
#: characters (SPEC section 11) and each has a few anchors above the threshold at its
#: level, so 1,000 could drop characters of a full page: 4,000 is about 6 per character.
PRE_NMS_TOP_K = 4000


def split_outputs(outputs):
    """``(class outputs, box outputs)``: the two halves of the network's output tuple."""
    n = len(outputs)
    if n == 0 or n % 2:
        raise ValueError('RetinaNet outputs come in (class, box) pairs per level, got {} '
                         'arrays'.format(n))
    return list(outputs[:n // 2]), list(outputs[n // 2:])


def flatten_level(y, k: int):
    """``(N, A * k, H, W)`` -> ``(N, H * W * A, k)`` (rows in anchor order); a Variable
    stays a Variable."""
    n, ak, h, w = y.shape
    if ak % k:
        raise ValueError('a level output of {} channels is not a multiple of {}'.format(ak, k))
    if isinstance(y, chainer.Variable):
        return F.reshape(F.transpose(y, (0, 2, 3, 1)), (n, h * w * (ak // k), k))
    xp = chainer.backend.get_array_module(y)
    return xp.ascontiguousarray(y.transpose(0, 2, 3, 1)).reshape(n, h * w * (ak // k), k)


def level_shapes(outputs):
    """``(H_l, W_l)`` of every level (from the class outputs)."""
    return [tuple(int(s) for s in y.shape[2:]) for y in split_outputs(outputs)[0]]


def _sigmoid(xp, x):
    # tanh form: no overflow warnings for large negative logits
    return 0.5 * (1 + xp.tanh(0.5 * x))


def decode(outputs, anchors, n_fg_class: int, score_threshold: float, nms_threshold: float,
           input_shape, max_detections: int = None, top_k: int = PRE_NMS_TOP_K,
           weights=TF_OD_WEIGHTS):
    """Boxes and scores of each image from the raw head outputs.

    A box's score is the probability of its best class (the detectors here have one class,
    "character").

    Args:
        outputs: The network's output tuple (see the module docstring), arrays (NumPy or
            CuPy).
        anchors: ``(H_l * W_l * A, 4)`` float32 xyxy anchors of each level.
        n_fg_class: Classes ``C``.
        score_threshold: Minimum probability.
        nms_threshold: IoU of the NMS over all levels.
        input_shape: ``(H, W)`` of the network input (boxes are clipped to it).
        max_detections: Keep at most this many boxes per image (``None``: all).
        top_k: Candidates kept per level before NMS.
        weights: Box coder weights.

    Returns:
        list, one per image, of ``(bboxes, scores)``: ``(R, 4)`` float32 xyxy input pixels
        and ``(R,)`` float32 probabilities, highest first (same array module as
        ``outputs``).
    """
    cls_outputs, box_outputs = split_outputs(outputs)
    if len(anchors) != len(cls_outputs):
        raise ValueError('{} levels of anchors for {} levels of outputs'.format(
            len(anchors), len(cls_outputs)))
    xp = chainer.backend.get_array_module(cls_outputs[0])
    probs = [_sigmoid(xp, flatten_level(xp.asarray(y), n_fg_class)).max(axis=2)
             for y in cls_outputs]
    deltas = [flatten_level(xp.asarray(y), 4) for y in box_outputs]
    limit = xp.array([input_shape[1], input_shape[0]] * 2, dtype=np.float32)
    results = []
    for i in range(len(cls_outputs[0])):
        bboxes, scores = [], []
        for prob, delta, anchor in zip(probs, deltas, anchors):
            p = prob[i]
            candidates = xp.nonzero(p >= score_threshold)[0]
            if len(candidates) > top_k:
                best = xp.argpartition(-p[candidates], top_k - 1)[:top_k]
                candidates = candidates[best]
            bboxes.append(decode_boxes(anchor[candidates], delta[i][candidates], weights))
            scores.append(p[candidates].astype(np.float32))
        bboxes = xp.clip(xp.concatenate(bboxes), 0, limit[None])
        scores = xp.concatenate(scores)
        nonempty = xp.nonzero((bboxes[:, 2] > bboxes[:, 0]) & (bboxes[:, 3] > bboxes[:, 1]))[0]
        bboxes, scores = bboxes[nonempty], scores[nonempty]
        keep = non_maximum_suppression(bboxes, nms_threshold, scores, limit=max_detections)
        results.append((bboxes[keep], scores[keep]))
    return results
