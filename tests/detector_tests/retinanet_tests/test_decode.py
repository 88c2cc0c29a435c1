import numpy as np
import pytest

from kr.detector.box_coder import encode_boxes
from kr.detector.box_coder import TF_OD_WEIGHTS
from kr.detector.retinanet.anchors import pyramid_anchors
from kr.detector.retinanet.decode import decode
from kr.detector.retinanet.decode import flatten_level
from kr.detector.retinanet.decode import split_outputs

#: Two levels (strides 8 and 16) of a 32 x 32 input, one anchor shape each (A = 1).
SHAPES = [(4, 4), (2, 2)]


def _outputs(boxes_by_anchor, logit_by_anchor, anchors):
    """Raw outputs whose decoding is ``boxes_by_anchor`` with ``logit_by_anchor``."""
    cls = [np.full((1, 1, h, w), -10, dtype=np.float32) for h, w in SHAPES]
    box = [np.zeros((1, 4, h, w), dtype=np.float32) for h, w in SHAPES]
    for (level, row), logit in logit_by_anchor.items():
        h, w = SHAPES[level]
        cls[level][0, 0, row // w, row % w] = logit
        if (level, row) in boxes_by_anchor:
            delta = encode_boxes(anchors[level][row:row + 1],
                                 np.array([boxes_by_anchor[level, row]], dtype=np.float32),
                                 TF_OD_WEIGHTS)[0]
            box[level][0, :, row // w, row % w] = delta
    return tuple(cls) + tuple(box)


def _anchors():
    return pyramid_anchors(SHAPES, 3, 2.0, 1, '1')


def test_flatten_level_follows_the_anchor_order():
    y = np.arange(2 * 6 * 2 * 3, dtype=np.float32).reshape(2, 6, 2, 3)  # A = 3, k = 2
    rows = flatten_level(y, 2)
    assert rows.shape == (2, 2 * 3 * 3, 2)
    # anchor a of cell (i, j) is row (i * 3 + j) * 3 + a; its k-th value is channel a * 2 + k
    np.testing.assert_array_equal(rows[1, (1 * 3 + 2) * 3 + 1], y[1, [2, 3], 1, 2])
    with pytest.raises(ValueError, match='a level output of 6 channels is not a multiple of 4'):
        flatten_level(y, 4)
    with pytest.raises(ValueError, match='come in \\(class, box\\) pairs per level, got 3'):
        split_outputs((y, y, y))


def test_decodes_hand_made_outputs():
    anchors = _anchors()
    boxes = {(0, 5): [6, 7, 18, 20], (1, 3): [17, 18, 31, 30], (0, 0): [0, 0, 8, 9]}
    logits = {(0, 5): 2.0, (1, 3): 0.5, (0, 0): -1.0}  # p = 0.881, 0.622, 0.269
    out = decode(_outputs(boxes, logits, anchors), anchors, 1, 0.3, 0.6, (32, 32))
    assert len(out) == 1
    bboxes, scores = out[0]
    np.testing.assert_allclose(bboxes, [boxes[0, 5], boxes[1, 3]], atol=1e-4)
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-2)), 1 / (1 + np.exp(-0.5))],
                               rtol=1e-6)
    assert bboxes.dtype == scores.dtype == np.float32
    # a lower threshold keeps the third; the cap keeps the best
    bboxes, scores = decode(_outputs(boxes, logits, anchors), anchors, 1, 0.2, 0.6,
                            (32, 32))[0]
    assert len(bboxes) == 3
    bboxes, scores = decode(_outputs(boxes, logits, anchors), anchors, 1, 0.2, 0.6, (32, 32),
                            max_detections=2)[0]
    np.testing.assert_allclose(bboxes, [boxes[0, 5], boxes[1, 3]], atol=1e-4)


def test_nms_clipping_and_top_k():
    anchors = _anchors()
    # two near-identical boxes (IoU 0.9) on two levels and one reaching outside the input
    boxes = {(0, 5): [6, 6, 26, 26], (1, 0): [6, 6, 26, 24], (0, 15): [20, 20, 40, 44]}
    logits = {(0, 5): 1.0, (1, 0): 3.0, (0, 15): 0.0}
    bboxes, scores = decode(_outputs(boxes, logits, anchors), anchors, 1, 0.3, 0.6,
                            (32, 32))[0]
    np.testing.assert_allclose(bboxes, [[6, 6, 26, 24], [20, 20, 32, 32]], atol=1e-4)
    # top_k 1 per level: of level 0 only its best candidate (row 5) is left before NMS
    bboxes, _ = decode(_outputs(boxes, logits, anchors), anchors, 1, 0.3, 0.95, (32, 32),
                       top_k=1)[0]
    np.testing.assert_allclose(bboxes, [[6, 6, 26, 24], [6, 6, 26, 26]], atol=1e-4)


def test_nothing_above_the_threshold():
    anchors = _anchors()
    bboxes, scores = decode(_outputs({}, {}, anchors), anchors, 1, 0.5, 0.6, (32, 32))[0]
    assert bboxes.shape == (0, 4) and scores.shape == (0,)
    with pytest.raises(ValueError, match='1 levels of anchors for 2 levels of outputs'):
        decode(_outputs({}, {}, anchors), anchors[:1], 1, 0.5, 0.6, (32, 32))
