import numpy as np
import pytest

from kr.detector.faster_rcnn.calibrate import threshold_table


class _Fixed:
    """Three boxes: a hit (0.9), a miss (0.6, centre outside every box), a hit (0.3)."""

    def detect(self, image, score_threshold=None):
        bboxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]], np.float32)
        scores = np.array([0.9, 0.6, 0.3], np.float32)
        keep = scores >= score_threshold
        return bboxes[keep], scores[keep]


def test_threshold_table_counts_centres_in_boxes():
    page = {'image': None, 'bboxes': np.array([[1, 1, 9, 9], [21, 1, 29, 9], [40, 0, 45, 5]])}
    table = threshold_table(_Fixed(), [page], thresholds=(0.1, 0.5, 0.7, 0.95))
    assert [t for t, *_ in table] == [0.1, 0.5, 0.7, 0.95]
    # 0.1: 2 hits, 1 false, 1 missed; 0.5: 1, 1, 2; 0.7: 1, 0, 2; 0.95: nothing.
    assert table[0][1:] == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert table[1][1:] == pytest.approx((2 * 0.5 / 3 / (0.5 + 1 / 3), 0.5, 1 / 3))
    assert table[2][1:] == pytest.approx((0.5, 1.0, 1 / 3))
    assert table[3][1:] == (0.0, 0.0, 0.0)
