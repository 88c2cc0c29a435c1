"""Writing Kaggle submissions (SPEC section 6) and the detection cache of the two-stage handoff.

A submission lists every test page exactly once, as ``image_id,labels`` with ``labels`` =
``"U+XXXX x y U+XXXX x y ..."`` (box centres in page pixels, rounded to integers; empty for
a page without characters). The detection cache (``detection.csv``: ``image_id,bboxes,
scores``) keeps the detector's boxes so that a new classifier is scored without running the
detector again, as in the second seed's detection -> classification handoff.
"""

import csv
import json
import logging
import os
import shutil

import numpy as np

from kr import fileio
from kr.datasets.kuzushiji import KuzushijiPageDataset
from kr.datasets.labels import read_labels_csv
from kr.evaluation import kuzushiji_f1
from kr.runs import start_run

logger = logging.getLogger(__name__)

#: Columns of a submission (the competition's ``sample_submission.csv``).
SUBMISSION_HEADER = ('image_id', 'labels')
#: Columns of the detection cache.
DETECTION_HEADER = ('image_id', 'bboxes', 'scores')


def round_half_up(values) -> np.ndarray:
    """Round to the nearest integer, halves upwards (``2.5 -> 3``, ``-2.5 -> -2``): int64."""
    return np.floor(np.asarray(values, dtype=np.float64) + 0.5).astype(np.int64)


def format_submission_labels(unicodes, centers) -> str:
    """``['U+3042', ...]`` and ``(R, 2)`` centres ``(x, y)`` -> ``"U+3042 12 34 ..."``."""
    points = round_half_up(np.asarray(centers, dtype=np.float64).reshape(-1, 2))
    if len(points) != len(unicodes):
        raise ValueError('{} unicodes for {} centres'.format(len(unicodes), len(points)))
    return ' '.join('{} {} {}'.format(u, x, y) for u, (x, y) in zip(unicodes, points))


