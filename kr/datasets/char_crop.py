"""Character crops for classifier training: export from pages (script 02) and datasets.

A crop is a square centred on a character box with side = longer box side x (1 + 2 x 0.2),
corners floored/ceiled to integers, cut from the page with the paper colour outside it
(SPEC section 2). Layout written by :func:`crop_characters`::

    <crop_dir>/char_images/<image_id>/<image_id>_<n>.png
    <crop_dir>/trainval.json            every labelled train page
    <crop_dir>/{train,val}-<k>.json     one pair per fold found in the split folder

Each index is a JSON list of records ``{"image_path"`` (relative to ``crop_dir``),
``"image_id"``, ``"original_bbox"`` (xyxy, page pixels), ``"bbox"`` (xyxy, crop pixels),
``"unicode"}``.
"""

import json
import logging
import multiprocessing
import os

import chainer
import cv2
import numpy as np

from kr import fileio
from kr.bbox import padded_square_boxes
from kr.bbox import round_boxes_outward
from kr.datasets.image import background_color
from kr.datasets.image import crop_with_fill
from kr.datasets.image import ImageCache
from kr.datasets.image import load_image
from kr.datasets.image import to_array
from kr.datasets.kuzushiji import KuzushijiPageDataset
from kr.datasets.labels import read_labels_csv
from kr.datasets.layout import default_split_dir
from kr.datasets.layout import split_csv_path
from kr.datasets.layout import split_folds
from kr.progress import progress

logger = logging.getLogger(__name__)

#: Margin around a character, as a fraction of its longer side (the original's crop script).
CROP_PAD_RATIO = 0.2
CHAR_IMAGE_DIR = 'char_images'
#: The crop index of the pseudo labels written by script 05 (read by the finetuning).
PSEUDO_LABELS_JSON = 'pseudo_labels.json'
CROP_SPLITS = ('trainval', 'train', 'val')


def crop_boxes(bboxes, pad_ratio: float = CROP_PAD_RATIO) -> np.ndarray:
    """Integer crop squares for character boxes.

    Args:
        bboxes: ``(R, 4)`` xyxy boxes in page pixels.
        pad_ratio: Margin per side as a fraction of the longer side.

    Returns:
        ``(R, 4)`` int64 xyxy crop boxes (max exclusive), at least 1 pixel on each side even
        for degenerate (zero-size) boxes; they may reach outside the page.
    """
    boxes = round_boxes_outward(padded_square_boxes(np.asarray(bboxes, np.float64), pad_ratio))
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    return boxes


def crop_page(image, bboxes, pad_ratio: float = CROP_PAD_RATIO):
    """Cut the padded crops of one page.

    Args:
        image: PIL image or ``(H, W, 3)`` uint8 RGB array.
        bboxes: ``(R, 4)`` xyxy character boxes in page pixels.
        pad_ratio: See :func:`crop_boxes`.

    Returns:
        tuple: list of R ``(h, w, 3)`` uint8 crops, and ``(R, 4)`` int64 crop boxes.
    """
    image = to_array(image)
    fill = background_color(image)
    boxes = crop_boxes(bboxes, pad_ratio)
    return [crop_with_fill(image, b, fill) for b in boxes], boxes


def boxes_outside(bboxes, width: int, height: int) -> np.ndarray:
    """Indices of the ``(R, 4)`` xyxy boxes that lie wholly outside a ``width x height``
    page (their crops would be nothing but the fill colour)."""
    b = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    return np.flatnonzero((b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= width)
                          | (b[:, 1] >= height))


def _crop_one_page(task):
    image_path, image_id, bboxes, unicodes, root = task
    image = load_image(image_path)
    outside = boxes_outside(bboxes, *image.size)
    if len(outside):
        i = int(outside[0])
        logger.warning('%s: %d box(es) lie outside the %d x %d page, e.g. %s at %s: their '
                       'crops are blank (check the labels)', image_id, len(outside),
                       image.size[0], image.size[1], unicodes[i],
                       [float(v) for v in bboxes[i]])
    crops, boxes = crop_page(image, bboxes)
    page_dir = os.path.join(CHAR_IMAGE_DIR, image_id)
    os.makedirs(os.path.join(root, page_dir), exist_ok=True)
    records = []
    for n, (crop, box, bbox, unicode) in enumerate(zip(crops, boxes, bboxes, unicodes)):
        rel = os.path.join(page_dir, '{}_{:04d}.png'.format(image_id, n))
        if not cv2.imwrite(os.path.join(root, rel), crop[:, :, ::-1]):
            raise OSError('cannot write {}'.format(os.path.join(root, rel)))
        records.append({
            'image_path': rel.replace(os.sep, '/'),
            'image_id': image_id,
            'original_bbox': [float(v) for v in bbox],
            'bbox': [float(bbox[0] - box[0]), float(bbox[1] - box[1]),
                     float(bbox[2] - box[0]), float(bbox[3] - box[1])],
            'unicode': unicode,
        })
    return image_id, records


