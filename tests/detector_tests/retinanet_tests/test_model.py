import math

import chainer
import numpy as np
import pytest

from kr.detector.retinanet.decode import split_outputs
from kr.detector.retinanet.model import prior_bias
from kr.detector.retinanet.model import RetinaNetResNet


def _x(n=2, size=64, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (n, 3, size, size)).astype(np.float32)


@pytest.mark.parametrize('depth,min_level,max_level,n_fg_class,norm', [
    (50, 3, 7, 1, 'batch'), (101, 3, 7, 2, 'none'), (50, 2, 6, 1, 'group'),
    (50, 3, 5, 1, 'batch')])
def test_output_shapes(depth, min_level, max_level, n_fg_class, norm):
    model = RetinaNetResNet(n_fg_class=n_fg_class, depth=depth, width=0.0625,
                            min_level=min_level, max_level=max_level, head_norm=norm,
                            input_size=128)
    assert model.n_anchors == 6
    with chainer.using_config('train', False):
        outputs = model(_x(2, 128))
    cls, box = split_outputs(outputs)
    n_levels = max_level - min_level + 1
    assert len(cls) == len(box) == n_levels
    for level, (c, b) in enumerate(zip(cls, box), start=min_level):
        side = -(-128 // 2 ** level)
        assert c.shape == (2, 6 * n_fg_class, side, side)
        assert b.shape == (2, 24, side, side)
        assert c.dtype == b.dtype == np.float32


def test_prior_probability_bias():
    assert prior_bias(0.01) == pytest.approx(-math.log(99))
    model = RetinaNetResNet(depth=50, width=0.0625)
    np.testing.assert_array_equal(model.cls_subnet.out.b.array,
                                  np.float32(-math.log(99)))
    np.testing.assert_array_equal(model.box_subnet.out.b.array, 0)
    assert model.cls_subnet.out.W.array.std() == pytest.approx(0.01, rel=0.2)
    # at the start every anchor's probability is about the prior
    with chainer.using_config('train', False):
        cls = split_outputs(model(_x(1)))[0]
    p = 1 / (1 + np.exp(-np.concatenate([c.array.ravel() for c in cls])))
    assert abs(p.mean() - 0.01) < 0.002


def test_snapshot_round_trip(tmp_path):
    model = RetinaNetResNet(depth=50, width=0.0625, anchor_scale=4.0, input_size=64)
    path = str(tmp_path / 'model.npz')
    chainer.serializers.save_npz(path, model)
    other = RetinaNetResNet(depth=50, width=0.0625, anchor_scale=4.0, input_size=64)
    chainer.serializers.load_npz(path, other)
    x = _x(1)
    for a, b in zip(model.run_network(x), other.run_network(x)):
        np.testing.assert_array_equal(a, b)


def test_detect_returns_page_pixels(monkeypatch):
    model = RetinaNetResNet(depth=50, width=0.0625, input_size=64)
    image = np.full((100, 80, 3), 255, dtype=np.uint8)
    bboxes, scores = model.detect(image, score_threshold=0.0)
    assert bboxes.shape == (len(scores), 4) and 0 < len(scores) <= 1200
    assert bboxes[:, [0, 2]].max() <= 80 and bboxes[:, [1, 3]].max() <= 100
    assert (np.diff(scores) <= 0).all()
    _, labels, scores2 = model.predict([image], score_threshold=0.0)
    assert labels[0].dtype == np.int32 and (labels[0] == 0).all()
    np.testing.assert_array_equal(scores2[0], scores)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match='RetinaNet depth must be one of 50, 101, got 18'):
        RetinaNetResNet(depth=18)
    with pytest.raises(ValueError, match='multiple of 32, got 500'):
        RetinaNetResNet(input_size=500)
    with pytest.raises(ValueError, match='head norm must be one of batch, group, none'):
        RetinaNetResNet(depth=50, width=0.0625, head_norm='layer')
    with pytest.raises(ValueError, match='pyramid levels must satisfy 2 <= min_level'):
        RetinaNetResNet(min_level=1)
    with pytest.raises(ValueError, match='max_detections must be at least 1, got 0'):
        RetinaNetResNet(max_detections=0)
    model = RetinaNetResNet(depth=50, width=0.0625)
    with pytest.raises(ValueError, match='multiples of 32'):
        model(_x(1, 48))