def write_submission(path: str, labels: dict, image_ids) -> None:
    """Write a submission with every id of ``image_ids`` exactly once, in that order.

    The file is written under a temporary name and renamed when complete, so an
    interrupted run never leaves a half-written submission.

    Args:
        path: CSV to write.
        labels: ``{image_id: labels string}`` (see :func:`format_submission_labels`).
        image_ids: The order of the rows (the test pages in sample_submission.csv order).

    Raises:
        ValueError: An id of ``image_ids`` has no labels, ``labels`` holds ids outside
            ``image_ids``, or ``image_ids`` repeats an id (the message names them).
    """
    image_ids = list(image_ids)
    if len(set(image_ids)) != len(image_ids):
        seen, repeated = set(), []
        for i in image_ids:
            if i in seen:
                repeated.append(i)
            seen.add(i)
        raise ValueError('image ids repeated in the submission order: {}'.format(repeated[:5]))
    missing = [i for i in image_ids if i not in labels]
    if missing:
        raise ValueError('{} test pages have no result: {}'.format(len(missing), missing[:5]))
    extra = sorted(set(labels) - set(image_ids))
    if extra:
        raise ValueError('{} results are for pages outside the test set: {}'.format(
            len(extra), extra[:5]))
    with fileio.atomic_write(path, newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(SUBMISSION_HEADER)
        for image_id in image_ids:
            writer.writerow([image_id, labels[image_id]])


def _format_floats(values) -> str:
    # float32 values printed with the fewest digits that read back to the same float32
    return ' '.join(np.format_float_positional(np.float32(v), unique=True, trim='-')
                    for v in np.asarray(values).ravel())


def write_detections(path: str, detections: dict, image_ids=None) -> None:
    """Write the detection cache atomically.

    Args:
        path: CSV to write (``image_id,bboxes,scores``).
        detections: ``{image_id: (bboxes (R, 4) float32 xyxy page pixels, scores (R,))}``.
        image_ids: Row order (default: the dict's order).
    """
    image_ids = list(detections) if image_ids is None else list(image_ids)
    with fileio.atomic_write(path, newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(DETECTION_HEADER)
        for image_id in image_ids:
            bboxes, scores = detections[image_id]
            writer.writerow([image_id, _format_floats(bboxes), _format_floats(scores)])


def read_detections(path: str) -> dict:
    """Read a detection cache written by :func:`write_detections`.

    Returns:
        dict: ``{image_id: (bboxes (R, 4) float32, scores (R,) float32)}`` in file order.

    Raises:
        FileNotFoundError: ``path`` is missing.
        ValueError: A row is malformed (the message names the file, line and image_id).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError('detection cache not found: {}'.format(path))
    out = {}
    for image_id, row, line in _read_rows(path):
        try:
            bboxes = np.array(row['bboxes'].split(), dtype=np.float32).reshape(-1, 4)
            scores = np.array(row['scores'].split(), dtype=np.float32)
        except ValueError as e:
            raise ValueError('{}:{} image_id {}: malformed detections ({})'.format(
                path, line, image_id, e)) from None
        if len(bboxes) != len(scores):
            raise ValueError('{}:{} image_id {}: {} boxes but {} scores'.format(
                path, line, image_id, len(bboxes), len(scores)))
        out[image_id] = (bboxes, scores)
    return out


def _read_rows(path):
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        missing = [c for c in DETECTION_HEADER if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError('{}: missing column(s) {} (found {})'.format(
                path, ', '.join(missing), ', '.join(reader.fieldnames or [])))
        for row in reader:
            yield row['image_id'], row, reader.line_num


def read_submission(path: str) -> dict:
    """``{image_id: labels}`` of a submission CSV, in file order (ids checked unique)."""
    return {image_id: labels for image_id, labels, _ in read_labels_csv(path)}


def characters_to_submission_labels(characters) -> str:
    """``"U+XXXX x y ..."`` of a page's characters (objects with ``unicode`` and ``center``)."""
    return format_submission_labels([c.unicode for c in characters],
                                    np.array([c.center for c in characters],
                                             dtype=np.float64).reshape(-1, 2))


#: The detection cache written beside every submission.
DETECTIONS_CSV = 'detection.csv'
#: Per-page results of an unfinished run (what a resumed run skips), and the settings
#: they were made with.
PAGES_DIR = 'pages'
PAGES_SETTINGS = 'settings.json'


def _page_settings(recognizer, run_record) -> dict:
    """What decides a page's result: the models and the recognizer's settings."""
    record = run_record or {}
    models = {k: os.path.abspath(record[k]) for k in ('detector', 'classifier')
              if isinstance(record.get(k), str)}
    return dict(models, detection_threshold=float(recognizer.detection_threshold),
                class_threshold=float(recognizer.class_threshold), tta=bool(recognizer.tta))


def _finished_pages(pages_dir: str, settings: dict) -> dict:
    """The page results an interrupted run left in ``pages_dir``; it must have used the
    same settings."""
    path = os.path.join(pages_dir, PAGES_SETTINGS)
    if not os.path.isfile(path):  # killed before it wrote a page
        return {}
    with open(path, encoding='utf-8') as f:
        earlier = json.load(f)
    if earlier != settings:
        changed = sorted(k for k in set(earlier) | set(settings)
                         if earlier.get(k) != settings.get(k))
        raise ValueError('{} holds pages of an unfinished run with other settings ({}): pass '
                         '--restart to start over, or choose another --out'.format(
                             pages_dir, ', '.join(changed)))
    done = {}
    for name in os.listdir(pages_dir):
        if name.endswith('.json') and name != PAGES_SETTINGS:
            with open(os.path.join(pages_dir, name), encoding='utf-8') as f:
                done[name[:-len('.json')]] = json.load(f)
    return done


def make_submission(recognizer, data_dir: str, out_dir: str, detections: str = None,
                    run_record: dict = None, restart: bool = False, comm=None) -> dict:
    """Recognise every test page and write ``<out_dir>/submission.csv`` (SPEC section 6).

    Also written to ``out_dir``: ``args.json`` (``run_record``), ``detection.csv`` (every
    page's detections, for a later run's ``detections``), ``submission_info.json``
    (thresholds, models, versions and counts), and, when the test pages have ground truth
    (``test_labels.csv`` of a synthetic set), ``metrics.json`` (the competition F1) and
    ``pages.csv`` (per-page TP/FP/FN).

    Every test image is checked to open before the first page is recognised. Each page's
    result is kept in ``pages/<image_id>.json`` as it is done, so an interrupted run resumes
    where it stopped (with the same models and settings) and writes the same files as an
    uninterrupted one.

    Args:
        recognizer: A :class:`kr.inference.PageRecognizer` (anything with
            ``recognize_dataset``).
        data_dir: Kaggle-layout folder; its test pages are recognised in
            ``sample_submission.csv`` order.
        out_dir: Output folder (created).
        detections: A detection cache (``detection.csv`` of an earlier run with the same
            detector) to reuse: pages found there skip the detector.
        run_record: Written as ``args.json`` and recorded in ``submission_info.json``.
        restart: Forget the pages of an unfinished run in ``out_dir``.
        comm: A ChainerMN communicator: the pages left are split over the ranks (rank
            ``r`` takes every ``size``-th from ``r``), and rank 0 gathers the results and
            writes the same files as one process would (the other ranks write only their
            ``pages/<image_id>.json``, and return ``None``).

    Returns:
        dict: What ``submission_info.json`` holds (plus ``metrics`` when scored).

    Raises:
        ValueError: A test image that does not open (all such are named), or an unfinished
            run in ``out_dir`` with other settings.
    """
    pages = KuzushijiPageDataset(data_dir, 'test')
    cache = read_detections(detections) if detections else {}
    pages_dir = os.path.join(out_dir, PAGES_DIR)
    if restart and os.path.isdir(pages_dir):
        shutil.rmtree(pages_dir)
    settings = _page_settings(recognizer, run_record)
    done = _finished_pages(pages_dir, settings) if os.path.isdir(pages_dir) else {}
    todo = [i for i, image_id in enumerate(pages.ids) if image_id not in done]
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    mine = todo[rank::size]
    pages.check_images(mine)
    if rank == 0:
        start_run(out_dir, run_record)
        os.makedirs(pages_dir, exist_ok=True)
        fileio.write_json(os.path.join(pages_dir, PAGES_SETTINGS), settings)
    if comm is not None:
        comm.mpi_comm.Barrier()
    if done:
        logger.info('resuming: %d of %d pages already done in %s', len(done), len(pages),
                    pages_dir)
    results = {}
    for image_id, _, chars in recognizer.recognize_dataset(pages, detections=cache,
                                                           indices=mine, desc='submission'):
        bboxes, scores = cache[image_id]
        results[image_id] = {'labels': characters_to_submission_labels(chars),
                             'characters': len(chars), 'bboxes': _format_floats(bboxes),
                             'scores': _format_floats(scores)}
        fileio.write_json(os.path.join(pages_dir, image_id + '.json'), results[image_id],
                          indent=None)
    if comm is not None:
        gathered = comm.mpi_comm.gather(results, root=0)
        if rank != 0:
            return None
        for part in gathered:
            results.update(part)
    done.update(results)
    labels = {i: done[i]['labels'] for i in pages.ids}
    found = {i: (np.array(done[i]['bboxes'].split(), dtype=np.float32).reshape(-1, 4),
                 np.array(done[i]['scores'].split(), dtype=np.float32)) for i in pages.ids}
    path = os.path.join(out_dir, 'submission.csv')
    write_submission(path, labels, pages.ids)
    write_detections(os.path.join(out_dir, DETECTIONS_CSV), found, image_ids=pages.ids)
    info = dict(run_record or {})
    info.update({'submission': path, 'detections_reused': detections,
                 'pages': len(pages), 'pages_resumed': len(pages) - len(todo),
                 'characters': sum(done[i]['characters'] for i in pages.ids),
                 'detection_threshold': recognizer.detection_threshold,
                 'class_threshold': recognizer.class_threshold, 'tta': recognizer.tta})
    if pages.labeled:
        result = kuzushiji_f1(path, os.path.join(data_dir, 'test_labels.csv'))
        info['metrics'] = result.as_dict()
        fileio.write_json(os.path.join(out_dir, 'metrics.json'), result.as_dict())
        with fileio.atomic_write(os.path.join(out_dir, 'pages.csv'), newline='') as f:
            result.pages.to_csv(f, index=False)
    fileio.write_json(os.path.join(out_dir, 'submission_info.json'), info)
    shutil.rmtree(pages_dir)
    return info
