import math

import numpy as np
import pytest

from kr.detector.box_coder import decode_boxes
from kr.detector.box_coder import encode_boxes
from kr.detector.box_coder import MAX_LOG_SCALE
from kr.detector.box_coder import TF_OD_WEIGHTS
from kr.detector.box_coder import UNIT_WEIGHTS


def _random_boxes(rng, n):
    xy = rng.uniform(-50, 500, (n, 2))
    wh = rng.uniform(1, 120, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def test_hand_made_codes():
    anchors = np.array([[0, 0, 10, 20], [10, 10, 30, 30]], dtype=np.float32)
    boxes = np.array([[5, 0, 15, 20], [5, 15, 45, 25]], dtype=np.float32)
    # centre (10, 10) vs (5, 10); (25, 20) vs (20, 20); sizes (10, 20) = anchor, (40, 10)
    np.testing.assert_allclose(encode_boxes(anchors, boxes), [
        [0.5, 0, 0, 0], [0.25, 0, math.log(2), math.log(0.5)]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(encode_boxes(anchors, boxes, TF_OD_WEIGHTS), [
        [5, 0, 0, 0], [2.5, 0, 5 * math.log(2), 5 * math.log(0.5)]], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('weights', [UNIT_WEIGHTS, TF_OD_WEIGHTS])
def test_round_trip(weights):
    rng = np.random.RandomState(0)
    anchors, boxes = _random_boxes(rng, 50), _random_boxes(rng, 50)
    deltas = encode_boxes(anchors, boxes, weights)
    assert deltas.shape == (50, 4) and deltas.dtype == np.float32
    # float32 deltas of boxes up to 620 px: a few thousandths of a pixel
    np.testing.assert_allclose(decode_boxes(anchors, deltas, weights), boxes, atol=5e-3)


def test_decoding_clips_the_scale_and_handles_empty_input():
    anchors = np.array([[0, 0, 16, 16]], dtype=np.float32)
    out = decode_boxes(anchors, np.array([[0, 0, 100, 100]], dtype=np.float32))
    side = 16 * math.exp(MAX_LOG_SCALE)  # 1000 px
    np.testing.assert_allclose(out, [[8 - side / 2, 8 - side / 2, 8 + side / 2, 8 + side / 2]],
                               rtol=1e-6)
    empty = np.zeros((0, 4), dtype=np.float32)
    assert encode_boxes(empty, empty).shape == (0, 4)
    assert decode_boxes(empty, empty).shape == (0, 4)


def test_shape_errors_are_named():
    with pytest.raises(ValueError, match=r'anchors and boxes must both be \(R, 4\), got '
                                         r'\(2, 4\) and \(3, 4\)'):
        encode_boxes(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match='anchors and deltas must both be'):
        decode_boxes(np.zeros((2, 4)), np.zeros((2, 3)))
