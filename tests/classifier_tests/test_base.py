import chainer
import chainer.functions as F
import numpy as np
import pytest
from chainer import testing
from PIL import Image

from kr.classifier import classification_crops
from kr.classifier import ClassifierBase
from kr.classifier import CLASSIFY_PAD_RATIO
from kr.classifier import CLASSIFY_TTA_PAD_RATIOS
from kr.classifier import MobileNetV3


def coordinate_page(width=100, height=80):
    """A page whose red channel is x and green channel is y (blue 200)."""
    page = np.zeros((height, width, 3), np.uint8)
    page[:, :, 0] = np.arange(width)[None, :]
    page[:, :, 1] = np.arange(height)[:, None]
    page[:, :, 2] = 200
    return page


class ChannelMeanClassifier(ClassifierBase):
    """Logits = mean of each colour channel x 10: class = the dominant colour of the crop."""

    def __init__(self, input_size=8):
        super().__init__(3, input_size=input_size)
        self.calls = []

    def forward(self, x):
        self.calls.append(x.shape)
        assert not chainer.config.train and not chainer.config.enable_backprop
        return F.mean(x, axis=(2, 3)) * 10


def test_crop_geometry_inside_page():
    page = coordinate_page()
    # Longer side 20 -> crop side 20 x (1 + 2 x 0.1) = 24 around the centre (45, 50).
    crops = classification_crops(page, np.array([[40, 40, 50, 60]], np.float32), size=24)
    assert CLASSIFY_PAD_RATIO == 0.1
    assert crops.shape == (1, 24, 24, 3) and crops.dtype == np.uint8
    np.testing.assert_array_equal(crops[0, 0, :, 0], np.arange(33, 57))
    np.testing.assert_array_equal(crops[0, :, 0, 1], np.arange(38, 62))
    assert (crops[0, :, :, 2] == 200).all()


def test_crop_at_page_border_is_filled_with_paper_colour():
    page = np.full((50, 60, 3), 230, np.uint8)
    page[0:10, 0:10] = 0  # ink in the corner
    crops = classification_crops(page, np.array([[0, 0, 10, 10]]), size=12)
    # Crop (-1, -1, 11, 11): first row and column lie outside the page.
    assert (crops[0, 0] == 230).all() and (crops[0, :, 0] == 230).all()
    assert (crops[0, 1:11, 1:11] == 0).all()
    assert (crops[0, 11, 1:] == 230).all()


def test_crop_of_box_beyond_the_page_and_degenerate_boxes():
    page = np.full((30, 30, 3), 17, np.uint8)
    boxes = np.array([
        [50, 50, 60, 60],     # wholly outside: all paper colour
        [10, 10, 10, 20],     # zero width: a square of the height x 1.2
        [5, 5, 5, 5],         # a point: one pixel
        [28.5, 2, 35.5, 9],   # partly outside, fractional
    ], np.float32)
    crops = classification_crops(page, boxes, size=8)
    assert crops.shape == (4, 8, 8, 3)
    assert (crops == 17).all()


@pytest.mark.parametrize('bad, match', [
    (np.zeros((2, 3)), 'shape'),
    (np.array([[0, 0, np.nan, 4]]), 'not finite'),
    (np.array([[0, 0, 4, 4], [5, 5, 4, 9]]), 'row 1'),
])
def test_bad_boxes(bad, match):
    model = ChannelMeanClassifier()
    with pytest.raises(ValueError, match=match):
        model.classify(np.zeros((10, 10, 3), np.uint8), bad)


