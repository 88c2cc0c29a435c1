import multiprocessing
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from kr.classifier import transforms
from kr.classifier.transforms import build_augmentation
from kr.classifier.transforms import ClassifierTransform
from kr.classifier.transforms import crop_resize
from kr.classifier.transforms import train_crop_box
from kr.classifier.transforms import val_crop_box


def test_val_crop_scale_is_the_inference_square():
    assert transforms.VAL_CROP_SCALE == pytest.approx(1.2 / 1.4)
    np.testing.assert_allclose(val_crop_box(140, 70), [35 - 30, 70 - 60, 35 + 30, 70 + 60])


def test_train_crop_box_ranges():
    rng = np.random.default_rng(0)
    boxes = np.array([train_crop_box(140, 140, rng) for _ in range(2000)])
    side = boxes[:, 2] - boxes[:, 0]
    np.testing.assert_allclose(side, boxes[:, 3] - boxes[:, 1])
    # 1.1/1.4 - 1.3/1.4 of the side, i.e. 110-130 pixels of a 140-pixel padded crop.
    assert 110 <= side.min() < 112 and 128 < side.max() <= 130
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 - 70
    # Shift up to +-0.1/1.4 of the side: +-10 pixels, on both axes independently.
    assert np.abs(centre).max() <= 10 and np.abs(centre).max() > 9.5
    assert abs(np.corrcoef(centre[:, 0], centre[:, 1])[0, 1]) < 0.1


def test_wide_train_crop_box_ranges():
    rng = np.random.default_rng(0)
    boxes = np.array([train_crop_box(140, 140, rng, 'wide') for _ in range(2000)])
    side = boxes[:, 2] - boxes[:, 0]
    # 0.95/1.4 - 1.4/1.4 of the side: 95-140 pixels; the shift up to +-15 pixels.
    assert 95 <= side.min() < 97 and 138 < side.max() <= 140
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 - 70
    assert np.abs(centre).max() <= 15 and np.abs(centre).max() > 14.5


def test_an_unknown_jitter_is_named():
    with pytest.raises(ValueError, match="unknown jitter 'loose': choose one of spec, wide"):
        ClassifierTransform(32, jitter='loose')
    with pytest.raises(ValueError, match='unknown jitter'):
        train_crop_box(140, 140, np.random.default_rng(0), 'loose')


def test_the_jitter_reaches_the_transform():
    image = np.full((140, 140, 3), 255, np.uint8)
    image[60:80, 60:80] = 0     # a dark square at the centre of the padded crop
    item = {'image': image, 'label': 0}
    outputs = {}
    for jitter in ('spec', 'wide'):
        transform = ClassifierTransform(32, train=True, augment=False, seed=0, jitter=jitter)
        outputs[jitter] = np.array([transform(item)[0] for _ in range(50)])
    # The same seed draws the same uniforms; the wider ranges move and scale the square more.
    assert outputs['spec'].std(axis=0).mean() < outputs['wide'].std(axis=0).mean()


def test_crop_resize_shrinks_by_area_and_fills_outside():
    image = np.zeros((4, 4, 3), np.uint8)
    image[:, :2] = 200
    out = crop_resize(image, (0, 0, 4, 4), 2)
    np.testing.assert_array_equal(out[:, :, 0], [[200, 0], [200, 0]])
    out = crop_resize(image, (-2, 0, 2, 4), 4, fill=(9, 9, 9))
    assert (out[:, :2] == 9).all() and (out[:, 2:] == 200).all()
    # A sub-pixel box still gives one pixel, then the requested size.
    assert crop_resize(image, (1.2, 1.2, 1.3, 1.3), 5).shape == (5, 5, 3)


def test_augmentation_uses_2x_names_and_reflect_borders():
    import albumentations as A
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        aug = build_augmentation(seed=0)
        out = aug(image=np.full((32, 32, 3), 128, np.uint8))['image']
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    geometric = [t for t in aug.transforms if isinstance(t, A.OneOf)][0]
    assert geometric.p == 0.7
    assert [type(t).__name__ for t in geometric.transforms] == [
        'Rotate', 'GridDistortion', 'ElasticTransform']
    assert all(t.border_mode == cv2.BORDER_REFLECT_101 for t in geometric.transforms)
    dropout = aug.transforms[-1]
    assert isinstance(dropout, A.CoarseDropout)
    assert dropout.num_holes_range == (1, 1) and dropout.fill == 128
    assert len(build_augmentation(light=True).transforms) == 2


def _item(size=(30, 30), label=3):
    rng = np.random.RandomState(0)
    image = Image.fromarray(rng.randint(0, 255, size[::-1] + (3,)).astype(np.uint8))
    return {'image': image, 'bbox': np.zeros(4, np.float32), 'label': np.int32(label)}


@pytest.mark.parametrize('train, augment', [(True, True), (True, False), (False, True)])
def test_transform_output(train, augment):
    x, label = ClassifierTransform(24, train=train, augment=augment, seed=0)(_item())
    assert x.shape == (3, 24, 24) and x.dtype == np.float32
    assert label == 3 and label.dtype == np.int32
    assert -1 <= x.min() and x.max() <= 1


@pytest.mark.parametrize('size', [(1, 1), (1, 5), (7, 2)])
def test_transform_tiny_and_degenerate_crops(size):
    for train in (True, False):
        x, _ = ClassifierTransform(16, train=train, seed=0)(_item(size))
        assert x.shape == (3, 16, 16)


def test_transform_seed_reproducible_and_validation_deterministic():
    a = ClassifierTransform(24, seed=5)(_item())[0]
    b = ClassifierTransform(24, seed=5)(_item())[0]
    c = ClassifierTransform(24, seed=6)(_item())[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    val = ClassifierTransform(24, train=False)
    np.testing.assert_array_equal(val(_item())[0], val(_item())[0])


def _run_in_child(transform, queue):
    queue.put(transform(_item())[0])


def test_transform_reseeds_in_worker_processes():
    transform = ClassifierTransform(24, seed=0)
    ctx = multiprocessing.get_context('fork')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_run_in_child, args=(transform, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    outputs = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
    assert not np.array_equal(outputs[0], outputs[1])
    # The parent keeps its seeded sequence.
    np.testing.assert_array_equal(transform(_item())[0],
                                  ClassifierTransform(24, seed=0)(_item())[0])
