import numpy as np
import pytest

from kr.evaluation import detection_f1
from kr.evaluation import score_detections

GT = np.array([[0, 0, 10, 20], [20, 0, 30, 20], [40, 0, 50, 20]], dtype=np.float32)


def test_centre_strictly_inside_and_one_detection_per_box():
    pred = np.array([[1, 1, 9, 19],      # centre (5, 10): box 0
                     [2, 2, 8, 18],      # also box 0: a second box is a false positive
                     [10, 0, 30, 20],    # centre (20, 10) on box 1's edge: not inside
                     [22, 2, 28, 18]],   # box 1
                    dtype=np.float32)
    page = score_detections(pred, GT)
    assert (page.tp, page.fp, page.fn) == (2, 2, 1)
    assert page.match.tolist() == [0, 3, -1]


def test_totals_pages_and_empty_pages():
    result = detection_f1({'a': GT[:2] + 1, 'b': np.zeros((0, 4)), 'extra': GT},
                          {'a': GT, 'b': GT[:1]})
    assert (result['tp'], result['fp'], result['fn']) == (2, 0, 2)
    assert result['precision'] == 1.0 and result['recall'] == 0.5
    assert result['f1'] == pytest.approx(2 / 3)
    assert set(result['pages']) == {'a', 'b'}
    assert result['pages']['b'] == dict(tp=0, fp=0, fn=1, f1=0.0, precision=0.0, recall=0.0)


def test_a_page_without_detections_is_named():
    with pytest.raises(ValueError, match='no detections for 1 page.*: b'):
        detection_f1({'a': GT}, {'a': GT, 'b': GT})


def test_threshold_sweep_counts_centres_boxes_and_map():
    from kr.evaluation import threshold_sweep
    # a hit (0.9), a miss (0.6, centre outside every box), a hit (0.3)
    bboxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]], np.float32)
    scores = np.array([0.9, 0.6, 0.3], np.float32)
    gt = np.array([[1, 1, 9, 9], [21, 1, 29, 9], [40, 0, 45, 5]], np.float32)
    rows = threshold_sweep([(bboxes, scores)], [gt], (0.1, 0.5, 0.7, 0.95))
    assert [r['threshold'] for r in rows] == [0.1, 0.5, 0.7, 0.95]
    assert [r['per_page'] for r in rows] == [3, 2, 1, 0]
    # 0.1: 2 hits, 1 false, 1 missed; 0.5: 1, 1, 2; 0.7: 1, 0, 2; 0.95: nothing.
    assert rows[0]['centre'] == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert rows[1]['centre'] == pytest.approx((2 * 0.5 / 3 / (0.5 + 1 / 3), 0.5, 1 / 3))
    assert rows[2]['centre'] == pytest.approx((0.5, 1.0, 1 / 3))
    assert rows[3]['centre'] == (0.0, 0.0, 0.0)
    # IoU of the hits with their boxes is 0.64 >= 0.5: the same counts
    assert rows[0]['iou'] == rows[0]['centre']
    # mAP at 0.1: precision 1 at recall 1/3, 2/3 at recall 2/3 (VOC: all-point area)
    assert rows[0]['map'] == pytest.approx(1 / 3 + 1 / 3 * 2 / 3)
    with pytest.raises(ValueError, match='1 pages of detections for 2'):
        threshold_sweep([(bboxes, scores)], [gt, gt], (0.5,))


def test_iou_counts_takes_each_box_once():
    from kr.evaluation import iou_counts
    pred = np.array([[1, 1, 9, 9], [0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    assert iou_counts(pred, GT) == (1, 2, 2)
    assert iou_counts(np.zeros((0, 4)), GT) == (0, 0, 3)
