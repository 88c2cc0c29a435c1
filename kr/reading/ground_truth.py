"""The reading-order ground truth of a synthetic dataset (``test_reading_order.json``).

The generator (:mod:`kr.synthetic.generator`) labels characters in reading order and records,
for each labelled character of a test page, its block, its main column and whether it is
ruby, and the page's main text. This module reads it back beside the boxes of
``test_labels.csv``.
"""

import dataclasses
import os

import numpy as np

from kr import fileio
from kr.datasets.labels import parse_labels
from kr.datasets.labels import read_labels_csv

#: Written by :func:`kr.synthetic.make_synthetic_dataset`, beside test_labels.csv.
READING_ORDER_JSON = 'test_reading_order.json'
TEST_LABELS_CSV = 'test_labels.csv'
#: Format version this module reads.
READING_ORDER_VERSION = 1


@dataclasses.dataclass
class ReadingTruth:
    """One test page's characters in reading order.

    Attributes:
        image_id: The page.
        unicodes: ``R`` codes in reading order.
        bboxes: ``(R, 4)`` float32 xyxy page pixels, same order.
        block: ``(R,)`` int64 block of each character.
        column: ``(R,)`` int64 main column inside its block (ruby: the column it glosses).
        ruby: ``(R,)`` bool.
        text: The main text, one line per column, ruby left out.
    """
    image_id: str
    unicodes: list
    bboxes: np.ndarray
    block: np.ndarray
    column: np.ndarray
    ruby: np.ndarray
    text: str


def load_reading_truth(data_dir: str) -> list:
    """The :class:`ReadingTruth` of every test page of a synthetic dataset, in file order.

    Args:
        data_dir: A folder written by scripts/00_make_synthetic_dataset.py.

    Raises:
        FileNotFoundError: ``test_reading_order.json`` or ``test_labels.csv`` is missing (a
            dataset made before the generator wrote it: make it again).
        ValueError: Another format version, or a page whose counts disagree with its labels.
    """
    path = os.path.join(data_dir, READING_ORDER_JSON)
    labels_path = os.path.join(data_dir, TEST_LABELS_CSV)
    remedy = 'make the synthetic dataset again with scripts/00_make_synthetic_dataset.py'
    data = fileio.read_versioned_json(path, READING_ORDER_VERSION, remedy)
    if not os.path.isfile(labels_path):
        raise FileNotFoundError('{} not found: {}'.format(labels_path, remedy))
    labels = {image_id: (text, line) for image_id, text, line in read_labels_csv(labels_path)}
    out = []
    for page in data['pages']:
        image_id = page['image_id']
        if image_id not in labels:
            raise ValueError('{}: page {} is not in {}'.format(path, image_id, labels_path))
        text, line = labels[image_id]
        unicodes, bboxes = parse_labels(text, image_id, labels_path, line)
        n = len(unicodes)
        if not len(page['block']) == len(page['column']) == len(page['ruby']) == n:
            raise ValueError('{}: page {} lists {} characters, {} has {}'.format(
                path, image_id, len(page['ruby']), labels_path, n))
        out.append(ReadingTruth(
            image_id=image_id, unicodes=list(unicodes), bboxes=bboxes,
            block=np.asarray(page['block'], dtype=np.int64).reshape(-1),
            column=np.asarray(page['column'], dtype=np.int64).reshape(-1),
            ruby=np.asarray(page['ruby'], dtype=bool).reshape(-1), text=page['text']))
    return out
