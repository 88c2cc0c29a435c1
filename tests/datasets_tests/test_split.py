import os

import numpy as np
import pytest

from kr.datasets import book_title
from kr.datasets import group_kfold
from kr.datasets import read_labels_csv
from kr.datasets import split_train_val


@pytest.mark.parametrize('image_id,book', [
    ('100241706_00004_2', '100241706'), ('umgy001-010', 'umgy001'), ('hnsd004-026', 'hnsd004'),
    ('200003076_00034_2', '200003076'), ('plain', 'plain'),
])
def test_book_title(image_id, book):
    assert book_title(image_id) == book


def test_group_kfold_keeps_books_whole_and_balances():
    rng = np.random.RandomState(0)
    groups = ['book{}'.format(g) for g in rng.randint(0, 15, size=300)]
    folds = group_kfold(groups, 4)
    assert folds.dtype == np.int32 and folds.shape == (300,)
    for g in set(groups):
        assert len({f for f, h in zip(folds, groups) if h == g}) == 1
    sizes = np.bincount(folds, minlength=4)
    assert sizes.min() > 0 and sizes.max() - sizes.min() <= max(np.unique(groups, return_counts=True)[1])
    np.testing.assert_array_equal(folds, group_kfold(groups, 4))


def test_group_kfold_exact_assignment():
    # a (3 pages) -> fold 0; b, c, d (2 each) -> folds 1, 2, 3; e (1) -> fold 1 (smallest, lowest).
    groups = ['a', 'a', 'a', 'b', 'b', 'c', 'c', 'd', 'd', 'e']
    np.testing.assert_array_equal(group_kfold(groups, 4), [0, 0, 0, 1, 1, 2, 2, 3, 3, 1])


def test_group_kfold_needs_enough_books():
    with pytest.raises(ValueError, match='4 folds need at least 4 books, found 2: a, b'):
        group_kfold(['a', 'b', 'a'], 4)


def test_split_train_val_files(kaggle_dir, tmp_path):
    split_dir = str(tmp_path / 'split')
    summary = split_train_val(kaggle_dir, split_dir)
    assert sorted(os.listdir(split_dir)) == sorted(
        '{}-{}.csv'.format(s, k) for s in ('train', 'val') for k in range(4))
    all_rows = [r[:2] for r in read_labels_csv(os.path.join(kaggle_dir, 'train.csv'))]
    for k in range(4):
        train = [r[:2] for r in read_labels_csv(os.path.join(split_dir, 'train-{}.csv'.format(k)))]
        val = [r[:2] for r in read_labels_csv(os.path.join(split_dir, 'val-{}.csv'.format(k)))]
        assert not {book_title(i) for i, _ in train} & {book_title(i) for i, _ in val}
        assert sorted(train + val) == sorted(all_rows)
        assert [r for r in all_rows if r in train] == train  # train.csv order and text kept
        assert summary[k]['val_pages'] == len(val)
