import numpy as np
import pytest
from PIL import Image

from kr.detector.centernet.transforms import CenterCropResize
from kr.detector.centernet.transforms import CenterNetTrainTransform
from kr.detector.centernet.transforms import ColorAugmentation
from kr.detector.centernet.transforms import crop_and_resize
from kr.detector.centernet.transforms import crop_fraction_range
from kr.detector.centernet.transforms import CropOnly
from kr.detector.centernet.transforms import inference_size
from kr.detector.centernet.transforms import RandomCropResize


def test_inference_size():
    assert inference_size(1200, 800) == (1248, 832)
    assert inference_size(333, 200) == (1376, 832)
    assert inference_size(800, 1200) == (832, 1248)
    assert inference_size(50, 70, None) == (64, 64)
    assert inference_size(10, 10, None) == (32, 32)
    assert inference_size(1000, 600, 832 * 1.25) == (1728, 1024)


def test_crop_fraction_range_links_crops_to_the_inference_scale():
    assert crop_fraction_range(416) == pytest.approx((0.35, 0.65))
    low, high = crop_fraction_range(208)
    assert (low, high) == pytest.approx((0.175, 0.325))
    # Mean crop of a 1000 px wide page, resized to 208: the same scale as 832 / 1000.
    assert 208 / ((low + high) / 2 * 1000) == pytest.approx(0.832)


def test_crop_and_resize_keeps_centres_inside():
    image = np.zeros((100, 200, 3), np.uint8)
    bboxes = np.array([[10, 10, 20, 30],     # centre (15, 20): inside
                       [45, 0, 60, 10],      # centre (52.5, 5): outside (right)
                       [-5, 40, 15, 50]],    # centre (5, 45): inside, reaches outside
                      dtype=np.float32)
    crop, out = crop_and_resize(image, bboxes, (0, 0, 50, 50), 100)
    assert crop.shape == (100, 100, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(out, [[20, 20, 40, 60], [-10, 80, 30, 100]])
    assert out.dtype == np.float32


def test_crop_outside_the_page_is_filled_with_paper():
    image = np.full((20, 30, 3), 200, np.uint8)
    crop, out = crop_and_resize(image, np.zeros((0, 4), np.float32), (-10, -10, 40, 40), 50)
    assert crop.shape == (50, 50, 3)
    assert (crop == 200).all()
    assert out.shape == (0, 4)


def test_random_crop_is_in_range_and_seeded():
    crop = RandomCropResize(64, fraction_range=(0.3, 0.6), max_aspect=1.3, seed=0)
    for _ in range(50):
        x1, y1, x2, y2 = crop.crop_box(300, 200)
        w, h = x2 - x1, y2 - y1
        assert 0 <= x1 and x2 <= 200 and 0 <= y1 and y2 <= 300
        assert 0.3 * 200 / 1.3 ** 0.5 - 1 <= np.sqrt(w * h) <= 0.6 * 200 + 1
        assert 1 / 1.31 <= w / h <= 1.31
    again = RandomCropResize(64, fraction_range=(0.3, 0.6), seed=0)
    first = RandomCropResize(64, fraction_range=(0.3, 0.6), seed=0)
    assert [again.crop_box(300, 200) for _ in range(3)] == \
        [first.crop_box(300, 200) for _ in range(3)]


def test_random_crop_of_a_tiny_page():
    crop = RandomCropResize(64, fraction_range=(2.0, 3.0), seed=0)  # crop larger than the page
    image = np.full((5, 4, 3), 90, np.uint8)
    out, bboxes = crop(image, np.array([[1, 1, 3, 3]], np.float32))
    assert out.shape == (64, 64, 3)
    assert len(bboxes) == 1


def test_center_crop():
    image = np.zeros((400, 200, 3), np.uint8)
    crop = CenterCropResize(64, fraction=0.5)
    out, bboxes = crop(image, np.array([[95, 195, 105, 205], [0, 0, 10, 10]], np.float32))
    assert out.shape == (64, 64, 3)
    # Crop (50, 150)-(150, 250) scaled by 0.64.
    np.testing.assert_allclose(bboxes, [[45 * 0.64, 45 * 0.64, 55 * 0.64, 55 * 0.64]], rtol=1e-6)


def test_color_augmentation_keeps_shape_and_type():
    aug = ColorAugmentation(seed=0)
    image = (np.random.RandomState(0).rand(32, 48, 3) * 255).astype(np.uint8)
    outs = [aug(image) for _ in range(5)]
    assert all(o.shape == image.shape and o.dtype == np.uint8 for o in outs)
    assert any(not np.array_equal(o, image) for o in outs)


@pytest.mark.parametrize('mode', ['RGB', 'L', 'RGBA'])
def test_train_transform(mode):
    transform = CenterNetTrainTransform(RandomCropResize(64, fraction_range=(0.9, 1.0), seed=0),
                                        ColorAugmentation(seed=0))
    page = Image.new(mode, (80, 100))
    bboxes = np.array([[30, 40, 50, 60]], np.float32)
    x, heatmap, size, offset, mask = transform({'image': page, 'bboxes': bboxes})
    assert x.shape == (3, 64, 64) and x.dtype == np.float32
    assert heatmap.shape == (1, 16, 16) and size.shape == offset.shape == (2, 16, 16)
    assert mask.shape == (16, 16)
    assert all(a.dtype == np.float32 for a in (heatmap, size, offset, mask))


def test_train_transform_page_without_characters():
    transform = CenterNetTrainTransform(CenterCropResize(32))
    x, heatmap, size, offset, mask = transform(
        {'image': np.zeros((50, 40, 3), np.uint8), 'bboxes': np.zeros((0, 4), np.float32)})
    assert x.shape == (3, 32, 32)
    assert not heatmap.any() and not mask.any()


def test_crop_only():
    item = CropOnly(CenterCropResize(32, fraction=1.0))(
        {'image': Image.new('RGB', (32, 32)), 'bboxes': np.array([[0, 0, 8, 8]], np.float32)})
    assert item['image'].shape == (32, 32, 3)
    np.testing.assert_allclose(item['bboxes'], [[0, 0, 8, 8]])


def test_train_transform_passes_min_sigma_on():
    item = {'image': np.zeros((64, 64, 3), np.uint8),
            'bboxes': np.array([[20.0, 17.0, 44.0, 23.0]], np.float32)}   # 6 x 1.5 cells
    whole = CenterCropResize(64, fraction=1.0)
    default = CenterNetTrainTransform(whole)(item)[1][0]
    floored = CenterNetTrainTransform(whole, min_sigma=1.5)(item)[1][0]
    assert default[5, 8] == floored[5, 8] == 1.0
    assert floored[5, 9] == pytest.approx(np.exp(-1 / (2 * 1.5 ** 2)), rel=1e-6)
    assert default[5, 9] < 0.34
