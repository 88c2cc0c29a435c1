import chainer
import numpy as np
import pytest
from PIL import Image

from kr.detector.centernet.model import Res18UnetCenterNet
from kr.detector.centernet.model import SCORE_THRESHOLD
from kr.detector.centernet.model import SUBMISSION_SCORE_THRESHOLD


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


@pytest.mark.parametrize('n_fg_class', [1, 3])
@pytest.mark.parametrize('width,size', [(1.0, (32, 64)), (0.25, (32, 32)), (0.25, (96, 64)),
                                        (0.5, (64, 128))])
def test_output_shape(n_fg_class, width, size):
    model = Res18UnetCenterNet(n_fg_class=n_fg_class, width=width)
    x = np.random.RandomState(0).randn(2, 3, *size).astype(np.float32)
    y = model(x)
    assert y.shape == (2, n_fg_class + 4, size[0] // 4, size[1] // 4)
    assert y.dtype == np.float32


def test_input_must_be_a_multiple_of_32():
    with pytest.raises(ValueError, match='multiples of 32'):
        Res18UnetCenterNet(width=0.25)(np.zeros((1, 3, 40, 64), np.float32))


def test_bad_class_count():
    with pytest.raises(ValueError, match='n_fg_class'):
        Res18UnetCenterNet(n_fg_class=0)


def test_thresholds_are_the_sigmoid_of_the_original_logit_thresholds():
    # Quirk (a): the original compared 0.5 / 0.3 with logits.
    assert SCORE_THRESHOLD == pytest.approx(_sigmoid(0.5), abs=0.005)
    assert SUBMISSION_SCORE_THRESHOLD == pytest.approx(_sigmoid(0.3), abs=0.005)
    assert Res18UnetCenterNet(width=0.25).score_threshold == SCORE_THRESHOLD


class _FakeHead:
    """Replaces ``forward``: one peak at a fixed fraction of the grid, logit ``peak``."""

    def __init__(self, peak=3.0, size=(2.0, 3.0)):
        self.peak = peak
        self.size = size
        self.shapes = []

    def __call__(self, x):
        xp = chainer.backend.get_array_module(x)
        n, _, h, w = x.shape
        self.shapes.append((h, w))
        y = xp.zeros((n, 5, h // 4, w // 4), dtype=np.float32)
        y[:, 0] = -6
        y[:, 0, h // 8, w // 16] = self.peak
        y[:, 1, h // 8, w // 16] = self.size[0]
        y[:, 2, h // 8, w // 16] = self.size[1]
        return chainer.Variable(y)


def _fake_model(**kwargs):
    model = Res18UnetCenterNet(width=0.25)
    model.forward = _FakeHead(**kwargs)
    return model


def check_detect_page_coordinates(model):
    page = np.full((333, 200, 3), 255, dtype=np.uint8)  # H x W, not square
    bboxes, scores = model.detect(page)
    h, w = model.forward.shapes[-1]
    assert (h, w) == (1376, 832)  # shorter side 832, 333 x 4.16 = 1385 -> 43 x 32
    assert isinstance(bboxes, np.ndarray) and isinstance(scores, np.ndarray)
    assert bboxes.dtype == np.float32 and scores.dtype == np.float32
    i, j = h // 8, w // 16
    cx, cy = (j + 0.5) * 4, (i + 0.5) * 4
    expected = np.array([cx - 4, cy - 6, cx + 4, cy + 6]) * np.array([200 / w, 333 / h] * 2)
    assert bboxes.shape == (1, 4)
    np.testing.assert_allclose(bboxes[0], expected, rtol=1e-5)
    np.testing.assert_allclose(scores, [_sigmoid(3.0)], rtol=1e-6)


def test_detect_returns_page_coordinates():
    check_detect_page_coordinates(_fake_model())


@pytest.mark.gpu
def test_detect_gpu_returns_numpy():
    model = _fake_model()
    model.to_device('@cupy:0')
    check_detect_page_coordinates(model)


def test_detect_threshold_and_min_side():
    model = _fake_model(peak=0.45)  # probability 0.61 < 0.62
    page = Image.new('RGB', (100, 150), (255, 255, 255))
    assert len(model.detect(page)[0]) == 0
    assert len(model.detect(page, score_threshold=0.6)[0]) == 1
    model.detect(page, min_side=None)
    assert model.forward.shapes[-1] == (160, 96)  # own size, rounded to multiples of 32


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'RGB'])
def test_detect_grayscale_and_rgba(mode):
    model = _fake_model()
    page = Image.new(mode, (64, 96))
    bboxes, scores = model.detect(page, min_side=64)
    assert bboxes.shape == (1, 4) and scores.shape == (1,)


def test_detect_real_network_runs():
    model = Res18UnetCenterNet(width=0.25)
    page = (np.random.RandomState(0).rand(50, 70, 3) * 255).astype(np.uint8)
    bboxes, scores = model.detect(page, min_side=64, score_threshold=0.0)
    assert bboxes.shape[1:] == (4,) and bboxes.shape[0] == scores.shape[0] > 0
    assert np.all(np.diff(scores) <= 0)


def test_predict_several_images():
    model = _fake_model()
    images = [np.zeros((64, 64, 3), np.uint8), np.zeros((100, 50, 3), np.uint8)]
    bboxes, labels, scores = model.predict(images)
    assert len(bboxes) == len(labels) == len(scores) == 2
    assert all(l.dtype == np.int32 and (l == 0).all() and len(l) == len(b)
               for l, b in zip(labels, bboxes))
    assert model.forward.shapes == [(64, 64), (96, 64)]
    # The second image was resized 100x50 -> 96x64: boxes come back in its own pixels.
    i, j = 96 // 8, 64 // 16
    cx, cy = (j + 0.5) * 4 * 50 / 64, (i + 0.5) * 4 * 100 / 96
    np.testing.assert_allclose((bboxes[1][0, :2] + bboxes[1][0, 2:]) / 2, [cx, cy], rtol=1e-5)


def test_multi_class_nms():
    model = Res18UnetCenterNet(n_fg_class=2, width=0.25)
    bboxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]], np.float32)
    labels = np.array([0, 1, 0], np.int32)
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    assert model._nms(bboxes, labels, scores).tolist() == [1, 2]


def test_snapshot_round_trip(tmp_path):
    model = Res18UnetCenterNet(width=0.25)
    x = np.random.RandomState(0).randn(1, 3, 64, 64).astype(np.float32)
    with chainer.using_config('train', True):
        model(x)  # moves the BN statistics away from their initial values
    path = str(tmp_path / 'model.npz')
    chainer.serializers.save_npz(path, model)
    fresh = Res18UnetCenterNet(width=0.25)
    chainer.serializers.load_npz(path, fresh)
    with chainer.using_config('train', False):
        np.testing.assert_array_equal(model(x).array, fresh(x).array)