def crop_characters(data_dir: str, out_dir: str, split_dir: str = None, workers: int = 2,
                    overwrite: bool = False, run_record: dict = None) -> dict:
    """Export the character crops of every labelled train page and the split indexes.

    The folder is built under a temporary name and renamed when complete, so an
    interrupted run leaves nothing behind. Pages with empty labels are skipped.

    Args:
        data_dir: Kaggle-layout folder.
        out_dir: Crop folder to create.
        split_dir: Fold CSVs of scripts/01_split_train_val.py (default ``<data_dir>-gsplit``);
            one ``train-<k>.json`` / ``val-<k>.json`` pair is written per fold found.
        workers: Processes cutting pages in parallel (1: in this process).
        overwrite: Replace an existing ``out_dir``.
        run_record: Written as ``args.json`` inside the folder (see :func:`kr.runs.run_record`).

    Returns:
        dict: ``{'pages', 'crops', 'indexes': {name: n_records}}``.

    Raises:
        FileNotFoundError: No fold CSVs in ``split_dir`` (run script 01 first), or a missing
            page image (named).
    """
    split_dir = split_dir or default_split_dir(data_dir)
    pages = KuzushijiPageDataset(data_dir, 'trainval', skip_unlabeled=True)
    folds = split_folds(split_dir)
    if not folds:
        raise FileNotFoundError('no fold CSVs (train-0.csv ...) in {}: run '
                                'scripts/01_split_train_val.py --data-dir {} first'.format(
                                    split_dir, data_dir))
    with fileio.atomic_directory(out_dir, overwrite=overwrite) as root:
        tasks = [(pages.image_path(i), pages.ids[i], pages.bboxes[i], pages.unicodes[i], root)
                 for i in range(len(pages))]
        records = {}
        if workers > 1 and len(tasks) > 1:
            with multiprocessing.Pool(workers) as pool:
                for image_id, recs in progress(pool.imap(_crop_one_page, tasks),
                                               total=len(tasks), desc='crop pages'):
                    records[image_id] = recs
        else:
            for task in progress(tasks, desc='crop pages'):
                image_id, recs = _crop_one_page(task)
                records[image_id] = recs
        indexes = {'trainval': [r for i in pages.ids for r in records[i]]}
        for k in folds:
            for split in ('train', 'val'):
                ids = [r[0] for r in read_labels_csv(split_csv_path(split_dir, split, k))]
                indexes['{}-{}'.format(split, k)] = [r for i in ids for r in records.get(i, [])]
        for name, recs in indexes.items():
            fileio.write_json(os.path.join(root, name + '.json'), recs, indent=None)
        summary = {'pages': len(pages), 'crops': len(indexes['trainval']),
                   'indexes': {name: len(recs) for name, recs in indexes.items()},
                   'pad_ratio': CROP_PAD_RATIO}
        if run_record is not None:
            fileio.write_json(os.path.join(root, 'args.json'), dict(run_record, summary=summary))
    logger.info('%d crops from %d pages written to %s', summary['crops'], summary['pages'], out_dir)
    return summary


def crop_index_path(crop_dir: str, split: str, cv_index: int = 0) -> str:
    """Path of a crop index: ``trainval.json`` or ``<split>-<cv_index>.json``."""
    if split not in CROP_SPLITS:
        raise ValueError('unknown split {!r}: choose one of {}'.format(split, ', '.join(CROP_SPLITS)))
    name = 'trainval' if split == 'trainval' else '{}-{}'.format(split, cv_index)
    return os.path.join(crop_dir, name + '.json')


class KuzushijiCharCropDataset(chainer.dataset.DatasetMixin):
    """Character crops written by :func:`crop_characters`.

    Each item is a dict: ``image`` (RGB PIL image of the padded crop), ``bbox`` (``(4,)``
    float32 xyxy character box in crop pixels), ``unicode`` (str), ``label`` (int32 class
    index; -1 when no mapping is given).

    Args:
        crop_dir: Folder written by scripts/02_crop_characters.py.
        split: ``'trainval'``, ``'train'`` or ``'val'``.
        cv_index: Fold for ``'train'`` / ``'val'``.
        mapping: :class:`~kr.datasets.KuzushijiUnicodeMapping` giving the labels.
        index_path: Read this index instead (e.g. ``pseudo_labels.json`` of script 05);
            its image paths are relative to its folder, and ``crop_dir``/``split`` are
            ignored.
        cache_bytes: Keep decoded crops in memory, up to this many bytes, when all of them
            are expected to fit (:class:`kr.datasets.image.ImageCache`); crops then come as
            read-only arrays. The demo classifier spent 10% of its step opening and decoding
            its crop files (about 7 KB decoded each).

    Raises:
        FileNotFoundError: The index is missing (run script 02).
        ValueError: Unknown split, or a unicode absent from ``mapping`` (named with the index
            file and record number).
    """

    def __init__(self, crop_dir: str, split: str = 'train', cv_index: int = 0, mapping=None,
                 index_path: str = None, cache_bytes: int = 0):
        if index_path is None:
            path = crop_index_path(crop_dir, split, cv_index)
            hint = 'run scripts/02_crop_characters.py (with the same --cv-index folds) first'
        else:
            path = index_path
            crop_dir = os.path.dirname(os.path.abspath(index_path))
            hint = 'is it an index written by script 02 or 05?'
        if not os.path.isfile(path):
            raise FileNotFoundError('{} not found: {}'.format(path, hint))
        with open(path, encoding='utf-8') as f:
            self.records = json.load(f)
        self.crop_dir = crop_dir
        self.index_path = path
        self._labels = np.full(len(self.records), -1, dtype=np.int32)
        self._images = ImageCache(cache_bytes, len(self.records))
        if mapping is not None:
            for n, rec in enumerate(self.records):
                if rec['unicode'] not in mapping:
                    raise ValueError('{} record {} ({}): unknown unicode {} not in {}'.format(
                        path, n, rec['image_path'], rec['unicode'], mapping.path))
                self._labels[n] = mapping.unicode_to_index(rec['unicode'])

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray:
        """``(N,)`` int32 class indices, without loading images."""
        return self._labels

    def get_example(self, i: int) -> dict:
        rec = self.records[i]
        return {
            'image': self._images.load(i, os.path.join(self.crop_dir, rec['image_path'])),
            'bbox': np.asarray(rec['bbox'], dtype=np.float32),
            'unicode': rec['unicode'],
            'label': self._labels[i],
        }
