import chainer
import numpy as np
import pytest

from kr.evaluation.detection_map import average_precision
from kr.evaluation.detection_map import DetectionMapEvaluator
from kr.evaluation.detection_map import eval_detection_voc


def _iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(iw, 0) * max(ih, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _brute_force_ap(pred_bboxes, pred_scores, gt_bboxes, threshold=0.5):
    """VOC AP of one class by the book: sequential matching, then the all-point area."""
    records = []
    n_pos = sum(len(g) for g in gt_bboxes)
    for img, (pb, ps, gb) in enumerate(zip(pred_bboxes, pred_scores, gt_bboxes)):
        used = [False] * len(gb)
        for k in sorted(range(len(pb)), key=lambda k: (-ps[k], k)):
            ious = [_iou(pb[k], g) for g in gb]
            tp = False
            if ious:
                best = int(np.argmax(ious))
                if ious[best] >= threshold and not used[best]:
                    used[best] = tp = True
            records.append((ps[k], tp))
    if n_pos == 0:
        return float('nan')
    records.sort(key=lambda r: -r[0])
    precisions, recalls = [], []
    tp_count = 0
    for rank, (_, tp) in enumerate(records, 1):
        tp_count += tp
        precisions.append(tp_count / rank)
        recalls.append(tp_count / n_pos)
    ap, previous_recall = 0.0, 0.0
    for k, r in enumerate(recalls):
        if r > previous_recall:
            ap += (r - previous_recall) * max(precisions[k:])
            previous_recall = r
    return ap


def _random_set(rng, n_images=6):
    preds, scores, gts = [], [], []
    for _ in range(n_images):
        n_gt = rng.randint(0, 8)
        xy = rng.uniform(0, 100, (n_gt, 2))
        gt = np.concatenate([xy, xy + rng.uniform(5, 20, (n_gt, 2))], axis=1)
        # Noisy copies of some ground truth (duplicates included) plus random boxes.
        copies = gt[rng.randint(0, max(n_gt, 1), rng.randint(0, 10))] if n_gt else gt[:0]
        copies = copies + rng.normal(0, 3, copies.shape)
        xy = rng.uniform(0, 100, (rng.randint(0, 4), 2))
        noise = np.concatenate([xy, xy + rng.uniform(5, 20, xy.shape)], axis=1)
        pred = np.concatenate([copies, noise]).astype(np.float32)
        preds.append(pred)
        scores.append(rng.uniform(size=len(pred)).astype(np.float32))
        gts.append(gt.astype(np.float32))
    return preds, scores, gts


def check_against_brute_force(xp):
    rng = np.random.RandomState(0)
    for _ in range(20):
        preds, scores, gts = _random_set(rng)
        result = eval_detection_voc([xp.asarray(p) for p in preds],
                                    [xp.asarray(s) for s in scores],
                                    [xp.asarray(g) for g in gts])
        expected = _brute_force_ap(preds, scores, gts)
        assert result['ap'].shape == (1,)
        assert result['map'] == pytest.approx(expected, abs=1e-12, nan_ok=True)


def test_against_brute_force():
    check_against_brute_force(np)


@pytest.mark.gpu
def test_against_brute_force_gpu():
    import cupy
    check_against_brute_force(cupy)


def test_hand_made():
    gt = [np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)]
    perfect = eval_detection_voc(gt, [np.array([0.9, 0.8])], gt)
    assert perfect['map'] == 1.0
    # A duplicate ranked first is a false positive: precision 1/2 at recall 1/2 ... .
    pred = [np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 0, 30, 10]], np.float32)]
    dup = eval_detection_voc(pred, [np.array([0.9, 0.8, 0.7])], gt)
    assert dup['map'] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    missing = eval_detection_voc([np.zeros((0, 4))], [np.zeros(0)], gt)
    assert missing['map'] == 0.0
    no_gt = eval_detection_voc(pred, [np.array([0.9, 0.8, 0.7])], [np.zeros((0, 4))])
    assert np.isnan(no_gt['map'])
    assert np.isnan(eval_detection_voc([], [], [])['map'])


def test_best_iou_matching_is_not_reassigned():
    # The detection's best box is taken, so it is a false positive even though it also
    # overlaps the second box by more than 0.5.
    gt = [np.array([[0, 0, 10, 10], [1, 0, 11, 10]], np.float32)]
    pred = [np.array([[0, 0, 10, 10], [0.2, 0, 10.2, 10]], np.float32)]
    result = eval_detection_voc(pred, [np.array([0.9, 0.8])], gt)
    assert result['map'] == pytest.approx(0.5)


def test_labels():
    gt = [np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)]
    pred = [np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)]
    result = eval_detection_voc(pred, [np.array([0.9, 0.8])], gt,
                                pred_labels=[np.array([0, 0])], gt_labels=[np.array([0, 1])])
    np.testing.assert_allclose(result['ap'], [1.0, 0.0])
    assert result['map'] == 0.5


def test_average_precision_edges():
    assert np.isnan(average_precision([], [], 0))
    assert average_precision([], [], 3) == 0.0
    assert average_precision([0.5, 0.4], [False, True], 1) == pytest.approx(0.5)


def test_length_mismatch():
    with pytest.raises(ValueError, match='images'):
        eval_detection_voc([np.zeros((0, 4))], [], [np.zeros((0, 4))])


class _Detector:
    def __init__(self):
        self.thresholds = []

    def detect(self, image, score_threshold=None):
        self.thresholds.append(score_threshold)
        return np.array([[0, 0, 10, 10]], np.float32), np.array([0.9], np.float32)


def test_evaluator_reports_validation_map():
    items = [{'image': np.zeros((16, 16, 3), np.uint8),
              'bboxes': np.array([[0, 0, 10, 10]], np.float32)},
             {'image': np.zeros((16, 16, 3), np.uint8),
              'bboxes': np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)}]
    iterator = chainer.iterators.SerialIterator(items, 1, repeat=False, shuffle=False)
    detector = _Detector()
    evaluator = DetectionMapEvaluator(iterator, chainer.Link(), detector=detector,
                                      score_threshold=0.05)
    for _ in range(2):  # the iterator is reset between evaluations
        result = evaluator()
        assert list(result) == ['validation/main/map']
        assert result['validation/main/map'] == pytest.approx(2 / 3)
    assert detector.thresholds == [0.05] * 4
