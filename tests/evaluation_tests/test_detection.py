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
