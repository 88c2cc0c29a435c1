import numpy as np
import pytest

from kr.detector.anchors import anchor_shapes
from kr.detector.anchors import grid_anchors
from kr.detector.anchors import IGNORED
from kr.detector.anchors import match_anchors
from kr.detector.anchors import NEGATIVE
from kr.detector.anchors import POSITIVE


def test_anchor_shapes_keep_the_area_and_the_ratio():
    shapes = anchor_shapes([16, 32], [0.5, 1, 2])
    assert shapes.shape == (6, 2)
    s = np.sqrt(2)
    np.testing.assert_allclose(shapes, [[16 * s, 16 / s], [16, 16], [16 / s, 16 * s],
                                        [32 * s, 32 / s], [32, 32], [32 / s, 32 * s]])
    np.testing.assert_allclose(shapes[:, 1] / shapes[:, 0], [0.5, 1, 2] * 2)
    with pytest.raises(ValueError, match='must not be empty'):
        anchor_shapes([], [1])
    with pytest.raises(ValueError, match=r'must be positive, got \[16.0\] and \[0.0\]'):
        anchor_shapes([16], [0])


def test_grid_anchors_order_and_centres():
    shapes = np.array([[8, 4], [2, 6]], dtype=np.float64)
    anchors = grid_anchors(2, 3, 10, shapes)
    assert anchors.shape == (12, 4) and anchors.dtype == np.float32
    # anchor a of cell (y, x) is row (y * 3 + x) * 2 + a, centred at ((x + .5) 10, (y + .5) 10)
    np.testing.assert_array_equal(anchors[(1 * 3 + 2) * 2 + 0], [21, 13, 29, 17])
    np.testing.assert_array_equal(anchors[(0 * 3 + 1) * 2 + 1], [14, 2, 16, 8])
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    np.testing.assert_array_equal(centres[::2], [[5, 5], [15, 5], [25, 5], [5, 15], [15, 15],
                                                 [25, 15]])
    # the order of an (N, A * k, H, W) output transposed to (N, H, W, A, k)
    head = np.arange(2 * 2 * 3).reshape(1, 2, 2, 3)  # A = 2, k = 1
    rows = head.transpose(0, 2, 3, 1).reshape(-1)
    assert rows[(1 * 3 + 2) * 2 + 1] == head[0, 1, 1, 2]


def test_match_anchors_on_hand_made_boxes():
    anchors = np.array([[0, 0, 10, 10],     # IoU 1 with box 0
                        [0, 0, 10, 8],      # IoU 0.8 with box 0
                        [0, 0, 10, 4.5],    # IoU 0.45: ignored
                        [50, 50, 60, 60],   # no overlap: negative
                        [100, 100, 120, 120],  # IoU 0.25 with box 1, its best: positive
                        [100, 100, 120, 120]], dtype=np.float32)  # tie: positive too
    gt = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], dtype=np.float32)
    index, label = match_anchors(anchors, gt, 0.5, 0.4)
    np.testing.assert_array_equal(label, [POSITIVE, POSITIVE, IGNORED, NEGATIVE, POSITIVE,
                                          POSITIVE])
    np.testing.assert_array_equal(index, [0, 0, 0, -1, 1, 1])
    index, label = match_anchors(anchors, gt, 0.5, 0.4, low_quality=False)
    np.testing.assert_array_equal(label, [POSITIVE, POSITIVE, IGNORED, NEGATIVE, NEGATIVE,
                                          NEGATIVE])
    np.testing.assert_array_equal(index, [0, 0, 0, -1, -1, -1])
    assert index.dtype == label.dtype == np.int32


def test_match_anchors_without_boxes_and_bad_thresholds():
    anchors = np.array([[0, 0, 10, 10], [5, 5, 9, 9]], dtype=np.float32)
    index, label = match_anchors(anchors, np.zeros((0, 4)), 0.5, 0.4)
    np.testing.assert_array_equal(index, [-1, -1])
    np.testing.assert_array_equal(label, [NEGATIVE, NEGATIVE])
    with pytest.raises(ValueError, match='negative_iou 0.6 must not exceed positive_iou 0.5'):
        match_anchors(anchors, anchors, 0.5, 0.6)
