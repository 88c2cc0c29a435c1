"""Detection scores with the labels ignored: the competition's matching on boxes alone.

A detection counts when its box centre lies strictly inside a ground-truth box, each box
taking at most one detection, greedily as the competition scorer matches (SPEC section 7):
:func:`kr.evaluation.f1.score_page` with one label for everything. This is the figure that
says how much of the F1 the detector alone loses (a box missed here cannot be recognised).
"""

import numpy as np

from kr.bbox import box_centers
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
