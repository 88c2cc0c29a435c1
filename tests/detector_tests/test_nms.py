import time

import numpy as np
import pytest

from kr.detector.nms import check_nested_overlap
from kr.detector.nms import non_maximum_suppression
from kr.detector.nms import suppress_nested


def _brute_force(bboxes, threshold, scores):
    """Textbook greedy NMS, one box at a time."""
    order = sorted(range(len(bboxes)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        suppressed = False
        for k in kept:
            a, b = bboxes[i], bboxes[k]
            iw = min(a[2], b[2]) - max(a[0], b[0])
            ih = min(a[3], b[3]) - max(a[1], b[1])
            inter = max(iw, 0) * max(ih, 0)
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            if union > 0 and inter / union >= threshold:
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
    return kept


def _random_boxes(rng, n, extent=200.0):
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(1, 40, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32), \
        rng.uniform(size=n).astype(np.float32)


def check_against_brute_force(xp):
    rng = np.random.RandomState(0)
    for n in (0, 1, 2, 30, 250):
        bboxes, scores = _random_boxes(rng, n)
        scores[: n // 4] = 0.5  # ties are visited in index order
        for threshold in (0.3, 0.5, 0.7, 1.0):
            kept = non_maximum_suppression(xp.asarray(bboxes), threshold, xp.asarray(scores))
            assert kept.dtype == np.int32
            kept = [int(k) for k in kept]
            assert kept == _brute_force(bboxes, threshold, scores), (n, threshold)


def test_against_brute_force():
    check_against_brute_force(np)


@pytest.mark.gpu
def test_against_brute_force_gpu():
    import cupy
    check_against_brute_force(cupy)


def test_hand_made():
    bboxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 5], [20, 20, 30, 30]],
                      np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.1], np.float32)
    # IoU(0, 1) = 90 / 110 = 0.82, IoU(0, 2) = 0.5 exactly: suppressed (>=).
    assert non_maximum_suppression(bboxes, 0.5, scores).tolist() == [0, 3]
    assert non_maximum_suppression(bboxes, 0.9, scores).tolist() == [0, 1, 2, 3]
    assert non_maximum_suppression(bboxes, 0.5).tolist() == [0, 3]
    assert non_maximum_suppression(bboxes, 0.9, scores, limit=2).tolist() == [0, 1]


def test_chain_of_suppressions():
    # 0 suppresses 1, so 1 cannot suppress 2: 2 is kept.
    bboxes = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], np.float32)
    assert non_maximum_suppression(bboxes, 0.4, np.array([3, 2, 1.0])).tolist() == [0, 2]


def test_empty_and_bad_input():
    assert non_maximum_suppression(np.zeros((0, 4), np.float32), 0.5).shape == (0,)
    with pytest.raises(ValueError, match='threshold'):
        non_maximum_suppression(np.zeros((1, 4), np.float32), 0.0)
    with pytest.raises(ValueError, match='R, 4'):
        non_maximum_suppression(np.zeros((3,), np.float32), 0.5)


def test_thousand_boxes_are_fast():
    rng = np.random.RandomState(0)
    bboxes, scores = _random_boxes(rng, 1000, extent=800.0)
    non_maximum_suppression(bboxes, 0.5, scores)
    start = time.perf_counter()
    for _ in range(10):
        non_maximum_suppression(bboxes, 0.5, scores)
    # About 3 ms on one core; a generous bound for a busy CI machine.
    assert (time.perf_counter() - start) / 10 < 0.05