def test_classify_labels_batches_and_empty():
    page = np.full((40, 120, 3), 255, np.uint8)
    page[10:30, 10:30] = (255, 0, 0)
    page[10:30, 50:70] = (0, 255, 0)
    page[10:30, 90:110] = (0, 0, 255)
    boxes = np.array([[12, 12, 28, 28], [52, 12, 68, 28], [92, 12, 108, 28],
                      [14, 14, 26, 26], [94, 14, 106, 26]], np.float32)
    model = ChannelMeanClassifier()
    indices, scores = model.classify(Image.fromarray(page), boxes, batch_size=2)
    np.testing.assert_array_equal(indices, [0, 1, 2, 0, 2])
    assert indices.dtype == np.int32 and scores.dtype == np.float32
    assert [c[0] for c in model.calls] == [2, 2, 1]
    assert model.calls[0][1:] == (3, 8, 8)
    expected = F.softmax(F.mean(chainer.Variable(np.stack([
        np.moveaxis((c.astype(np.float32) - 127.5) / 128, -1, 0)
        for c in classification_crops(page, boxes, 8)])), axis=(2, 3)) * 10).array.max(axis=1)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)

    indices, scores = model.classify(page, np.zeros((0, 4), np.float32))
    assert indices.shape == (0,) and indices.dtype == np.int32
    assert scores.shape == (0,) and scores.dtype == np.float32
    indices, _ = model.classify(page, [])
    assert indices.shape == (0,)


def test_crop_tta_averages_the_margins():
    # On a page whose red is x and green y, the margins give crops of other mean colours
    # (the fill past the left edge among them), so other probabilities.
    page = coordinate_page()
    page[:, :, 2] = 0
    boxes = np.array([[2, 30, 12, 50], [40, 20, 60, 36]], np.float32)
    model = ChannelMeanClassifier()

    def probabilities(pad):
        x = np.stack([np.moveaxis((c.astype(np.float32) - 127.5) / 128, -1, 0)
                      for c in classification_crops(page, boxes, 8, pad)])
        return F.softmax(F.mean(chainer.Variable(x), axis=(2, 3)) * 10).array

    average = sum(probabilities(p) for p in CLASSIFY_TTA_PAD_RATIOS) / 5
    indices, scores = model.classify(page, boxes, pad_ratios='tta')
    np.testing.assert_array_equal(indices, average.argmax(axis=1))
    np.testing.assert_allclose(scores, average.max(axis=1), rtol=1e-6)
    assert len(model.calls) == 5
    assert np.abs(average - probabilities(CLASSIFY_PAD_RATIO)).max() > 1e-3
    # One margin is the SPEC's single crop, to the bit.
    single = model.classify(page, boxes, pad_ratios=[CLASSIFY_PAD_RATIO])[1]
    np.testing.assert_array_equal(single, model.classify(page, boxes)[1])
    assert CLASSIFY_TTA_PAD_RATIOS == (0.05, 0.1, 0.15, 0.2, 0.25)


@pytest.mark.parametrize('bad', [[], [0.1, -0.1], 'wide', [None]])
def test_bad_pad_ratios(bad):
    with pytest.raises(ValueError, match=r"pad_ratios must be None, 'tta' or a non-empty "
                                         r'sequence of crop margins >= 0.*got'):
        ChannelMeanClassifier().classify(coordinate_page(), np.array([[0, 0, 4, 4]]),
                                         pad_ratios=bad)


def _check_classify_returns_numpy(model, device):
    model.to_device(device)
    page = np.random.RandomState(0).randint(0, 255, (60, 80, 3)).astype(np.uint8)
    indices, scores = model.classify(page, np.array([[5, 5, 20, 25], [70, 50, 90, 70]]))
    assert isinstance(indices, np.ndarray) and isinstance(scores, np.ndarray)
    assert indices.shape == (2,) and ((0 <= indices) & (indices < 5)).all()
    assert ((0 < scores) & (scores <= 1)).all()
    return indices, scores


def test_classify_cpu():
    _check_classify_returns_numpy(MobileNetV3(5, width=0.25, input_size=32), '@numpy')


@testing.attr.gpu
def test_classify_gpu():
    model = MobileNetV3(5, width=0.25, input_size=32)
    cpu = _check_classify_returns_numpy(model, '@numpy')
    gpu = _check_classify_returns_numpy(model, '@cupy:0')
    np.testing.assert_array_equal(cpu[0], gpu[0])
    np.testing.assert_allclose(cpu[1], gpu[1], rtol=1e-3)


def test_input_size_too_small():
    with pytest.raises(ValueError, match='input_size'):
        MobileNetV3(3, input_size=4)
