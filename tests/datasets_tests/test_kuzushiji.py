import os

import numpy as np
import pytest
from PIL import Image

from kr.datasets import KuzushijiPageDataset
from kr.datasets import load_image
from kr.datasets import normalize_image
from kr.datasets import split_train_val


def test_trainval_items(kaggle_dir):
    ds = KuzushijiPageDataset(kaggle_dir, 'trainval')
    assert len(ds) == 5
    assert ds.ids == ['bookA_001', 'bookA_002', 'bookB-001', 'bookC_001_1', 'bookD_001']
    item = ds[0]
    assert set(item) == {'image', 'bboxes', 'unicodes', 'image_id'}
    assert isinstance(item['image'], Image.Image) and item['image'].mode == 'RGB'
    assert item['image'].size == (60, 80)
    np.testing.assert_array_equal(item['bboxes'], [[10, 20, 15, 28], [30, 40, 40, 50]])
    assert item['unicodes'] == ['U+3042', 'U+3044']
    empty = ds[1]
    assert empty['bboxes'].shape == (0, 4) and empty['unicodes'] == []


def _count_decodes(monkeypatch):
    from kr.datasets import image
    calls = []
    real = image.load_image

    def load(path):
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(image, 'load_image', load)
    return calls


def test_page_cache_decodes_each_page_once(kaggle_dir, monkeypatch):
    plain = KuzushijiPageDataset(kaggle_dir)
    expected = [np.asarray(plain[i]['image']) for i in range(len(plain))]
    calls = _count_decodes(monkeypatch)
    ds = KuzushijiPageDataset(kaggle_dir, cache_bytes=5 * 60 * 80 * 3 * 2)
    for i in (0, 3, 0, 3, 1):
        image = ds[i]['image']
        assert isinstance(image, np.ndarray) and not image.flags.writeable
        np.testing.assert_array_equal(image, expected[i])
    assert calls == ['bookA_001.jpg', 'bookC_001_1.jpg', 'bookA_002.jpg']
    assert ds[0]['image'] is ds[0]['image']
    with pytest.raises(ValueError, match='read-only'):
        ds[0]['image'][0, 0, 0] = 1              # the cached page cannot be changed


def test_page_cache_keeps_nothing_when_the_pages_would_not_fit(kaggle_dir, monkeypatch):
    calls = _count_decodes(monkeypatch)
    # 5 pages of 14,400 bytes (+10%) do not fit in 4 pages' worth: no page is kept
    ds = KuzushijiPageDataset(kaggle_dir, cache_bytes=4 * 60 * 80 * 3)
    for i in (0, 0, 1):
        assert ds[i]['image'].shape == (80, 60, 3)
    assert len(calls) == 3 and len(ds._images) == 0 and ds._images.nbytes == 0
    with pytest.raises(ValueError, match='cache_bytes must be >= 0, got -1'):
        KuzushijiPageDataset(kaggle_dir, cache_bytes=-1)


def test_skip_unlabeled(kaggle_dir):
    ds = KuzushijiPageDataset(kaggle_dir, 'trainval', skip_unlabeled=True)
    assert 'bookA_002' not in ds.ids and len(ds) == 4


def test_train_val_splits(kaggle_dir, tmp_path):
    split_dir = str(tmp_path / 'split')
    split_train_val(kaggle_dir, split_dir)
    ids = []
    for k in range(4):
        train = KuzushijiPageDataset(kaggle_dir, 'train', cv_index=k, split_dir=split_dir)
        val = KuzushijiPageDataset(kaggle_dir, 'val', cv_index=k, split_dir=split_dir)
        assert sorted(train.ids + val.ids) == sorted(KuzushijiPageDataset(kaggle_dir).ids)
        ids += val.ids
    assert sorted(ids) == sorted(KuzushijiPageDataset(kaggle_dir).ids)


def test_test_split_follows_sample_submission(kaggle_dir):
    ds = KuzushijiPageDataset(kaggle_dir, 'test')
    assert ds.ids == ['t2_1', 't1_1']
    assert not ds.labeled
    assert ds[0]['bboxes'].shape == (0, 4)
    with open(os.path.join(kaggle_dir, 'test_labels.csv'), 'w') as f:
        f.write('image_id,labels\nt1_1,U+3042 1 2 3 4\n')
    ds = KuzushijiPageDataset(kaggle_dir, 'test')
    assert ds.labeled
    np.testing.assert_array_equal(ds.bboxes[1], [[1, 2, 4, 6]])
    assert ds.unicodes[0] == []


def test_errors(kaggle_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        KuzushijiPageDataset(kaggle_dir, 'dev')
    with pytest.raises(FileNotFoundError, match='00_make_synthetic_dataset.py'):
        KuzushijiPageDataset(str(tmp_path / 'missing'))
    with pytest.raises(FileNotFoundError, match='01_split_train_val.py'):
        KuzushijiPageDataset(kaggle_dir, 'train', split_dir=str(tmp_path / 'nosplit'))
    with open(os.path.join(kaggle_dir, 'train.csv'), 'a') as f:
        f.write('bookE_001,U+3042 1 2 3 oops\n')
    with pytest.raises(ValueError, match=r"train.csv:7, image_id 'bookE_001': .*'oops'"):
        KuzushijiPageDataset(kaggle_dir)


def test_missing_and_corrupt_images_are_named(kaggle_dir):
    ds = KuzushijiPageDataset(kaggle_dir)
    os.remove(ds.image_path(0))
    with pytest.raises(FileNotFoundError, match='bookA_001.jpg'):
        ds[0]
    with open(ds.image_path(1), 'wb') as f:
        f.write(b'not a jpeg')
    with pytest.raises(ValueError, match='cannot read image .*bookA_002.jpg'):
        ds[1]


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'P'])
def test_load_image_converts_to_rgb(tmp_path, mode):
    path = str(tmp_path / 'x.png')
    Image.new(mode, (7, 5)).save(path)
    img = load_image(path)
    assert img.mode == 'RGB' and img.size == (7, 5)


def test_normalize_image():
    x = np.array([[[0, 127.5, 255]]], dtype=np.float32).repeat(2, axis=0)  # (2, 1, 3) HWC
    y = normalize_image(x)
    assert y.shape == (3, 2, 1) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:, 0, 0], [-127.5 / 128, 0, 127.5 / 128])
    assert normalize_image(np.zeros((4, 8, 6, 3), np.uint8)).shape == (4, 3, 8, 6)
