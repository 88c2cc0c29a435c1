"""The Kuzushiji Recognition competition metric: micro-averaged F1 over character points.

A submission lists, per page, predicted characters as ``U+XXXX x y`` triples (a point in page
pixels); the solution lists ground-truth characters as ``U+XXXX x y w h`` quintuples (a box
in page pixels, ``(x, y)`` its top-left corner). This module reproduces the behaviour of the
competition's public Python scorer, number for number:

* per page, the ground-truth boxes are taken in the order they are written; each one takes
  the lowest-index still-unused prediction with exactly the same label string whose point
  lies strictly inside the box (``x1 < x < x2 and y1 < y < y2`` with ``x2 = x + w`` and
  ``y2 = y + h`` in float64; a point on an edge is outside), scoring a TP, else an FN; every
  prediction left unused afterwards is an FP (so duplicates are FPs);
* TP/FP/FN are summed over pages and ``P = TP / (TP + FP)``, ``R = TP / (TP + FN)``,
  ``F1 = (2 * P * R) / (P + R)``, evaluated with exactly these operations so the float
  matches the public scorer to the last bit; the score is 0 when a denominator is 0.

Deliberate differences from the public scorer, none of which changes a score it computes:
pages are aligned by ``image_id`` (any order) instead of requiring the same row order, ids on
one side only or duplicated ids raise :class:`ValueError`, labels are split on any run of
whitespace, and malformed label strings raise on either side (the public scorer skipped the
check when the other side of the page was empty).
"""

import dataclasses
import logging
import os
from typing import List, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from kr.datasets.labels import describe_place
from kr.datasets.labels import UNICODE_PATTERN
from kr.datasets.labels import split_label_groups

logger = logging.getLogger(__name__)

#: Tokens per submission character: ``U+XXXX x y``.
SUBMISSION_TOKENS = 3
#: Tokens per solution character: ``U+XXXX x y w h``.
SOLUTION_TOKENS = 5
#: Column names of both tables (Kaggle's ``sample_submission.csv`` / ``train.csv``).
ID_COLUMN = 'image_id'
LABELS_COLUMN = 'labels'
#: Column names used by the competition's first release, accepted and renamed on reading.
LEGACY_COLUMNS = {'rowId': ID_COLUMN, 'PredictionString': LABELS_COLUMN}
#: How many offending ids an error message lists.
MAX_IDS_IN_ERROR = 5

TableLike = Union[pd.DataFrame, str, os.PathLike]


def _is_missing(labels) -> bool:
    """True for ``None`` and pandas/NumPy missing-value scalars (NaN, ``pd.NA``)."""
    if labels is None:
        return True
    try:
        return bool(pd.isna(labels))
    except (TypeError, ValueError):  # not a scalar
        return False


def _parse(labels, n_tokens: int, image_id: str, source: str) -> Tuple[List[str], np.ndarray]:
    """Label strings and float64 ``(N, n_tokens - 1)`` numbers of a labels field."""
    if not isinstance(labels, str) and _is_missing(labels):
        labels = ''
    tokens, values = split_label_groups(labels, n_tokens, describe_place(source, None, image_id))
    return tokens[0::n_tokens], values


def _suspicious_tokens(image_id: str, unicodes, points) -> list:
    """Predictions the public scorer takes as written but that can never match: a class
    token that is not ``U+XXXX`` in upper case (it compares strings), or a point that is not
    finite (never strictly inside a box). One description per prediction."""
    out = []
    for unicode, point in zip(unicodes, points):
        if not UNICODE_PATTERN.match(unicode):
            out.append('page {!r}: {!r} is not a code like U+304A'.format(image_id, unicode))
        elif not np.isfinite(point).all():
            out.append('page {!r}: {} at ({}, {})'.format(image_id, unicode, *point))
    return out


def parse_submission_labels(labels: str, image_id: str = None,
                            source: str = None) -> Tuple[List[str], np.ndarray]:
    """Parse a submission labels field ``"U+XXXX x y U+XXXX x y ..."``.

    Args:
        labels: The field. Empty, whitespace-only, ``None`` or NaN means no characters.
            Tokens are separated by any run of whitespace; coordinates are parsed with
            :func:`float` (``12``, ``12.5`` and ``1e3`` are all accepted).
        image_id: Page id, named in error messages.
        source: File (or table) the field comes from, named in error messages.

    Returns:
        tuple: ``(unicodes, points)``: ``unicodes`` is a list of ``N`` label strings in the
        order written; ``points`` is float64 ``(N, 2)`` as ``(x, y)`` in page pixels.

    Raises:
        ValueError: The number of tokens is not a multiple of 3, or a coordinate is not a
            number. The message names ``source``, ``image_id`` and the token.
    """
    return _parse(labels, SUBMISSION_TOKENS, image_id, source)


