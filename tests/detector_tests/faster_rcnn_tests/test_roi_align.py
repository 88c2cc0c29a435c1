import chainer
import chainer.functions as F
import numpy as np
import pytest

from kr.detector.faster_rcnn.roi_align import roi_align_2d

#: RoIs (y_min, x_min, y_max, x_max) in input pixels: inside, across the top-left border,
#: across the bottom-right one, shorter than a cell, wholly outside, and large.
ROIS = np.array([[0.5, 1, 20, 30], [-6, -5, 10, 12], [30, 40, 44, 48], [3, 3, 3.5, 3.2],
                 [-20, -20, -9, -9], [10, 10, 36, 44]], np.float32)
ROI_INDICES = np.array([0, 1, 1, 0, 0, 1], np.int32)


def _features(seed=0):
    return np.random.RandomState(seed).randn(2, 3, 9, 11).astype(np.float32)


@pytest.mark.parametrize('outsize,scale,ratio', [(3, 0.25, 2), (7, 0.5, 2), (2, 0.25, 1)])
def test_matches_chainer_forward_and_backward(outsize, scale, ratio):
    x = _features()
    ours = chainer.Variable(x.copy())
    theirs = chainer.Variable(x.copy())
    y = roi_align_2d(ours, ROIS, ROI_INDICES, outsize, scale, ratio)
    expected = F.roi_average_align_2d(theirs, ROIS, ROI_INDICES, outsize, scale, ratio)
    assert y.shape == (6, 3, outsize, outsize)
    # Same sums in float32, in another order: a few units in the last place.
    np.testing.assert_allclose(y.array, expected.array, rtol=0, atol=1e-5)
    gy = np.random.RandomState(1).randn(*y.shape).astype(np.float32)
    y.grad = gy
    y.backward()
    expected.grad = gy
    expected.backward()
    np.testing.assert_allclose(ours.grad, theirs.grad, rtol=0, atol=1e-5)


def test_roi_outside_the_map_pools_zeros():
    y = roi_align_2d(_features(), ROIS[4:5], ROI_INDICES[4:5], 3, 0.25)
    assert (y.array == 0).all()


def test_constant_features_pool_to_the_constant():
    x = np.full((1, 2, 8, 8), 3.0, np.float32)
    rois = np.array([[4, 4, 20, 28]], np.float32)
    y = roi_align_2d(x, rois, np.zeros(1, np.int32), 4, 0.25)
    np.testing.assert_allclose(y.array, 3.0, rtol=1e-6)


def test_bad_rois_are_refused():
    with pytest.raises(ValueError, match=r'rois must be \(R, 4\) and roi_indices \(R,\)'):
        roi_align_2d(_features(), ROIS[:, :3], ROI_INDICES, 3, 0.25)
    with pytest.raises(ValueError, match='roi_indices'):
        roi_align_2d(_features(), ROIS, ROI_INDICES[:2], 3, 0.25)
