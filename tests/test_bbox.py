import numpy as np
import pytest

from kr.bbox import box_centers
from kr.bbox import iou_matrix
from kr.bbox import padded_square_boxes
from kr.bbox import round_boxes_outward
from kr.bbox import xywh_to_xyxy
from kr.bbox import xyxy_to_xywh


def test_xywh_round_trip():
    xywh = np.array([[1, 2, 3, 4], [10.5, 0, 0, 2]], np.float32)
    xyxy = xywh_to_xyxy(xywh)
    np.testing.assert_array_equal(xyxy, [[1, 2, 4, 6], [10.5, 0, 10.5, 2]])
    assert xyxy.dtype == np.float32
    np.testing.assert_array_equal(xyxy_to_xywh(xyxy), xywh)
    assert xywh_to_xyxy(np.zeros((0, 4))).shape == (0, 4)


def test_padded_square_boxes_and_rounding():
    boxes = np.array([[0, 0, 10, 4], [2, 2, 4, 8]], np.float32)
    np.testing.assert_allclose(padded_square_boxes(boxes, 0.1), [[-1, -4, 11, 8], [-0.6, 1.4, 6.6, 8.6]])
    np.testing.assert_array_equal(round_boxes_outward(padded_square_boxes(boxes, 0.1)),
                                  [[-1, -4, 11, 8], [-1, 1, 7, 9]])
    np.testing.assert_array_equal(box_centers(boxes), [[5, 2], [3, 5]])


def test_iou_matrix_exact_values():
    a = np.array([[0, 0, 2, 2], [0, 0, 0, 0]], np.float64)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6], [0, 0, 0, 0]], np.float64)
    np.testing.assert_allclose(iou_matrix(a, b), [[1 / 7, 1, 0, 0], [0, 0, 0, 0]])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)


def test_iou_matrix_matches_brute_force():
    rng = np.random.RandomState(0)
    a = np.sort(rng.uniform(0, 50, (30, 2, 2)), axis=1).transpose(0, 2, 1).reshape(30, 4)[:, [0, 2, 1, 3]]
    b = np.sort(rng.uniform(0, 50, (20, 2, 2)), axis=1).transpose(0, 2, 1).reshape(20, 4)[:, [0, 2, 1, 3]]
    got = iou_matrix(a, b)
    for i in range(30):
        for j in range(20):
            iw = max(0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]))
            ih = max(0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]))
            inter = iw * ih
            union = (a[i, 2] - a[i, 0]) * (a[i, 3] - a[i, 1]) + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1]) - inter
            assert got[i, j] == pytest.approx(inter / union)
