import json
import os

import numpy as np
import pytest
from PIL import Image

from kr.datasets import crop_boxes
from kr.datasets import crop_characters
from kr.datasets import crop_page
from kr.datasets import crop_with_fill
from kr.datasets import KuzushijiCharCropDataset
from kr.datasets import KuzushijiUnicodeMapping
from kr.datasets import split_train_val


def test_crop_boxes_exact():
    # 10 x 20 box centred at (15, 30): side 20 * 1.4 = 28 -> [1, 16, 29, 44].
    # 5 x 3 box at (0.5, 0.5): side 7, centre (3, 2) -> [-0.5, -1.5, 6.5, 5.5] -> floor/ceil.
    boxes = np.array([[10, 20, 20, 40], [0.5, 0.5, 5.5, 3.5]], np.float32)
    np.testing.assert_array_equal(crop_boxes(boxes), [[1, 16, 29, 44], [-1, -2, 7, 6]])
    assert crop_boxes(boxes).dtype == np.int64
    # a degenerate box still gives a 1-pixel crop
    np.testing.assert_array_equal(crop_boxes(np.array([[3, 4, 3, 4]], np.float32)), [[3, 4, 4, 5]])
    assert crop_boxes(np.zeros((0, 4), np.float32)).shape == (0, 4)


def test_crop_with_fill_at_page_borders():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    out = crop_with_fill(image, (-2, -1, 2, 2), fill=(7, 8, 9))
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out[0], [[7, 8, 9]] * 4)          # row above the page
    np.testing.assert_array_equal(out[1:, :2], [[[7, 8, 9]] * 2] * 2)  # columns left of it
    np.testing.assert_array_equal(out[1:, 2:], image[0:2, 0:2])
    wholly_outside = crop_with_fill(image, (10, 10, 12, 13), fill=1)
    assert wholly_outside.shape == (3, 2, 3) and (wholly_outside == 1).all()
    np.testing.assert_array_equal(crop_with_fill(image, (0, 0, 5, 4), 0), image)


def test_crop_page_fills_with_paper_colour():
    page = np.full((50, 40, 3), (200, 190, 150), np.uint8)
    page[20:30, 10:20] = 0  # ink
    crops, boxes = crop_page(Image.fromarray(page), np.array([[0, 0, 10, 10], [10, 20, 20, 30]], np.float32))
    np.testing.assert_array_equal(boxes[0], [-2, -2, 12, 12])
    assert crops[0].shape == (14, 14, 3)
    np.testing.assert_array_equal(crops[0][0, 0], (200, 190, 150))
    np.testing.assert_array_equal(crops[1][2:12, 2:12], 0)


def test_crop_characters_and_dataset(kaggle_dir, tmp_path):
    split_dir = str(tmp_path / 'split')
    crop_dir = str(tmp_path / 'crops')
    split_train_val(kaggle_dir, split_dir)
    summary = crop_characters(kaggle_dir, crop_dir, split_dir=split_dir, workers=2,
                              run_record={'seed': 1})
    assert summary['pages'] == 4 and summary['crops'] == 5
    assert set(summary['indexes']) == {'trainval'} | {'{}-{}'.format(s, k) for s in ('train', 'val') for k in range(4)}
    assert json.load(open(os.path.join(crop_dir, 'args.json')))['seed'] == 1
    records = json.load(open(os.path.join(crop_dir, 'trainval.json')))
    first = records[0]
    assert first == {
        'image_path': 'char_images/bookA_001/bookA_001_0000.png', 'image_id': 'bookA_001',
        'original_bbox': [10.0, 20.0, 15.0, 28.0],
        # side 8 * 1.4 = 11.2 around (12.5, 24): [6.9, 18.4, 18.1, 29.6] -> [6, 18, 19, 30]
        'bbox': [4.0, 2.0, 9.0, 10.0], 'unicode': 'U+3042'}
    assert Image.open(os.path.join(crop_dir, first['image_path'])).size == (13, 12)
    for k in range(4):
        n_train = len(json.load(open(os.path.join(crop_dir, 'train-{}.json'.format(k)))))
        n_val = len(json.load(open(os.path.join(crop_dir, 'val-{}.json'.format(k)))))
        assert n_train + n_val == 5

    mapping = KuzushijiUnicodeMapping(kaggle_dir)
    ds = KuzushijiCharCropDataset(crop_dir, 'trainval', mapping=mapping)
    np.testing.assert_array_equal(ds.labels, [0, 1, 1, 0, 0])
    item = ds[0]
    assert item['image'].size == (13, 12) and item['label'] == 0 and item['unicode'] == 'U+3042'
    np.testing.assert_array_equal(item['bbox'], [4, 2, 9, 10])
    assert KuzushijiCharCropDataset(crop_dir, 'trainval').labels.tolist() == [-1] * 5
    cached = KuzushijiCharCropDataset(crop_dir, 'trainval', mapping=mapping, cache_bytes=10000)
    for i in (0, 1, 0):
        got = cached[i]
        np.testing.assert_array_equal(got['image'], np.asarray(ds[i]['image']))
        assert not got['image'].flags.writeable and got['label'] == ds[i]['label']
    assert len(cached._images) == 2 and cached[0]['image'] is cached[0]['image']

    with pytest.raises(FileExistsError, match='--overwrite'):
        crop_characters(kaggle_dir, crop_dir, split_dir=split_dir, workers=1)
    crop_characters(kaggle_dir, crop_dir, split_dir=split_dir, workers=1, overwrite=True)


def test_crop_dataset_errors(kaggle_dir, tmp_path):
    split_dir, crop_dir = str(tmp_path / 'split'), str(tmp_path / 'crops')
    with pytest.raises(FileNotFoundError, match='01_split_train_val.py'):
        crop_characters(kaggle_dir, crop_dir, split_dir=split_dir)
    split_train_val(kaggle_dir, split_dir)
    with pytest.raises(FileNotFoundError, match='02_crop_characters.py'):
        KuzushijiCharCropDataset(crop_dir, 'train')
    with pytest.raises(ValueError, match="unknown split 'test'"):
        KuzushijiCharCropDataset(crop_dir, 'test')
    crop_characters(kaggle_dir, crop_dir, split_dir=split_dir, workers=1)
    other = tmp_path / 'u.csv'
    other.write_text('Unicode,char\nU+3042,あ\n', encoding='utf-8')
    from kr.datasets import KuzushijiUnicodeMapping
    with pytest.raises(ValueError, match=r'trainval.json record 1 .*unknown unicode U\+3044'):
        KuzushijiCharCropDataset(crop_dir, 'trainval', mapping=KuzushijiUnicodeMapping(str(other)))
    ds = KuzushijiCharCropDataset(crop_dir, 'trainval')
    os.remove(os.path.join(crop_dir, ds.records[2]['image_path']))
    with pytest.raises(FileNotFoundError, match='bookB-001_0000.png'):
        ds[2]


def test_interrupted_crop_run_leaves_nothing(kaggle_dir, tmp_path):
    split_dir, crop_dir = str(tmp_path / 'split'), str(tmp_path / 'crops')
    split_train_val(kaggle_dir, split_dir)
    os.remove(os.path.join(kaggle_dir, 'train_images', 'bookC_001_1.jpg'))
    with pytest.raises(FileNotFoundError, match='bookC_001_1.jpg'):
        crop_characters(kaggle_dir, crop_dir, split_dir=split_dir, workers=1)
    assert not os.path.exists(crop_dir)
    assert sorted(os.listdir(str(tmp_path))) == ['kaggle', 'split']  # no temporary left over
