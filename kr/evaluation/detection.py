"""Detection scores with the labels ignored: the competition's matching on boxes alone.

A detection counts when its box centre lies strictly inside a ground-truth box, each box
taking at most one detection, greedily as the competition scorer matches (SPEC section 7):
:func:`kr.evaluation.f1.score_page` with one label for everything. This is the figure that
says how much of the F1 the detector alone loses (a box missed here cannot be recognised).
:func:`threshold_sweep` gives it, with the IoU-0.5 counts and the mAP, for a range of score
thresholds (how the detector families' thresholds are calibrated:
``benchmarks/detector_thresholds.py``).
"""

import numpy as np

from kr.bbox import box_centers
from kr.bbox import iou_matrix
from kr.evaluation.detection_map import eval_detection_voc
from kr.evaluation.detection_map import IOU_THRESHOLD
from kr.evaluation.f1 import f1_from_counts
from kr.evaluation.f1 import score_page

#: The one label every box gets when labels are ignored.
_ANY = 'any'


def score_detections(pred_bboxes, gt_bboxes):
    """Detection counts of one page, labels ignored.

    Args:
        pred_bboxes: ``(P, 4)`` xyxy detections, in the order the matching visits them
            (highest score first, as the detectors return them).
        gt_bboxes: ``(G, 4)`` xyxy ground truth, same pixels.

    Returns:
        kr.evaluation.PageScore: TP, FP, FN and the matching.
    """
    pred_bboxes = np.asarray(pred_bboxes, dtype=np.float64).reshape(-1, 4)
    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
    return score_page([_ANY] * len(pred_bboxes), box_centers(pred_bboxes),
                      [_ANY] * len(gt_bboxes), gt_bboxes)


def detection_f1(pred_bboxes: dict, gt_bboxes: dict) -> dict:
    """Detection precision, recall and F1 over pages, labels ignored.

    Args:
        pred_bboxes: ``{image_id: (P, 4) xyxy}`` detections.
        gt_bboxes: ``{image_id: (G, 4) xyxy}`` ground truth; its pages are the ones scored.

    Returns:
        dict: ``f1``, ``precision``, ``recall``, ``tp``, ``fp``, ``fn`` over all pages, and
        ``pages``: ``{image_id: {tp, fp, fn, f1, precision, recall}}``.

    Raises:
        ValueError: A page of the ground truth without detections (an empty array is a page
            where nothing was found; a missing page is a mistake, named).
    """
    missing = [i for i in gt_bboxes if i not in pred_bboxes]
    if missing:
        raise ValueError('no detections for {} page(s) of the ground truth: {}'.format(
            len(missing), ', '.join(missing[:5]) + (' ...' if len(missing) > 5 else '')))
    pages, totals = {}, np.zeros(3, dtype=np.int64)
    for image_id, gt in gt_bboxes.items():
        page = score_detections(pred_bboxes[image_id], gt)
        f1, precision, recall = f1_from_counts(page.tp, page.fp, page.fn)
        pages[image_id] = dict(tp=page.tp, fp=page.fp, fn=page.fn, f1=f1,
                               precision=precision, recall=recall)
        totals += (page.tp, page.fp, page.fn)
    f1, precision, recall = f1_from_counts(*totals)
    return dict(f1=f1, precision=precision, recall=recall, tp=int(totals[0]),
                fp=int(totals[1]), fn=int(totals[2]), pages=pages)


def iou_counts(pred_bboxes, gt_bboxes, iou_threshold: float = IOU_THRESHOLD):
    """TP, FP, FN of one page by box overlap: detections, highest score first, each take
    the unmatched ground-truth box they overlap most if the IoU is at least
    ``iou_threshold`` (the VOC rule, labels ignored)."""
    pred_bboxes = np.asarray(pred_bboxes, dtype=np.float64).reshape(-1, 4)
    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
    if len(pred_bboxes) == 0 or len(gt_bboxes) == 0:
        return 0, len(pred_bboxes), len(gt_bboxes)
    iou = iou_matrix(pred_bboxes, gt_bboxes)
    used = np.zeros(len(gt_bboxes), dtype=bool)
    tp = 0
    for row in iou:
        row = np.where(used, -1, row)
        j = int(row.argmax())
        if row[j] >= iou_threshold:
            used[j] = True
            tp += 1
    return tp, len(pred_bboxes) - tp, len(gt_bboxes) - tp


def threshold_sweep(detections, gt_bboxes, thresholds):
    """Detection quality at each score threshold, from one detection pass per page.

    The calibration of a family's ``default`` and ``submission`` thresholds: detect each
    page once at the lowest threshold, then keep the boxes at or above each.

    Args:
        detections: Per page ``(bboxes (P, 4), scores (P,))``, highest score first.
        gt_bboxes: Per page ``(G, 4)`` ground truth, same pixels.
        thresholds: Probabilities to try.

    Returns:
        list of dicts, one per threshold: ``threshold``, ``per_page`` (mean detections),
        ``centre`` and ``iou``: ``(f1, precision, recall)`` by the competition's
        centre-in-box rule (:func:`score_detections`) and by IoU 0.5 (:func:`iou_counts`),
        and ``map`` (VOC, IoU 0.5) of the kept boxes.

    Raises:
        ValueError: Lists of different lengths.
    """
    if len(detections) != len(gt_bboxes):
        raise ValueError('{} pages of detections for {} of ground truth'.format(
            len(detections), len(gt_bboxes)))
    rows = []
    for threshold in thresholds:
        kept = []
        centre = np.zeros(3, dtype=np.int64)
        overlap = np.zeros(3, dtype=np.int64)
        for (bboxes, scores), gt in zip(detections, gt_bboxes):
            keep = np.asarray(scores) >= threshold
            bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)[keep]
            kept.append((bboxes, np.asarray(scores, dtype=np.float32)[keep]))
            page = score_detections(bboxes, gt)
            centre += (page.tp, page.fp, page.fn)
            overlap += iou_counts(bboxes, gt)
        rows.append(dict(
            threshold=float(threshold),
            per_page=float(np.mean([len(b) for b, _ in kept])) if kept else 0.0,
            centre=f1_from_counts(*centre), iou=f1_from_counts(*overlap),
            map=float(eval_detection_voc([b for b, _ in kept], [s for _, s in kept],
                                         list(gt_bboxes))['map'])))
    return rows
