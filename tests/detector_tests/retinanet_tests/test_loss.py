import math

from chainer import gradient_check
from chainer import testing
import numpy as np
import pytest

from kr.detector.retinanet.loss import retinanet_loss
from kr.detector.retinanet.loss import sigmoid_focal_loss


def _inputs(dtype=np.float32, n=2, r=7, c=1, seed=0):
    rng = np.random.RandomState(seed)
    logits = (rng.randn(n, r, c) * 3).astype(dtype)
    boxes = (rng.randn(n, r, 4) * 2).astype(dtype)
    labels = np.zeros((n, r), dtype=np.int32)
    labels[0, [1, 4]] = [1, c]
    labels[0, 2] = labels[1, 5] = -1  # left out; image 1 has no positive anchor
    target = (rng.randn(n, r, 4) * 2).astype(dtype) * (labels > 0)[..., None]
    return logits, boxes, labels, target


def _naive(logits, boxes, labels, target, alpha=0.25, gamma=2.0, delta=1.0):
    """Anchor-by-anchor loops of the documented formulas."""
    n, r, c = logits.shape
    cls = box = 0.0
    n_pos = max(1, int((labels > 0).sum()))
    for i in range(n):
        for j in range(r):
            if labels[i, j] < 0:
                continue
            for k in range(c):
                t = 1 if labels[i, j] == k + 1 else 0
                p = 1 / (1 + math.exp(-float(logits[i, j, k])))
                p_t = p if t else 1 - p
                a_t = alpha if t else 1 - alpha
                cls -= a_t * (1 - p_t) ** gamma * math.log(p_t)
            if labels[i, j] > 0:
                for k in range(4):
                    d = abs(float(boxes[i, j, k]) - float(target[i, j, k]))
                    box += 0.5 * d * d if d <= delta else delta * (d - 0.5 * delta)
    return cls / n_pos, box / n_pos


@pytest.mark.parametrize('c', [1, 3])
def test_forward_matches_a_naive_loop(c):
    args = _inputs(c=c)
    terms = retinanet_loss(*args)
    assert sorted(terms) == ['box', 'cls']
    cls, box = _naive(*args)
    assert float(terms['cls'].array) == pytest.approx(cls, rel=1e-5)
    assert float(terms['box'].array) == pytest.approx(box, rel=1e-5)


def test_focal_loss_values():
    x = np.array([0.0, 0.0, 2.0, -3.0], dtype=np.float64)
    t = np.array([1, 0, 1, 0])
    out = sigmoid_focal_loss(x, t).array
    # p = 0.5: 0.25 * 0.25 * log 2 and 0.75 * 0.25 * log 2
    assert out[0] == pytest.approx(0.25 * 0.25 * math.log(2))
    assert out[1] == pytest.approx(0.75 * 0.25 * math.log(2))
    p = 1 / (1 + math.exp(-2))
    assert out[2] == pytest.approx(-0.25 * (1 - p) ** 2 * math.log(p))
    assert out[3] == pytest.approx(-0.75 * (1 / (1 + math.exp(3))) ** 2
                                   * math.log(1 - 1 / (1 + math.exp(3))))
    # gamma 0: alpha-weighted cross-entropy; large logits stay finite
    assert sigmoid_focal_loss(x, t, gamma=0).array[0] == pytest.approx(0.25 * math.log(2))
    big = sigmoid_focal_loss(np.array([-200.0, 200.0]), np.array([1, 0])).array
    np.testing.assert_allclose(big, [0.25 * 200, 0.75 * 200])


def test_no_positive_divides_by_one():
    logits, boxes, labels, target = _inputs()
    labels[labels > 0] = 0
    terms = retinanet_loss(logits, boxes, labels, target * 0)
    cls, _ = _naive(logits, boxes, labels, target * 0)
    assert float(terms['cls'].array) == pytest.approx(cls, rel=1e-5)
    assert float(terms['box'].array) == 0


def test_backward():
    logits, boxes, labels, target = _inputs(dtype=np.float64, c=2)
    rng = np.random.RandomState(1)

    def f(x, b):
        terms = retinanet_loss(x, b, labels, target)
        return terms['cls'] + terms['box']
    # box deltas away from the smooth-L1 kinks |d| = 1, where the derivative jumps
    boxes = target + np.where(rng.rand(*boxes.shape) < 0.5, 0.4, 1.7) * \
        np.sign(rng.randn(*boxes.shape))
    gradient_check.check_backward(f, (logits, boxes), np.array(1.0), dtype=np.float64,
                                  atol=1e-6, rtol=1e-5)
    gradient_check.check_backward(lambda x: sigmoid_focal_loss(x, labels[..., None] > 0),
                                  logits[..., :1], rng.randn(2, 7, 1), dtype=np.float64,
                                  atol=1e-6, rtol=1e-5)


@testing.attr.gpu
def test_forward_on_gpu():
    import cupy
    args = _inputs(c=2)
    terms = retinanet_loss(*[cupy.asarray(a) for a in args])
    cls, box = _naive(*args)
    assert float(terms['cls'].array) == pytest.approx(cls, rel=1e-5)
    assert float(terms['box'].array) == pytest.approx(box, rel=1e-5)
