import math

from chainer import testing
import numpy as np
import pytest

from kr.detector.anchors import match_anchors
from kr.detector.box_coder import encode_boxes
from kr.detector.box_coder import TF_OD_WEIGHTS
from kr.detector.retinanet.model import RetinaNetDetection
from kr.detector.retinanet.targets import assign_targets
from kr.detector.retinanet.targets import IGNORE_LABEL
from kr.detector.retinanet.targets import match_grid_anchors


def test_hand_made_boxes():
    anchors = np.array([[0, 0, 16, 16],      # IoU 1 with box 0
                        [0, 0, 16, 12],      # IoU 0.75 with box 0
                        [0, 0, 16, 7.5],     # IoU 0.47: background at 0.5 / 0.5, ignored at 0.4
                        [40, 40, 56, 56],    # nothing: background
                        [64, 64, 96, 96]],   # IoU 0.25 with box 1, its best: forced match
                       dtype=np.float32)
    gt = np.array([[0, 0, 16, 16], [64, 64, 80, 80]], dtype=np.float32)
    labels, deltas = assign_targets(anchors, gt, np.array([0, 2]))
    np.testing.assert_array_equal(labels, [1, 1, 0, 0, 3])
    assert labels.dtype == np.int32 and deltas.dtype == np.float32
    np.testing.assert_allclose(deltas[0], [0, 0, 0, 0], atol=1e-6)
    # box 0 from anchor 1: centre 8 vs 6 of height 12, height 16 vs 12
    np.testing.assert_allclose(deltas[1], [0, 10 * 2 / 12, 0, 5 * math.log(16 / 12)], rtol=1e-6)
    np.testing.assert_allclose(deltas[4], encode_boxes(anchors[4:], gt[1:], TF_OD_WEIGHTS)[0])
    np.testing.assert_array_equal(deltas[[2, 3]], 0)
    labels, _ = assign_targets(anchors, gt, positive_iou=0.5, negative_iou=0.4,
                               low_quality=False)
    np.testing.assert_array_equal(labels, [1, 1, IGNORE_LABEL, 0, 0])


def test_no_boxes():
    anchors = np.array([[0, 0, 16, 16], [8, 8, 24, 24]], dtype=np.float32)
    labels, deltas = assign_targets(anchors, np.zeros((0, 4), dtype=np.float32))
    np.testing.assert_array_equal(labels, [0, 0])
    np.testing.assert_array_equal(deltas, np.zeros((2, 4)))


@pytest.mark.parametrize('size,n_boxes,thresholds', [
    (128, 0, (0.5, 0.5)), (128, 1, (0.5, 0.4)), (256, 7, (0.5, 0.5)), (320, 150, (0.5, 0.4)),
    (256, 60, (0.6, 0.3))])
def test_the_grid_matcher_equals_the_dense_one(size, n_boxes, thresholds):
    detector = RetinaNetDetection()
    shapes = [(-(-size // 2 ** level),) * 2 for level in range(3, 8)]
    anchors = np.concatenate(detector.anchors(shapes, np))
    rng = np.random.RandomState(size + n_boxes)
    xy = rng.uniform(-10, size, (n_boxes, 2))
    gt = np.concatenate([xy, xy + rng.uniform(1, 90, (n_boxes, 2))], axis=1).astype(np.float32)
    gt = np.concatenate([gt, gt[:n_boxes // 5]])  # duplicate boxes: ties between boxes
    for low_quality in (True, False):
        expected = match_anchors(anchors, gt, *thresholds, low_quality)
        index, label = match_grid_anchors(anchors, detector.anchor_grids(shapes), gt,
                                          *thresholds, low_quality)
        np.testing.assert_array_equal(index, expected[0])
        np.testing.assert_array_equal(label, expected[1])


def test_grid_matcher_errors():
    detector = RetinaNetDetection()
    shapes = [(4, 4), (2, 2), (1, 1), (1, 1), (1, 1)]
    anchors = np.concatenate(detector.anchors(shapes, np))
    with pytest.raises(ValueError, match='the level grids hold 138 anchors, not 137'):
        match_grid_anchors(anchors[1:], detector.anchor_grids(shapes), anchors[:2], 0.5, 0.5)
    with pytest.raises(ValueError, match='negative_iou 0.6 must not exceed positive_iou 0.5'):
        match_grid_anchors(anchors, detector.anchor_grids(shapes), anchors[:2], 0.5, 0.6)


@testing.attr.gpu
def test_the_grid_matcher_on_gpu():
    import cupy
    detector = RetinaNetDetection()
    shapes = [(-(-256 // 2 ** level),) * 2 for level in range(3, 8)]
    anchors = np.concatenate(detector.anchors(shapes, np))
    rng = np.random.RandomState(0)
    xy = rng.uniform(0, 256, (40, 2))
    gt = np.concatenate([xy, xy + rng.uniform(4, 60, (40, 2))], axis=1).astype(np.float32)
    expected = match_grid_anchors(anchors, detector.anchor_grids(shapes), gt, 0.5, 0.4)
    index, label = match_grid_anchors(cupy.asarray(anchors), detector.anchor_grids(shapes),
                                      cupy.asarray(gt), 0.5, 0.4)
    np.testing.assert_array_equal(cupy.asnumpy(label), expected[1])
    # an anchor tied between boxes may keep either on a GPU (unordered scatter)
    np.testing.assert_array_equal(cupy.asnumpy(index) >= 0, expected[0] >= 0)