def _nested_brute_force(bboxes, scores, overlap):
    """Greedy nested-box suppression, one box at a time."""
    order = sorted(range(len(bboxes)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        w = bboxes[i]
        cx, cy = (w[0] + w[2]) / 2, (w[1] + w[3]) / 2
        for k in kept:
            s = bboxes[k]
            inter = (max(min(s[2], w[2]) - max(s[0], w[0]), 0)
                     * max(min(s[3], w[3]) - max(s[1], w[1]), 0))
            smaller = min((s[2] - s[0]) * (s[3] - s[1]), (w[2] - w[0]) * (w[3] - w[1]))
            share = inter / smaller if smaller > 0 else 1.0
            if s[0] < cx < s[2] and s[1] < cy < s[3] and share >= overlap:
                break
        else:
            kept.append(i)
    return kept


def test_nested_against_brute_force():
    rng = np.random.RandomState(1)
    for n in (0, 1, 2, 40, 300):
        bboxes, scores = _random_boxes(rng, n)
        scores[: n // 4] = 0.5
        for overlap in (0.3, 0.5, 1.0):
            kept = suppress_nested(bboxes, scores, overlap)
            assert kept.dtype == np.int32
            assert kept.tolist() == _nested_brute_force(bboxes.astype(np.float64), scores,
                                                        overlap), (n, overlap)


def test_nested_hand_made():
    # A tall glyph (0) with a second peak over its lower half (1), and its neighbour below
    # touching it (2), and a wide box (3) whose centre lies inside 0 but which shares only
    # 40 / 104 of itself with it.
    bboxes = np.array([[0, 0, 10, 20], [1, 10, 9, 20], [0, 20, 10, 30], [-8, 14, 18, 18]],
                      np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    # IoU(0, 1) = 80 / 200 = 0.4: an IoU NMS at 0.5 keeps both.
    assert non_maximum_suppression(bboxes, 0.5, scores).tolist() == [0, 1, 2, 3]
    # 1 lies inside 0 (share 1.0); 2's centre (5, 25) is outside 0; 3 shares 0.38.
    assert suppress_nested(bboxes, scores).tolist() == [0, 2, 3]
    assert suppress_nested(bboxes, scores, 0.38).tolist() == [0, 2]
    assert suppress_nested(bboxes, scores, 0.39).tolist() == [0, 2, 3]
    # The higher score decides: with the half box first, the whole glyph's centre (5, 10)
    # lies on the half box's edge, not strictly inside, so both stay.
    assert suppress_nested(bboxes, np.array([0.8, 0.9, 0.7, 0.6])).tolist() == [1, 0, 2, 3]
    # A box of no area inside a kept one is a duplicate too.
    point = np.array([[0, 0, 10, 10], [5, 5, 5, 5]], np.float32)
    assert suppress_nested(point, np.array([0.9, 0.8])).tolist() == [0]


def test_nested_chain_and_threshold_commute():
    # 0 suppresses 1 (centre (9, 5), share 50 / 80); 1 would have suppressed 2 (centre
    # (12.5, 5), share 25 / 40) but is gone, and 2 does not overlap 0.
    bboxes = np.array([[0, 0, 10, 10], [5, 0, 13, 10], [10.5, 0, 14.5, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert suppress_nested(bboxes, scores).tolist() == [0, 2]
    assert suppress_nested(bboxes[1:], scores[1:]).tolist() == [0]
    rng = np.random.RandomState(2)
    bboxes, scores = _random_boxes(rng, 200)
    kept = suppress_nested(bboxes, scores)
    # A second pass changes nothing; filtering by score before or after gives the same.
    assert suppress_nested(bboxes[kept], scores[kept]).tolist() == list(range(len(kept)))
    high = np.flatnonzero(scores >= 0.6)
    after = sorted(int(k) for k in kept if scores[k] >= 0.6)
    assert sorted(high[suppress_nested(bboxes[high], scores[high])].tolist()) == after


def test_nested_bad_input():
    assert suppress_nested(np.zeros((0, 4), np.float32), np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match=r'nested-box overlap must be in \(0, 1\], got 0'):
        suppress_nested(np.zeros((1, 4), np.float32), np.ones(1), 0)
    with pytest.raises(ValueError, match='R, 4'):
        suppress_nested(np.zeros((3,), np.float32), np.ones(3))
    assert check_nested_overlap('0.25') == 0.25 and check_nested_overlap(0) == 0.0
    for bad in (1.5, -0.1, 'half', None):
        with pytest.raises(ValueError, match=r'nested_overlap \(--nested-overlap\) is a share '
                                             r"of a box in \[0, 1\].*got {}".format(
                                                 repr(bad).replace('.', r'\.'))):
            check_nested_overlap(bad)
