import time

import numpy as np
import pytest

from kr.detector.nms import non_maximum_suppression


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
