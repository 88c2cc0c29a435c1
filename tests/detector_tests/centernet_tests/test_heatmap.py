import numpy as np
import pytest

from kr.detector.centernet.heatmap import gaussian_radius
from kr.detector.centernet.heatmap import generate_targets


def _exact_radius(w, h, o=0.7):
    """The three roots with the division by 2a that the CornerNet code leaves out."""
    b1, c1 = h + w, w * h * (1 - o) / (1 + o)
    r1 = (b1 + np.sqrt(b1 ** 2 - 4 * c1)) / 2
    a2, b2, c2 = 4, 2 * (h + w), (1 - o) * w * h
    r2 = (b2 + np.sqrt(b2 ** 2 - 4 * a2 * c2)) / (2 * a2)
    a3, b3, c3 = 4 * o, -2 * o * (h + w), (o - 1) * w * h
    r3 = (b3 + np.sqrt(b3 ** 2 - 4 * a3 * c3)) / (2 * a3)
    return min(r1, r2, r3)


def test_gaussian_radius_keeps_the_cornernet_formula():
    # Quirk (c): for a 10 x 10 box the third root, without its division by 2a = 5.6,
    # is 2.7332..., not the exact 0.9761....
    b3 = -2 * 0.7 * 20
    c3 = -0.3 * 100
    kept = (b3 + np.sqrt(b3 ** 2 - 4 * 2.8 * c3)) / 2
    assert gaussian_radius([10.0], [10.0])[0] == pytest.approx(kept)
    assert kept == pytest.approx(2.73320, abs=1e-4)
    assert _exact_radius(10.0, 10.0) == pytest.approx(kept / 2.8)


def test_gaussian_radius_vectorised():
    w = np.array([4.0, 10.0, 30.0])
    h = np.array([8.0, 10.0, 5.0])
    r = gaussian_radius(w, h)
    assert r.shape == (3,)
    for k in range(3):
        assert r[k] == pytest.approx(gaussian_radius([w[k]], [h[k]])[0])
    assert np.all(np.diff(gaussian_radius([5.0, 10.0, 20.0], [5.0, 10.0, 20.0])) > 0)


def test_targets_of_one_box():
    # Box in input pixels (stride 4): centre (26, 18) -> cell centre (6.5, 4.5).
    bboxes = np.array([[18.0, 6.0, 34.0, 30.0]], dtype=np.float32)
    t = generate_targets(bboxes, [0], 1, (12, 16), stride=4)
    assert t['heatmap'].shape == (1, 12, 16) and t['heatmap'].dtype == np.float32
    assert t['size'].shape == (2, 12, 16) and t['offset'].shape == (2, 12, 16)
    assert t['mask'].shape == (12, 16)
    assert t['heatmap'][0, 4, 6] == 1.0
    assert np.count_nonzero(t['heatmap'] == 1) == 1
    assert np.argmax(t['heatmap'][0]) == 4 * 16 + 6
    np.testing.assert_array_equal(t['size'][:, 4, 6], [4.0, 6.0])
    np.testing.assert_array_equal(t['offset'][:, 4, 6], [0.5, 0.5])
    assert t['mask'].sum() == 1 and t['mask'][4, 6] == 1
    assert np.count_nonzero(t['size']) == 2 and np.count_nonzero(t['offset']) == 2
    sigma = gaussian_radius([4.0], [6.0])[0]
    assert t['heatmap'][0, 4, 7] == pytest.approx(np.exp(-1 / (2 * sigma ** 2)), rel=1e-6)
    assert t['heatmap'][0, 5, 7] == pytest.approx(np.exp(-2 / (2 * sigma ** 2)), rel=1e-6)


def test_targets_take_the_maximum_and_several_classes():
    bboxes = np.array([[0, 0, 8, 8], [8, 0, 16, 8], [0, 16, 8, 24]], dtype=np.float32)
    t = generate_targets(bboxes, [0, 0, 1], 2, (8, 8), stride=4)
    assert t['heatmap'][0, 1, 1] == 1 and t['heatmap'][0, 1, 3] == 1
    assert t['heatmap'][1, 5, 1] == 1
    assert t['heatmap'][1, 1, 1] < 1 and t['heatmap'][0, 5, 1] < 1
    # Between the two class-0 peaks the value is the larger of the two Gaussians.
    sigma = gaussian_radius([2.0], [2.0])[0]
    assert t['heatmap'][0, 1, 2] == pytest.approx(np.exp(-1 / (2 * sigma ** 2)), rel=1e-6)
    assert t['mask'].sum() == 3


def test_targets_empty_and_outside():
    t = generate_targets(np.zeros((0, 4), np.float32), [], 1, (6, 5))
    assert all(not v.any() for v in t.values())
    assert t['heatmap'].shape == (1, 6, 5)
    t = generate_targets(np.array([[-40, -40, -20, -20], [100, 0, 120, 8]], np.float32),
                         [0, 0], 1, (6, 5))
    assert t['mask'].sum() == 0
    assert t['heatmap'].max() <= 1


def test_degenerate_box_still_peaks():
    t = generate_targets(np.array([[10, 10, 10, 10]], np.float32), [0], 1, (8, 8))
    assert t['heatmap'][0, 2, 2] == 1
    assert np.isfinite(t['heatmap']).all()
    assert t['heatmap'].sum() == pytest.approx(1.0)


def test_min_sigma_floors_the_gaussian_of_a_flat_box():
    # A flat box of 6 x 1.5 cells (24 x 6 px at stride 4): the original's sigma is 0.676.
    bboxes = np.array([[20.0, 17.0, 44.0, 23.0]], dtype=np.float32)
    sigma = gaussian_radius([6.0], [1.5])[0]
    assert sigma == pytest.approx(0.6764, abs=1e-4)
    for floor, expected in ((None, sigma), (0.5, sigma), (1.5, 1.5)):
        kwargs = {} if floor is None else {'min_sigma': floor}
        t = generate_targets(bboxes, [0], 1, (12, 16), stride=4, **kwargs)
        assert t['heatmap'][0, 5, 8] == 1.0
        assert t['heatmap'][0, 5, 9] == pytest.approx(np.exp(-1 / (2 * expected ** 2)), rel=1e-6)
    # Sizes and offsets do not change with the floor.
    a = generate_targets(bboxes, [0], 1, (12, 16), stride=4)
    b = generate_targets(bboxes, [0], 1, (12, 16), stride=4, min_sigma=1.5)
    for key in ('size', 'offset', 'mask'):
        np.testing.assert_array_equal(a[key], b[key])
