"""Group k-fold split of train.csv by book title (SPEC section 2)."""

import collections
import logging
import os
import re

import numpy as np

from kr.datasets.kuzushiji import check_data_dir
from kr.datasets.labels import read_labels_csv
from kr.datasets.labels import write_labels_csv
from kr.datasets.layout import split_csv_path
from kr.runs import start_run

logger = logging.getLogger(__name__)

#: Folds of the original solution.
N_SPLITS = 4


def book_title(image_id: str) -> str:
    """The book of a page: the first token of the id split on ``_`` and ``-``.

    ``'100241706_00004_2'`` -> ``'100241706'``; ``'umgy001-010'`` -> ``'umgy001'``.
    """
    return re.split(r'[_-]', image_id, maxsplit=1)[0]


def group_kfold(groups, n_splits: int = N_SPLITS) -> np.ndarray:
    """Assign whole groups to folds so that fold sizes are as even as possible.

    Groups are taken largest first (ties by name) and each goes to the fold with the fewest
    items so far (ties to the lowest fold), so the result depends on the data alone.

    Args:
        groups: Sequence of N hashable group keys (book titles).
        n_splits: Number of folds.

    Returns:
        ``(N,)`` int32 fold of each item.

    Raises:
        ValueError: Fewer distinct groups than folds.
    """
    counts = collections.Counter(groups)
    if n_splits < 2:
        raise ValueError('n_splits must be at least 2, got {}'.format(n_splits))
    if len(counts) < n_splits:
        raise ValueError('{} folds need at least {} books, found {}: {}'.format(
            n_splits, n_splits, len(counts), ', '.join(sorted(counts))))
    sizes = np.zeros(n_splits, dtype=np.int64)
    fold_of = {}
    for group, count in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        k = int(np.argmin(sizes))
        fold_of[group] = k
        sizes[k] += count
    return np.array([fold_of[g] for g in groups], dtype=np.int32)


def split_train_val(data_dir: str, split_dir: str, n_splits: int = N_SPLITS,
                    run_record: dict = None) -> dict:
    """Write ``<split_dir>/{train,val}-<k>.csv`` for every fold k, rows copied from train.csv.

    The page ids come from train.csv itself; rows keep train.csv's order and text.
    ``run_record`` is written as ``<split_dir>/args.json`` once train.csv has been read.

    Returns:
        dict: per fold ``{'train_pages', 'val_pages', 'val_books'}``.
    """
    check_data_dir(data_dir)
    train_csv = os.path.join(data_dir, 'train.csv')
    rows = read_labels_csv(train_csv)
    if not rows:
        raise ValueError('{} has no rows to split'.format(train_csv))
    folds = group_kfold([book_title(r[0]) for r in rows], n_splits)
    start_run(split_dir, run_record)
    summary = {}
    for k in range(n_splits):
        train = [(r[0], r[1]) for r, f in zip(rows, folds) if f != k]
        val = [(r[0], r[1]) for r, f in zip(rows, folds) if f == k]
        write_labels_csv(split_csv_path(split_dir, 'train', k), train)
        write_labels_csv(split_csv_path(split_dir, 'val', k), val)
        summary[k] = {'train_pages': len(train), 'val_pages': len(val),
                      'val_books': sorted({book_title(r[0]) for r in val})}
        logger.info('fold %d: %d train pages, %d val pages (%d books)', k, len(train), len(val),
                    len(summary[k]['val_books']))
    return summary
