import numpy as np
import pytest

from kr.detector.retinanet.anchors import level_anchor_shapes
from kr.detector.retinanet.anchors import level_anchor_sizes
from kr.detector.retinanet.anchors import parse_ratios
from kr.detector.retinanet.anchors import pyramid_anchors
from kr.detector.retinanet.anchors import TF_ANCHOR_SCALE


def test_sizes_per_level():
    # TF config: anchor scale 4, two scales per octave: 32 and 45.25 px at P3
    np.testing.assert_allclose(level_anchor_sizes(3, TF_ANCHOR_SCALE, 2), [32, 32 * 2 ** 0.5])
    np.testing.assert_allclose(level_anchor_sizes(7, TF_ANCHOR_SCALE, 2), [512, 512 * 2 ** 0.5])
    # ours: 16 px at P3; three scales per octave as the paper
    np.testing.assert_allclose(level_anchor_sizes(3), [16, 16 * 2 ** 0.5])
    np.testing.assert_allclose(level_anchor_sizes(4, 2.0, 3),
                               [32, 32 * 2 ** (1 / 3), 32 * 2 ** (2 / 3)])
    shapes = level_anchor_shapes(3, 2.0, 2, '0.5,1,2')
    assert shapes.shape == (6, 2)
    np.testing.assert_allclose(shapes.prod(axis=1), [256] * 3 + [512] * 3)
    np.testing.assert_allclose(shapes[:, 1] / shapes[:, 0], [0.5, 1, 2] * 2)
    with pytest.raises(ValueError, match='anchor_scale must be positive, got 0'):
        level_anchor_sizes(3, 0)
    with pytest.raises(ValueError, match='scales_per_octave must be a positive integer'):
        level_anchor_sizes(3, 2.0, 0)


def test_count_and_centres_per_level():
    # a 128 x 96 input: P3 16 x 12 cells ... P7 1 x 1 (rounded up)
    shapes = [(16, 12), (8, 6), (4, 3), (2, 2), (1, 1)]
    anchors = pyramid_anchors(shapes, 3, 2.0, 2, '0.5,1,2')
    assert [len(a) for a in anchors] == [16 * 12 * 6, 8 * 6 * 6, 4 * 3 * 6, 2 * 2 * 6, 6]
    for level, (a, (h, w)) in enumerate(zip(anchors, shapes), start=3):
        assert a.dtype == np.float32
        stride = 2 ** level
        centres = ((a[:, :2] + a[:, 2:]) / 2).reshape(h, w, 6, 2)
        np.testing.assert_allclose(centres[..., 0], ((np.arange(w) + 0.5) * stride)[None, :, None]
                                   * np.ones((h, 1, 6)), rtol=1e-6)
        np.testing.assert_allclose(centres[..., 1], ((np.arange(h) + 0.5) * stride)[:, None, None]
                                   * np.ones((1, w, 6)), rtol=1e-6)
        sides = a[:6, 2:] - a[:6, :2]
        np.testing.assert_allclose(sides, level_anchor_shapes(level), rtol=1e-5)


def test_ratio_parsing():
    assert parse_ratios('0.5,1,2') == (0.5, 1.0, 2.0) and parse_ratios([1, 2]) == (1.0, 2.0)
    with pytest.raises(ValueError, match="comma-separated numbers such as \"0.5,1,2\", got 'a,b'"):
        parse_ratios('a,b')
    with pytest.raises(ValueError, match="must be positive numbers, got '1,-2'"):
        parse_ratios('1,-2')
