"""Page datasets over a Kaggle-layout folder (real or synthetic).

Layout (SPEC section 1)::

    <data_dir>/train.csv                image_id,labels
    <data_dir>/train_images/<id>.jpg
    <data_dir>/test_images/<id>.jpg
    <data_dir>/unicode_translation.csv
    <data_dir>/sample_submission.csv    (fixes the order of the test pages when present)
    <data_dir>/test_labels.csv          (synthetic sets only: test ground truth)
    <split_dir>/{train,val}-<k>.csv     (written by scripts/01_split_train_val.py)
"""

import os

import chainer

from kr.datasets.image import check_image
from kr.datasets.image import ImageCache
from kr.datasets.labels import parse_labels
from kr.datasets.labels import read_labels_csv
from kr.datasets.layout import default_split_dir
from kr.datasets.layout import split_csv_path

#: Splits of :class:`KuzushijiPageDataset`.
SPLITS = ('trainval', 'train', 'val', 'test')
#: Test ground truth written by the synthetic generator (absent in the Kaggle data).
TEST_LABELS_CSV = 'test_labels.csv'
IMAGE_EXT = '.jpg'


def check_data_dir(data_dir: str) -> None:
    """Raise FileNotFoundError with a hint when ``data_dir`` is not a Kaggle-layout folder."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            'data folder {} not found: download the Kaggle "Kuzushiji Recognition" data into '
            'it, or build a synthetic set with scripts/00_make_synthetic_dataset.py --out {} '
            '(or pass --data-dir)'.format(data_dir, data_dir))


def _test_ids(data_dir):
    order = os.path.join(data_dir, 'sample_submission.csv')
    if os.path.isfile(order):
        return [r[0] for r in read_labels_csv(order)]
    folder = os.path.join(data_dir, 'test_images')
    if not os.path.isdir(folder):
        raise FileNotFoundError('{} not found (nor sample_submission.csv)'.format(folder))
    return sorted(os.path.splitext(n)[0] for n in os.listdir(folder)
                  if n.lower().endswith(IMAGE_EXT))


class KuzushijiPageDataset(chainer.dataset.DatasetMixin):
    """Pages with their character boxes.

    Each item is a dict:

    * ``image``: RGB ``PIL.Image`` (with ``cache_bytes``: a read-only ``(H, W, 3)`` uint8
      array);
    * ``bboxes``: ``(R, 4)`` float32 ``x_min y_min x_max y_max`` in page pixels
      (``(0, 4)`` for a page without labels);
    * ``unicodes``: list of R ``'U+XXXX'`` strings;
    * ``image_id``: str.

    Labels are parsed up front (so a malformed row fails at construction, naming it), and
    exposed without loading images through :attr:`ids`, :attr:`bboxes`, :attr:`unicodes`.

    Args:
        data_dir: Kaggle-layout folder.
        split: ``'trainval'`` (all of train.csv), ``'train'`` / ``'val'`` (a fold written
            by scripts/01_split_train_val.py), or ``'test'`` (test_images, in
            sample_submission.csv order; labelled when ``test_labels.csv`` exists).
        cv_index: Fold for ``'train'`` / ``'val'``.
        split_dir: Folder of the fold CSVs (default ``<data_dir>-gsplit``).
        skip_unlabeled: Drop pages whose labels field is empty.
        cache_bytes: Keep decoded pages in memory, up to this many bytes, when all of them
            are expected to fit (:class:`kr.datasets.image.ImageCache`); pages then come as
            read-only arrays. A training loop that crops random pages then decodes each
            JPEG once: the demo detector's 240 synthetic pages (1.0 GB decoded) took 13 ms
            each to decode, 19% of its training step on one core.

    Raises:
        ValueError: Unknown split, malformed label rows (file, line, image_id, token).
        FileNotFoundError: A missing folder or CSV (with the script that makes it).
    """

    def __init__(self, data_dir: str, split: str = 'trainval', cv_index: int = 0,
                 split_dir: str = None, skip_unlabeled: bool = False, cache_bytes: int = 0):
        if split not in SPLITS:
            raise ValueError('unknown split {!r}: choose one of {}'.format(split, ', '.join(SPLITS)))
        check_data_dir(data_dir)
        self.data_dir = data_dir
        self.split = split
        self.image_dir = os.path.join(data_dir, 'test_images' if split == 'test' else 'train_images')
        if split == 'test':
            labels_path = os.path.join(data_dir, TEST_LABELS_CSV)
            ids = _test_ids(data_dir)
            rows = {}
            if os.path.isfile(labels_path):
                rows = {r[0]: r for r in read_labels_csv(labels_path)}
            self.labeled = bool(rows)
            records = [rows.get(i, (i, '', None)) for i in ids]
            source = labels_path
        else:
            if split == 'trainval':
                source = os.path.join(data_dir, 'train.csv')
                if not os.path.isfile(source):
                    raise FileNotFoundError('{} not found: is {} a Kaggle-layout folder? (see '
                                            'scripts/00_make_synthetic_dataset.py)'.format(
                                                source, data_dir))
            else:
                split_dir = split_dir or default_split_dir(data_dir)
                source = split_csv_path(split_dir, split, cv_index)
                if not os.path.isfile(source):
                    raise FileNotFoundError(
                        '{} not found: run scripts/01_split_train_val.py --data-dir {} first'
                        .format(source, data_dir))
            records = read_labels_csv(source)
            self.labeled = True
        self._ids, self._unicodes, self._bboxes = [], [], []
        for image_id, labels, line in records:
            unicodes, bboxes = parse_labels(labels, image_id=image_id, source=source, line=line)
            if skip_unlabeled and not unicodes:
                continue
            self._ids.append(image_id)
            self._unicodes.append(unicodes)
            self._bboxes.append(bboxes)
        self._images = ImageCache(cache_bytes, len(self._ids))

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list:
        """image_ids in dataset order."""
        return list(self._ids)

    @property
    def bboxes(self) -> list:
        """Per page ``(R, 4)`` float32 xyxy boxes, without loading images."""
        return self._bboxes

    @property
    def unicodes(self) -> list:
        """Per page lists of ``'U+XXXX'``, without loading images."""
        return self._unicodes

    def image_path(self, i: int) -> str:
        """Path of page ``i``'s image."""
        return os.path.join(self.image_dir, self._ids[i] + IMAGE_EXT)

    def check_images(self, indices=None) -> None:
        """Check that the images of pages ``indices`` (default: all) open, before a long run.

        Raises:
            ValueError: Every page whose image is missing or does not decode is named (the
                first few, and the count).
        """
        bad = []
        for i in (range(len(self)) if indices is None else indices):
            try:
                check_image(self.image_path(i))
            except (FileNotFoundError, ValueError) as e:
                bad.append(str(e))
        if bad:
            raise ValueError('{} of the {} page images cannot be read: {}{}'.format(
                len(bad), len(self), '; '.join(bad[:5]), ' ...' if len(bad) > 5 else ''))

    def get_example(self, i: int) -> dict:
        return {
            'image': self._images.load(i, self.image_path(i)),
            'bboxes': self._bboxes[i].copy(),
            'unicodes': list(self._unicodes[i]),
            'image_id': self._ids[i],
        }
