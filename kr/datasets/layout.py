"""Where the outputs of scripts 01 and 02 lie beside a Kaggle-layout data folder."""

import os


def derived_dir(data_dir: str, suffix: str) -> str:
    """A folder beside ``data_dir`` named after it, e.g. ``data/x`` -> ``data/x-gsplit``."""
    return os.path.normpath(data_dir).rstrip(os.sep) + suffix


def default_split_dir(data_dir: str) -> str:
    """Default output of script 01: ``<data_dir>-gsplit``."""
    return derived_dir(data_dir, '-gsplit')


def default_crop_dir(data_dir: str) -> str:
    """Default output of script 02: ``<data_dir>-crops``."""
    return derived_dir(data_dir, '-crops')


def split_csv_path(split_dir: str, split: str, cv_index: int) -> str:
    """``<split_dir>/<split>-<cv_index>.csv`` (``split``: ``'train'`` or ``'val'``)."""
    return os.path.join(split_dir, '{}-{}.csv'.format(split, cv_index))


def split_folds(split_dir: str) -> list:
    """The folds ``0, 1, ...`` whose ``train-<k>.csv`` exists in ``split_dir``, in order."""
    folds = []
    while os.path.isfile(split_csv_path(split_dir, 'train', len(folds))):
        folds.append(len(folds))
    return folds
