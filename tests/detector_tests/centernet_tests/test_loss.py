import math

import chainer
from chainer import gradient_check
import numpy as np
import pytest

from kr.detector.centernet.loss import centernet_loss
from kr.detector.centernet.loss import OFFSET_WEIGHT
from kr.detector.centernet.loss import SIZE_WEIGHT


def _inputs(xp=np, dtype=np.float32, n=2, n_fg_class=1, h=4, w=5, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randn(n, n_fg_class + 4, h, w).astype(dtype) * 2
    heatmap = rng.uniform(0, 0.95, (n, n_fg_class, h, w)).astype(dtype)
    mask = np.zeros((n, h, w), dtype=dtype)
    mask[0, 1, 2] = mask[0, h - 1, 0] = 1  # image 0: two centres, image 1: none
    for c, i, j in [(0, 1, 2), (n_fg_class - 1, h - 1, 0)]:
        heatmap[0, c, i, j] = 1
    size = rng.uniform(1, 5, (n, 2, h, w)).astype(dtype) * mask[:, None]
    offset = rng.uniform(0, 1, (n, 2, h, w)).astype(dtype) * mask[:, None]
    return tuple(xp.asarray(a) for a in (y, heatmap, size, offset, mask))


def _naive(y, heatmap, size, offset, mask, n_fg_class):
    """Per-pixel loops of the documented formula."""
    n_img, _, h, w = y.shape
    sig = lambda v: 1 / (1 + math.exp(-v))  # NOQA
    totals = {'score': 0.0, 'size': 0.0, 'offset': 0.0}
    for b in range(n_img):
        n = max(1.0, float(mask[b].sum()))
        score = size_l1 = offset_l1 = 0.0
        for i in range(h):
            for j in range(w):
                for c in range(n_fg_class):
                    p = sig(float(y[b, c, i, j]))
                    t = float(heatmap[b, c, i, j])
                    if t == 1:
                        score -= (1 - p) ** 2 * math.log(p)
                    else:
                        score -= (1 - t) ** 4 * p ** 2 * math.log(1 - p)
                if mask[b, i, j]:
                    for k in range(2):
                        size_l1 += abs(float(y[b, n_fg_class + k, i, j]) - float(size[b, k, i, j]))
                        offset_l1 += abs(sig(float(y[b, n_fg_class + 2 + k, i, j]))
                                         - float(offset[b, k, i, j]))
        totals['score'] += score / n / n_img
        totals['size'] += SIZE_WEIGHT * size_l1 / n / n_img
        totals['offset'] += OFFSET_WEIGHT * offset_l1 / n / n_img
    return totals


def check_forward_matches_naive(xp):
    for n_fg_class in (1, 3):
        args = _inputs(xp, n_fg_class=n_fg_class)
        terms = centernet_loss(*args, n_fg_class=n_fg_class)
        assert sorted(terms) == ['offset', 'score', 'size']
        expected = _naive(*[chainer.backend.CpuDevice().send(a) for a in args], n_fg_class)
        for key, value in terms.items():
            assert value.shape == ()
            assert float(value.array) == pytest.approx(expected[key], rel=1e-5)


def check_backward(xp):
    y, heatmap, size, offset, mask = _inputs(xp, dtype=np.float64, h=3, w=3)

    def total(y):
        terms = centernet_loss(y, heatmap, size, offset, mask)
        return terms['score'] + terms['size'] + terms['offset']
    gradient_check.check_backward(total, (y,), None, eps=1e-4, atol=1e-5, rtol=1e-4,
                                          dtype=np.float64)


def test_forward_matches_naive_loop():
    check_forward_matches_naive(np)


def test_backward():
    check_backward(np)


@pytest.mark.gpu
def test_forward_and_backward_gpu():
    import cupy
    check_forward_matches_naive(cupy)
    check_backward(cupy)


def test_batch_loss_is_the_mean_over_images():
    # Quirk (b): divided by the batch size (the original divided by the 5 output channels).
    args = _inputs(n=3)
    batch = centernet_loss(*args)
    singles = [centernet_loss(*(a[k:k + 1] for a in args)) for k in range(3)]
    for key in batch:
        mean = np.mean([float(s[key].array) for s in singles])
        assert float(batch[key].array) == pytest.approx(mean, rel=1e-5)


def test_image_without_boxes_is_normalised_by_one():
    y, heatmap, size, offset, mask = _inputs(n=1)
    mask[:] = 0
    heatmap[heatmap == 1] = 0.5
    terms = centernet_loss(y, heatmap, size, offset, mask)
    assert float(terms['size'].array) == 0 and float(terms['offset'].array) == 0
    expected = _naive(y, heatmap, size, offset, mask, 1)['score']
    assert float(terms['score'].array) == pytest.approx(expected, rel=1e-5)


def test_large_logits_stay_finite():
    y, heatmap, size, offset, mask = _inputs()
    y[:, 0] = 200.0
    y[:, 0, 0, 0] = -200.0
    yv = chainer.Variable(y)
    terms = centernet_loss(yv, heatmap, size, offset, mask)
    total = terms['score'] + terms['size'] + terms['offset']
    total.backward()
    assert np.isfinite(float(total.array)) and np.isfinite(yv.grad).all()


def test_wrong_channel_count():
    y, heatmap, size, offset, mask = _inputs()
    with pytest.raises(ValueError, match='channels'):
        centernet_loss(y, heatmap, size, offset, mask, n_fg_class=2)
