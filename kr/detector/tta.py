"""Test-time augmentation of detectors: fixed-scale, adaptive-scale and box voting
(SPEC section 3).

Every wrapper has ``detect(image, score_threshold=None) -> (bboxes, scores)`` like the
detector it wraps (``(R, 4)`` float32 ``x_min y_min x_max y_max`` page pixels and ``(R,)``
float32 scores, NumPy), so wrappers and models are interchangeable in the pipeline.
The wrapped detector must accept ``detect(image, min_side=..., score_threshold=...)`` and
name its standard input size ``min_side``, as every detector family and backend does.

A detector that also has ``network_size(height, width, min_side) -> (H, W)`` (the input
size its ``detect`` resizes a page to, e.g. CenterNet's multiples of 32) lets the
adaptive-scale TTA run a pass once when two of its passes come to the same network input,
e.g. the first pass and the middle TTA pass of a page whose characters are already at the
target size: the detections are the same, only the time is saved.
"""

import numbers

import chainer
import numpy as np

from kr.bbox import iou_matrix
from kr.datasets.image import to_array
from kr.detector.nms import non_maximum_suppression

#: Mean character size ((w + h) / 2, pixels at shorter side 832) that adaptive scaling aims at.
TARGET_CHAR_SIZE = 35
#: Scales around the adaptive one whose detections are merged (original).
TTA_SCALES = (0.8, 1.0, 1.25)
#: IoU of the NMS that picks the base boxes of voting (original).
VOTING_NMS_THRESHOLD = 0.3
#: IoU to a base box at which a box takes part in its vote (original).
VOTING_IOU_THRESHOLD = 0.5
#: Bounds of the adaptive scale, a guard against a first pass that found only specks (or
#: huge blots), which would otherwise ask for an enormous (or tiny) network input.
ADAPTIVE_SCALE_RANGE = (0.5, 2.0)
#: ``min_side`` meaning the wrapped detector's own standard size (``detector.min_side``).
STANDARD_SIZE = 'standard'


def bbox_voting(bboxes, scores, nms_threshold: float = VOTING_NMS_THRESHOLD,
                vote_threshold: float = VOTING_IOU_THRESHOLD):
    """Merge overlapping detections (e.g. from several scales) by score-weighted voting.

    NMS at ``nms_threshold`` picks base boxes; each base box becomes the score-weighted
    mean of all boxes with IoU >= ``vote_threshold`` to it (itself included), and its
    score the plain mean of their scores.

    Args:
        bboxes: ``(R, 4)`` float xyxy boxes (NumPy or CuPy).
        scores: ``(R,)`` float scores.
        nms_threshold: IoU of the base-box NMS.
        vote_threshold: IoU to a base box to take part in its vote.

    Returns:
        tuple ``(bboxes, scores)``: ``(K, 4)`` float32 and ``(K,)`` float32, highest voted
        score first (same array module as the input).
    """
    xp = chainer.backend.get_array_module(bboxes)
    bboxes = xp.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    scores = xp.asarray(scores, dtype=np.float64).reshape(-1)
    base = non_maximum_suppression(bboxes, nms_threshold, scores)
    if len(base) == 0:
        return xp.zeros((0, 4), dtype=np.float32), xp.zeros((0,), dtype=np.float32)
    member = iou_matrix(bboxes[base], bboxes) >= vote_threshold
    member[xp.arange(len(base)), base] = True
    weight = member * scores[None]
    total = weight.sum(axis=1)
    # All-zero scores would divide by zero: fall back to the plain mean of the members.
    weight = xp.where(total[:, None] > 0, weight, member.astype(np.float64))
    voted = weight.dot(bboxes) / weight.sum(axis=1)[:, None]
    voted_scores = (member * scores[None]).sum(axis=1) / member.sum(axis=1)
    order = xp.argsort(-voted_scores, kind='stable')
    return voted[order].astype(np.float32), voted_scores[order].astype(np.float32)


class ScaledDetector:
    """Run a detector at one fixed input scale.

    Args:
        detector: Model with ``detect(image, min_side=..., score_threshold=...)``.
        min_side: Shorter side of the network input: :data:`STANDARD_SIZE` (the
            detector's own ``min_side``), a number of pixels, or ``None`` (the image's own
            size, rounded to multiples of 32).
    """

    def __init__(self, detector, min_side=STANDARD_SIZE):
        self.detector = detector
        self.min_side = detector.min_side if min_side == STANDARD_SIZE else min_side

    def detect(self, image, score_threshold: float = None):
        """Detect at the fixed scale; see the module docstring for the return value."""
        return self.detector.detect(image, min_side=self.min_side,
                                    score_threshold=score_threshold)


class MultiScaleDetector:
    """Detect at several shorter sides and merge the boxes by :func:`bbox_voting`.

    Args:
        detector: Model with ``detect(image, min_side=..., score_threshold=...)``.
        min_sides: Shorter sides of the network input.
        nms_threshold: IoU of the voting's base-box NMS.
        vote_threshold: IoU to take part in a vote.
    """

    def __init__(self, detector, min_sides, nms_threshold: float = VOTING_NMS_THRESHOLD,
                 vote_threshold: float = VOTING_IOU_THRESHOLD):
        self.detector = detector
        self.min_sides = tuple(min_sides)
        self.nms_threshold = nms_threshold
        self.vote_threshold = vote_threshold

    def detect(self, image, score_threshold: float = None):
        """Detect at each scale and vote; see the module docstring for the return value."""
        return _detect_and_vote(self.detector, to_array(image), self.min_sides,
                                score_threshold, self.nms_threshold, self.vote_threshold)


