"""Pseudo labels: confident recognitions of test pages as extra classifier data (SPEC 5).

Layout written by :func:`make_pseudo_labels`::

    <out_dir>/char_images/<image_id>/<image_id>_<n>.png   crops, padding 0.2 as in script 02
    <out_dir>/pages/<image_id>.json                        per-page records (resume marker)
    <out_dir>/pseudo_labels.json                           all records, in test-page order
    <out_dir>/args.json

Records have the crop-index format of :mod:`kr.datasets.char_crop` plus
``detection_score`` and ``class_score``, so
``KuzushijiCharCropDataset(None, index_path='<out_dir>/pseudo_labels.json')`` reads them.
"""

import json
import logging
import os
import shutil

import cv2
import numpy as np

from kr import fileio
from kr.datasets.char_crop import CHAR_IMAGE_DIR
from kr.datasets.char_crop import crop_page
from kr.datasets.char_crop import PSEUDO_LABELS_JSON
from kr.datasets.kuzushiji import KuzushijiPageDataset
from kr.runs import start_run
from kr.submission import read_detections

logger = logging.getLogger(__name__)

#: Classifier probability a recognised character needs to become a pseudo label (the
#: original's prepare_pseudo_labels setting): the class threshold of the recognizer.
PSEUDO_LABEL_THRESHOLD = 0.9
#: Detector threshold of the pseudo-label pass: the detector family's own default.
PSEUDO_LABEL_DETECTION_THRESHOLD = 'default'
PAGES_DIR = 'pages'

def _write_page(root, image_id, image, characters):
    page_dir = os.path.join(CHAR_IMAGE_DIR, image_id)
    os.makedirs(os.path.join(root, page_dir), exist_ok=True)
    bboxes = np.array([c.bbox for c in characters], dtype=np.float32).reshape(-1, 4)
    crops, boxes = crop_page(image, bboxes)
    records = []
    for n, (c, crop, box) in enumerate(zip(characters, crops, boxes)):
        rel = '{}/{}_{:04d}.png'.format(page_dir.replace(os.sep, '/'), image_id, n)
        with fileio.atomic_path(os.path.join(root, rel)) as tmp:
            if not cv2.imwrite(tmp, crop[:, :, ::-1]):
                raise OSError('cannot write {}'.format(os.path.join(root, rel)))
        records.append({
            'image_path': rel, 'image_id': image_id,
            'original_bbox': list(c.bbox),
            'bbox': [c.bbox[0] - float(box[0]), c.bbox[1] - float(box[1]),
                     c.bbox[2] - float(box[0]), c.bbox[3] - float(box[1])],
            'unicode': c.unicode, 'detection_score': c.detection_score,
            'class_score': c.class_score,
        })
    # the page's JSON is written last: it marks the page as done for a resumed run
    fileio.write_json(os.path.join(root, PAGES_DIR, image_id + '.json'), records, indent=None)
    return records


def make_pseudo_labels(recognizer, data_dir: str, out_dir: str, restart: bool = False,
                       detections: str = None, run_record: dict = None, comm=None) -> dict:
    """Recognise the test pages and keep the confident characters as labelled crops.

    The characters kept are those the recognizer returns: its ``class_threshold`` is the
    pseudo-label threshold (:data:`PSEUDO_LABEL_THRESHOLD` in script 05). Pages already
    finished by an interrupted run (their ``pages/<id>.json`` exists) are skipped, and a
    page's crops have fixed names, so running again never duplicates a label.
    ``pseudo_labels.json`` is written last, atomically.

    Args:
        recognizer: A :class:`kr.inference.PageRecognizer`.
        data_dir: Kaggle-layout folder whose test pages are used.
        out_dir: Output folder.
        restart: Delete ``out_dir`` first instead of resuming.
        detections: A detection cache (``detection.csv`` of script 07 with the same
            detector) to reuse: pages found there skip the detector.
        run_record: Written as ``args.json``.
        comm: A ChainerMN communicator: the pages left are split over the ranks, which
            write their crops and page records into ``out_dir`` (a folder every rank
            sees); rank 0 writes ``pseudo_labels.json``, the other ranks return ``None``.

    Returns:
        dict: ``{'pages', 'pages_resumed', 'labels', 'threshold'}``.
    """
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)

    def barrier():
        if comm is not None:
            comm.mpi_comm.Barrier()

    pages = KuzushijiPageDataset(data_dir, 'test')
    cache = read_detections(detections) if detections else {}
    if restart and rank == 0 and os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    barrier()
    pages_dir = os.path.join(out_dir, PAGES_DIR)
    done = {os.path.splitext(n)[0] for n in (os.listdir(pages_dir) if os.path.isdir(pages_dir)
                                             else ()) if n.endswith('.json')}
    todo = [i for i, image_id in enumerate(pages.ids) if image_id not in done]
    pages.check_images(todo[rank::size])
    if rank == 0:
        start_run(out_dir, run_record)
        os.makedirs(pages_dir, exist_ok=True)
    barrier()
    if done:
        logger.info('resuming: %d of %d pages already done in %s', len(pages) - len(todo),
                    len(pages), out_dir)
    for image_id, image, chars in recognizer.recognize_dataset(
            pages, detections=cache, indices=todo[rank::size], desc='pseudo labels'):
        _write_page(out_dir, image_id, image, chars)
    barrier()
    if rank != 0:
        return None
    records = []
    for image_id in pages.ids:
        with open(os.path.join(out_dir, PAGES_DIR, image_id + '.json'), encoding='utf-8') as f:
            records.extend(json.load(f))
    fileio.write_json(os.path.join(out_dir, PSEUDO_LABELS_JSON), records, indent=None)
    summary = {'pages': len(pages), 'pages_resumed': len(pages) - len(todo),
               'labels': len(records), 'threshold': recognizer.class_threshold}
    logger.info('%d pseudo labels from %d pages in %s', len(records), len(pages), out_dir)
    return summary
