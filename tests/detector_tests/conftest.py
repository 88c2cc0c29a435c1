import os

import pytest

from kr.datasets import read_labels_csv
from kr.datasets import write_labels_csv


@pytest.fixture(scope='session')
def detector_data(tmp_path_factory):
    """A small synthetic Kaggle-layout set for the detector: 8 train pages about 320 px
    tall, fold 0 = the first 6 pages for training and the last 2 for validation.

    Returns a dict with ``data_dir`` and ``split_dir``. Read-only for tests.
    """
    from kr.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp('detector_data')
    data_dir = str(root / 'synthetic')
    split_dir = str(root / 'synthetic-gsplit')
    # IPAexGothic only: the same data on every machine, whatever fonts it has installed.
    make_synthetic_dataset(data_dir, train_pages=8, test_pages=1, seed=3, workers=1,
                           page_height=320, empty_page_rate=0.0, brush_fonts=False)
    rows = [(image_id, labels) for image_id, labels, _ in
            read_labels_csv(os.path.join(data_dir, 'train.csv'))]
    os.makedirs(split_dir)
    write_labels_csv(os.path.join(split_dir, 'train-0.csv'), rows[:6])
    write_labels_csv(os.path.join(split_dir, 'val-0.csv'), rows[6:])
    return {'data_dir': data_dir, 'split_dir': split_dir}


def two_training_pages(detector_data) -> list:
    """The first two training pages of :func:`detector_data` (the overfit tests' pages)."""
    from kr.datasets import KuzushijiPageDataset
    pages = KuzushijiPageDataset(detector_data['data_dir'], 'train', 0,
                                 detector_data['split_dir'])
    items = [pages[0], pages[1]]
    assert all(len(item['bboxes']) > 20 for item in items)
    return items


def train_steps(chain, batch, iterations: int, alpha: float) -> float:
    """``iterations`` Adam updates of ``chain`` on one fixed ``batch``; the seconds taken."""
    import time

    import chainer
    optimizer = chainer.optimizers.Adam(alpha=alpha)
    optimizer.setup(chain)
    start = time.perf_counter()
    for _ in range(iterations):
        optimizer.update(chain, *batch)
    return time.perf_counter() - start


def found_boxes(items, detect):
    """``(found, total, detected)``: true boxes of ``items`` that a detection of
    ``detect(image) -> (bboxes, scores)`` meets at IoU >= 0.5, all true boxes, detections."""
    from kr.bbox import iou_matrix
    found = total = detected = 0
    for item in items:
        bboxes, _ = detect(item['image'])
        if len(bboxes):
            found += int((iou_matrix(item['bboxes'], bboxes).max(axis=1) >= 0.5).sum())
        total += len(item['bboxes'])
        detected += len(bboxes)
    return found, total, detected