def _pass_key(detector, image, min_side):
    """What decides a pass's detections: its network input size where the detector tells
    it (``network_size``), else the shorter side asked for."""
    if hasattr(detector, 'network_size'):
        return tuple(detector.network_size(image.shape[0], image.shape[1], min_side))
    return min_side


def _detect_and_vote(detector, image, min_sides, score_threshold, nms_threshold,
                     vote_threshold, done: dict = None):
    """Run ``detector`` at each shorter side and merge by voting; ``done`` maps the
    :func:`_pass_key` of passes already run (at ``score_threshold``) to their detections,
    which are then reused."""
    done = {} if done is None else done
    results = []
    for s in min_sides:
        key = _pass_key(detector, image, s)
        if key not in done:
            done[key] = detector.detect(image, min_side=s, score_threshold=score_threshold)
        results.append(done[key])
    bboxes = np.concatenate([b for b, _ in results]).reshape(-1, 4)
    scores = np.concatenate([s for _, s in results]).reshape(-1)
    return bbox_voting(bboxes, scores, nms_threshold, vote_threshold)


class AdaptiveScaleDetector:
    """The original's adaptive-scale test-time augmentation.

    A first pass at shorter side ``base_min_side`` measures the mean character size
    ``(w + h) / 2`` (in pixels of the page resized to that shorter side); the page is then
    detected again at ``base_min_side x scale x s`` for ``s`` in ``scales``, with ``scale =
    target_size / mean size`` (clipped to :data:`ADAPTIVE_SCALE_RANGE`), and those
    detections are merged by :func:`bbox_voting`. A page where the first pass finds
    nothing gives no boxes. A TTA pass whose network input is the first pass's (see the
    module docstring) reuses its detections.

    ``first_min_side`` runs the first pass at another shorter side (the mean size is still
    expressed at ``base_min_side``): the pass only has to measure the characters, and a
    smaller one costs less, but a detector trained at the standard size measures them less
    well there. With the demo's models (benchmarks/first_pass_scale.py) the scale found at
    640 / 512 / 416 is off by 5 / 16 / 30 % (median over the synthetic test pages; 13 / 23 /
    33 % on five real pages), a page or two then find nothing, and the demo F1 moves from
    0.9013 to 0.9074 / 0.8953 / 0.7657. The default is the original's.

    Args:
        detector: Model with ``detect(image, min_side=..., score_threshold=...)``.
        target_size: Wanted mean character size in network-input pixels.
        base_min_side: Shorter side the scale refers to (default: the detector's standard
            ``min_side``).
        scales: Factors around the adaptive scale.
        nms_threshold: IoU of the voting's base-box NMS.
        vote_threshold: IoU to take part in a vote.
        first_min_side: Shorter side of the first pass (default: ``base_min_side``).

    Raises:
        ValueError: A ``first_min_side`` that is not a positive number.
    """

    def __init__(self, detector, target_size: float = TARGET_CHAR_SIZE,
                 base_min_side: int = None, scales=TTA_SCALES,
                 nms_threshold: float = VOTING_NMS_THRESHOLD,
                 vote_threshold: float = VOTING_IOU_THRESHOLD, first_min_side: int = None):
        self.detector = detector
        self.target_size = target_size
        self.base_min_side = detector.min_side if base_min_side is None else base_min_side
        if first_min_side is not None and not (
                isinstance(first_min_side, numbers.Real) and first_min_side > 0):
            raise ValueError("first_min_side (the first pass's shorter side) must be a "
                             'positive number of pixels, got {!r}'.format(first_min_side))
        self.first_min_side = (self.base_min_side if first_min_side is None
                               else first_min_side)
        self.scales = tuple(scales)
        self.nms_threshold = nms_threshold
        self.vote_threshold = vote_threshold

    def adaptive_scale(self, image, score_threshold: float = None):
        """The scale of the second pass (1.0 when the first pass finds nothing).

        Args:
            image: ``(H, W, 3)`` uint8 page.
            score_threshold: Threshold of the first pass.

        Returns:
            tuple ``(scale, found)``: float scale and whether the first pass found boxes.
        """
        return self._scale(image, self._first_pass(image, score_threshold))

    def _first_pass(self, image, score_threshold):
        return self.detector.detect(image, min_side=self.first_min_side,
                                    score_threshold=score_threshold)

    def _scale(self, image, detections):
        """``(scale, found)`` of :meth:`adaptive_scale` from the first pass's detections."""
        bboxes = detections[0]
        if len(bboxes) == 0:
            return 1.0, False
        mean_size = float(np.mean((bboxes[:, 2] - bboxes[:, 0] + bboxes[:, 3] - bboxes[:, 1])
                                  / 2))
        mean_size *= self.base_min_side / min(image.shape[:2])
        scale = self.target_size / max(mean_size, 1e-6)
        return float(np.clip(scale, *ADAPTIVE_SCALE_RANGE)), True

    def detect(self, image, score_threshold: float = None):
        """Detect with adaptive-scale TTA; see the module docstring for the return value."""
        image = to_array(image)
        first = self._first_pass(image, score_threshold)
        scale, found = self._scale(image, first)
        if not found:
            return np.zeros((0, 4), dtype=np.float32), np.zeros((0,), dtype=np.float32)
        min_sides = [self.base_min_side * scale * s for s in self.scales]
        done = {_pass_key(self.detector, image, self.first_min_side): first}
        return _detect_and_vote(self.detector, image, min_sides, score_threshold,
                                self.nms_threshold, self.vote_threshold, done)