def parse_solution_labels(labels: str, image_id: str = None,
                          source: str = None) -> Tuple[List[str], np.ndarray]:
    """Parse a solution labels field ``"U+XXXX x y w h U+XXXX x y w h ..."``.

    Args:
        labels: The field. Empty, whitespace-only, ``None`` or NaN means no characters.
            Tokens are separated by any run of whitespace; numbers are parsed with
            :func:`float`.
        image_id: Page id, named in error messages.
        source: File (or table) the field comes from, named in error messages.

    Returns:
        tuple: ``(unicodes, boxes)``: ``unicodes`` is a list of ``N`` label strings in the
        order written; ``boxes`` is float64 ``(N, 4)`` as ``(x1, y1, x2, y2)`` in page pixels
        with ``x2 = x + w`` and ``y2 = y + h`` computed in float64, as the public scorer does.

    Raises:
        ValueError: The number of tokens is not a multiple of 5, or a number is not a
            number. The message names ``source``, ``image_id`` and the token.
    """
    unicodes, xywh = _parse(labels, SOLUTION_TOKENS, image_id, source)
    boxes = np.empty((len(xywh), 4), dtype=np.float64)
    boxes[:, :2] = xywh[:, :2]
    boxes[:, 2:] = xywh[:, :2] + xywh[:, 2:]
    return unicodes, boxes


@dataclasses.dataclass
class PageScore:
    """Result of scoring one page.

    Attributes:
        tp: Ground-truth boxes matched by a prediction.
        fp: Predictions left unmatched.
        fn: Ground-truth boxes left unmatched.
        match: int64 ``(N_gt,)``: for each ground-truth box (in the solution's order) the
            index of the prediction it took (in the submission's order), or -1.
    """

    tp: int
    fp: int
    fn: int
    match: np.ndarray


def score_page(pred_unicodes: Sequence[str], pred_points: np.ndarray,
               gt_unicodes: Sequence[str], gt_boxes: np.ndarray) -> PageScore:
    """Match one page's predictions to its ground truth as the competition scorer does.

    Ground-truth boxes are visited in order; each takes the lowest-index unused prediction
    with the same label string whose point lies strictly inside it (a point on an edge does
    not count). Same-label pairs come from one broadcast comparison of label codes and the
    point-in-box test is vectorised over those pairs; only the greedy pass over the
    remaining candidate pairs (about one per ground-truth box) is a Python loop.

    Args:
        pred_unicodes: ``N_pred`` predicted label strings.
        pred_points: float64 ``(N_pred, 2)`` predicted points ``(x, y)`` in page pixels.
        gt_unicodes: ``N_gt`` ground-truth label strings.
        gt_boxes: float64 ``(N_gt, 4)`` ground-truth boxes ``(x1, y1, x2, y2)`` in page pixels.

    Returns:
        PageScore: TP/FP/FN counts and the ground-truth -> prediction matching.

    Raises:
        ValueError: Array shapes do not match the label lists.
    """
    n_pred, n_gt = len(pred_unicodes), len(gt_unicodes)
    pred_points = np.asarray(pred_points, dtype=np.float64)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64)
    if n_pred == 0 and pred_points.size == 0:
        pred_points = pred_points.reshape(0, 2)
    if n_gt == 0 and gt_boxes.size == 0:
        gt_boxes = gt_boxes.reshape(0, 4)
    if pred_points.shape != (n_pred, 2):
        raise ValueError('pred_points must have shape ({}, 2), got {}'.format(
            n_pred, pred_points.shape))
    if gt_boxes.shape != (n_gt, 4):
        raise ValueError('gt_boxes must have shape ({}, 4), got {}'.format(
            n_gt, gt_boxes.shape))
    match = np.full(n_gt, -1, dtype=np.int64)
    if n_pred == 0 or n_gt == 0:
        return PageScore(tp=0, fp=n_pred, fn=n_gt, match=match)

    # Labels become small integers so that the (N_gt, N_pred) comparison is numeric.
    codes = {}
    gt_codes = np.array([codes.setdefault(u, len(codes)) for u in gt_unicodes], dtype=np.int64)
    pred_codes = np.array([codes.get(u, -1) for u in pred_unicodes], dtype=np.int64)
    # Same-label pairs first (few), then the strict point-in-box test on those pairs only.
    # np.nonzero returns pairs in row-major order: by ground truth, then by prediction
    # index, which is exactly the order in which the greedy scorer tries them.
    gt_index, pred_index = np.nonzero(gt_codes[:, None] == pred_codes[None, :])
    box = gt_boxes[gt_index]
    point = pred_points[pred_index]
    inside = ((box[:, 0] < point[:, 0]) & (box[:, 2] > point[:, 0])
              & (box[:, 1] < point[:, 1]) & (box[:, 3] > point[:, 1]))
    gt_index = gt_index[inside].tolist()
    pred_index = pred_index[inside].tolist()
    used = bytearray(n_pred)
    match_list = [-1] * n_gt
    for g, p in zip(gt_index, pred_index):
        if match_list[g] < 0 and not used[p]:
            match_list[g] = p
            used[p] = 1
    match[:] = match_list
    tp = int(np.count_nonzero(match >= 0))
    return PageScore(tp=tp, fp=n_pred - tp, fn=n_gt - tp, match=match)


