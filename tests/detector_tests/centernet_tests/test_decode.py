import numpy as np
import pytest

from kr.detector.centernet.decode import decode
from kr.detector.centernet.decode import find_peaks
from kr.detector.centernet.decode import n_output_channels
from kr.detector.centernet.decode import split_output


def _logit(p):
    return float(np.log(p / (1 - p)))


def _head(n_fg_class=1, h=6, w=8):
    """A hand-made raw head output: background logits -6, offsets 0.5 (logit 0)."""
    y = np.zeros((n_output_channels(n_fg_class), h, w), dtype=np.float32)
    y[:n_fg_class] = -6
    return y


def check_decode(xp):
    y = _head()
    y[0, 2, 3] = _logit(0.9)       # peak, kept
    y[0, 2, 4] = _logit(0.8)       # neighbour of a higher peak: not a peak
    y[0, 5, 7] = _logit(0.7)       # corner peak, kept
    y[0, 0, 0] = _logit(0.3)       # peak below the threshold
    y[1:3, 2, 3] = [4.0, 6.0]      # w, h in cells
    y[3:5, 2, 3] = [0.0, _logit(0.25)]  # offset 0.5, 0.25
    y[1:3, 5, 7] = [2.0, 2.0]
    bboxes, labels, scores = decode(xp.asarray(y), 1, 0.5, stride=4)
    bboxes, labels, scores = (np.asarray(getattr(a, 'get', lambda: a)()) for a in
                              (bboxes, labels, scores))
    assert bboxes.dtype == np.float32 and scores.dtype == np.float32
    assert labels.dtype == np.int32
    # Row-major order of the peaks: (2, 3) then (5, 7).
    np.testing.assert_allclose(scores, [0.9, 0.7], rtol=1e-5)
    np.testing.assert_array_equal(labels, [0, 0])
    cx, cy = 3.5, 2.25
    np.testing.assert_allclose(bboxes[0], np.array([cx - 2, cy - 3, cx + 2, cy + 3]) * 4,
                               rtol=1e-5)
    np.testing.assert_allclose(bboxes[1], np.array([7.5 - 1, 5.5 - 1, 7.5 + 1, 5.5 + 1]) * 4,
                               rtol=1e-5)


def test_decode_hand_made_heatmap():
    check_decode(np)


@pytest.mark.gpu
def test_decode_gpu():
    import cupy
    check_decode(cupy)


def test_decode_empty():
    bboxes, labels, scores = decode(_head(), 1, 0.5, stride=4)
    assert bboxes.shape == (0, 4) and labels.shape == (0,) and scores.shape == (0,)


def test_threshold_is_a_probability():
    # Quirk (a): the original's 0.5 on logits is a probability of sigmoid(0.5) = 0.6225.
    y = _head()
    y[0, 1, 1] = 0.5
    y[0, 4, 5] = 0.45
    _, _, scores = decode(y, 1, 0.62, stride=4)
    assert scores.tolist() == pytest.approx([1 / (1 + np.exp(-0.5))])


def test_multi_class_and_plateau():
    y = _head(n_fg_class=2)
    y[1, 3, 3] = y[1, 3, 4] = 2.0  # a plateau: both cells equal their max-pool
    _, labels, scores = decode(y, 2, 0.5, stride=4)
    assert labels.tolist() == [1, 1]


def test_negative_size_is_clamped():
    y = _head()
    y[0, 2, 2] = 3
    y[1:3, 2, 2] = -5
    bboxes, _, _ = decode(y, 1, 0.5, stride=4)
    assert (bboxes[:, 2:] >= bboxes[:, :2]).all()


def test_split_output_layout():
    y = np.arange(2 * 7 * 2 * 3, dtype=np.float32).reshape(2, 7, 2, 3) / 100
    out = split_output(y, 3)
    np.testing.assert_array_equal(out.score.array, y[:, :3])
    np.testing.assert_array_equal(out.size.array, y[:, 3:5])
    np.testing.assert_allclose(out.offset.array, 1 / (1 + np.exp(-y[:, 5:7])), rtol=1e-6)
    with pytest.raises(ValueError, match='channels'):
        split_output(y, 1)


def test_find_peaks():
    prob = np.zeros((1, 4, 4), np.float32)
    prob[0, 1, 1] = 0.9
    prob[0, 1, 2] = 0.95
    prob[0, 3, 3] = 0.6
    labels, ys, xs = find_peaks(prob, 0.5)
    assert list(zip(ys.tolist(), xs.tolist())) == [(1, 2), (3, 3)]


def test_initial_head_bias():
    from kr.detector.centernet.decode import initial_head_bias
    bias = initial_head_bias(2, -2.19)
    assert bias.dtype == np.float32
    np.testing.assert_allclose(bias, [-2.19, -2.19, 0, 0, 0, 0])