def f1_from_counts(tp: int, fp: int, fn: int) -> Tuple[float, float, float]:
    """Precision, recall and F1 from totals, with the public scorer's exact float operations.

    Args:
        tp: True positives summed over pages.
        fp: False positives summed over pages.
        fn: False negatives summed over pages.

    Returns:
        tuple: ``(f1, precision, recall)`` as Python floats. All three are 0.0 when
        ``tp + fp == 0`` or ``tp + fn == 0``; F1 is 0.0 when precision or recall is 0.
    """
    tp, fp, fn = int(tp), int(fp), int(fn)
    if tp + fp == 0 or tp + fn == 0:
        return 0.0, 0.0, 0.0
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    if precision > 0 and recall > 0:
        f1 = (2 * precision * recall) / (precision + recall)
    else:
        f1 = 0.0
    return float(f1), float(precision), float(recall)


@dataclasses.dataclass
class F1Result:
    """Score of a submission against a solution.

    Attributes:
        f1: Micro F1 over all pages (the competition score).
        precision: ``tp / (tp + fp)`` (0.0 when undefined).
        recall: ``tp / (tp + fn)`` (0.0 when undefined).
        tp: True positives over all pages.
        fp: False positives over all pages.
        fn: False negatives over all pages.
        pages: Per-page counts, columns ``image_id, tp, fp, fn`` (int64) in the solution's
            row order.
    """

    f1: float
    precision: float
    recall: float
    tp: int
    fp: int
    fn: int
    pages: pd.DataFrame = dataclasses.field(repr=False)

    def as_dict(self) -> dict:
        """The six numbers: ``f1, precision, recall, tp, fp, fn``."""
        return {'f1': self.f1, 'precision': self.precision, 'recall': self.recall,
                'tp': self.tp, 'fp': self.fp, 'fn': self.fn}


def _normalize_columns(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Rename legacy Kaggle columns and check that ``image_id`` and ``labels`` exist."""
    rename = {old: new for old, new in LEGACY_COLUMNS.items()
              if old in df.columns and new not in df.columns}
    if rename:
        df = df.rename(columns=rename)
    missing = [c for c in (ID_COLUMN, LABELS_COLUMN) if c not in df.columns]
    if missing:
        raise ValueError('{}: missing column(s) {}; columns found: {} (expected {!r} and {!r}, '
                         'or the old names {!r} and {!r})'.format(
                             source, missing, list(df.columns), ID_COLUMN, LABELS_COLUMN,
                             'rowId', 'PredictionString'))
    return df


def read_label_table(path: Union[str, os.PathLike]) -> pd.DataFrame:
    """Read a submission or solution CSV (``image_id,labels``) without mangling any value.

    Every column is read as a string with pandas' default NA markers switched off, so an id
    such as ``0001`` or a label ``NA`` stays as written and an empty field is ``''``. The
    old Kaggle column names ``rowId`` / ``PredictionString`` are renamed.

    Args:
        path: CSV file.

    Returns:
        pandas.DataFrame: The table, with columns ``image_id`` and ``labels`` (plus any
        other columns of the file).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is empty or lacks the two columns (the message lists the
            columns found).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError('labels CSV not found: {}'.format(path))
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError('{}: the file is empty (expected a header {},{})'.format(
            path, ID_COLUMN, LABELS_COLUMN)) from None
    except pd.errors.ParserError as e:
        raise ValueError('{}: not a valid CSV: {}'.format(path, e)) from None
    return _normalize_columns(df, path)


def _as_table(table: TableLike, what: str) -> Tuple[pd.DataFrame, str]:
    """Read ``table`` when it is a path; return it with a name for error messages."""
    if isinstance(table, pd.DataFrame):
        source = '{} table'.format(what)
        return _normalize_columns(table, source), source
    if isinstance(table, (str, os.PathLike)):
        source = os.fspath(table)
        return read_label_table(source), source
    raise TypeError('{} must be a pandas DataFrame or a CSV path, got {}'.format(
        what, type(table).__name__))


def _ids(df: pd.DataFrame, source: str) -> List[str]:
    """The table's image ids as strings, checked for duplicates."""
    ids = [str(i) for i in df[ID_COLUMN].tolist()]
    seen, duplicated = set(), []
    for i in ids:
        if i in seen and i not in duplicated:
            duplicated.append(i)
        seen.add(i)
    if duplicated:
        raise ValueError('{}: {} image_id(s) appear more than once: {}'.format(
            source, len(duplicated), _list_ids(duplicated)))
    return ids


def _list_ids(ids: List[str]) -> str:
    """First few ids of a list, for error messages."""
    shown = ', '.join(repr(i) for i in ids[:MAX_IDS_IN_ERROR])
    if len(ids) > MAX_IDS_IN_ERROR:
        shown += ', ... ({} more)'.format(len(ids) - MAX_IDS_IN_ERROR)
    return shown


def kuzushiji_f1(submission: TableLike, solution: TableLike) -> F1Result:
    """Score a submission against a solution with the competition's F1 metric.

    Pages are aligned by ``image_id``; the two tables may list them in any order but must
    list the same set of ids, each once.

    Args:
        submission: Table (or CSV path) with columns ``image_id`` and ``labels``
            (``U+XXXX x y`` triples, possibly empty).
        solution: Table (or CSV path) with columns ``image_id`` and ``labels``
            (``U+XXXX x y w h`` quintuples, possibly empty).

    Returns:
        F1Result: The score, its parts, and the per-page counts in the solution's order.

    Raises:
        FileNotFoundError: A CSV path does not exist.
        ValueError: Missing columns, duplicated ids, ids on one side only, or malformed
            labels (the message names the file, the image id and the token).
    """
    sub_df, sub_source = _as_table(submission, 'submission')
    sol_df, sol_source = _as_table(solution, 'solution')
    sub_ids = _ids(sub_df, sub_source)
    sol_ids = _ids(sol_df, sol_source)
    sub_labels = dict(zip(sub_ids, sub_df[LABELS_COLUMN].tolist()))
    only_sol = [i for i in sol_ids if i not in sub_labels]
    sol_set = set(sol_ids)
    only_sub = [i for i in sub_ids if i not in sol_set]
    if only_sol or only_sub:
        problems = []
        if only_sol:
            problems.append('{} image_id(s) in the solution ({}) are missing from the '
                            'submission ({}): {}'.format(len(only_sol), sol_source, sub_source,
                                                         _list_ids(only_sol)))
        if only_sub:
            problems.append('{} image_id(s) in the submission ({}) are not in the '
                            'solution ({}): {}'.format(len(only_sub), sub_source, sol_source,
                                                       _list_ids(only_sub)))
        raise ValueError('; '.join(problems))

    n = len(sol_ids)
    counts = np.zeros((n, 3), dtype=np.int64)
    suspicious = []
    for k, (image_id, gt_labels) in enumerate(zip(sol_ids, sol_df[LABELS_COLUMN].tolist())):
        pred_unicodes, pred_points = parse_submission_labels(
            sub_labels[image_id], image_id=image_id, source=sub_source)
        gt_unicodes, gt_boxes = parse_solution_labels(
            gt_labels, image_id=image_id, source=sol_source)
        suspicious += _suspicious_tokens(image_id, pred_unicodes, pred_points)
        page = score_page(pred_unicodes, pred_points, gt_unicodes, gt_boxes)
        counts[k] = (page.tp, page.fp, page.fn)
    if suspicious:
        logger.warning('%s: %d prediction(s) can never match a character (scored as the public '
                       'scorer does, as false positives): %s%s', sub_source, len(suspicious),
                       '; '.join(suspicious[:MAX_IDS_IN_ERROR]),
                       ' ...' if len(suspicious) > MAX_IDS_IN_ERROR else '')

    tp, fp, fn = (int(v) for v in counts.sum(axis=0))
    f1, precision, recall = f1_from_counts(tp, fp, fn)
    pages = pd.DataFrame({ID_COLUMN: pd.Series(sol_ids, dtype=object),
                          'tp': counts[:, 0], 'fp': counts[:, 1], 'fn': counts[:, 2]})
    logger.info('scored %d pages: tp=%d fp=%d fn=%d precision=%.6f recall=%.6f f1=%.6f',
                n, tp, fp, fn, precision, recall, f1)
    return F1Result(f1=f1, precision=precision, recall=recall, tp=tp, fp=fp, fn=fn, pages=pages)
