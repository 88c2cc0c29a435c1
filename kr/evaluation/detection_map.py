"""PASCAL VOC average precision of detections, and a trainer extension that reports it.

VOC protocol (Everingham et al., "The PASCAL Visual Object Classes Challenge", IJCV 2010):
detections are taken by descending score; each is matched to the ground-truth box of its
image with the highest IoU, and is a true positive when that IoU reaches the threshold and
the box was not matched before (otherwise a false positive, a duplicate); AP is the area
under the precision-recall curve with precision made monotone ("all-point", VOC 2010+).
"""

import chainer
import numpy as np
from chainer.training import extensions

from kr.bbox import iou_matrix

#: IoU at which a detection counts as correct (VOC).
IOU_THRESHOLD = 0.5
#: Score threshold of the detections scored during training: low, so that the whole
#: precision-recall curve counts (chainercv's "evaluate" preset uses 0.05 as well).
EVAL_SCORE_THRESHOLD = 0.05


def _match_image(pred_bboxes, pred_scores, gt_bboxes, iou_threshold):
    """Order ``(P,)`` by descending score and true-positive flags ``(P,)`` of one image's
    detections of one class."""
    xp = chainer.backend.get_array_module(pred_bboxes)
    order = xp.argsort(-pred_scores, kind='stable')
    tp = xp.zeros(len(order), dtype=bool)
    if len(order) and len(gt_bboxes):
        iou = iou_matrix(pred_bboxes[order], gt_bboxes)
        best = iou.argmax(axis=1)
        candidates = xp.nonzero(iou.max(axis=1) >= iou_threshold)[0]
        # Of the detections whose best box is the same, only the highest-scoring one counts.
        _, first = xp.unique(best[candidates], return_index=True)
        tp[candidates[first]] = True
    return order, tp


def average_precision(scores, tp, n_positive: int) -> float:
    """All-point VOC AP of ranked detections.

    Args:
        scores: ``(P,)`` scores of all detections of a class (any order).
        tp: ``(P,)`` bool, True for true positives.
        n_positive: Number of ground-truth boxes.

    Returns:
        AP in ``[0, 1]``; NaN when ``n_positive`` is 0.
    """
    if n_positive == 0:
        return float('nan')
    scores = np.asarray(scores, dtype=np.float64)
    tp = np.asarray(tp, dtype=bool)
    order = np.argsort(-scores, kind='stable')
    tp_cum = np.cumsum(tp[order])
    fp_cum = np.cumsum(~tp[order])
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
    recall = tp_cum / n_positive
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def eval_detection_voc(pred_bboxes, pred_scores, gt_bboxes, pred_labels=None, gt_labels=None,
                       iou_threshold: float = IOU_THRESHOLD) -> dict:
    """VOC AP per class and their mean over a set of images.

    Args:
        pred_bboxes: Per image ``(P_i, 4)`` float xyxy detections (NumPy or CuPy).
        pred_scores: Per image ``(P_i,)`` scores.
        gt_bboxes: Per image ``(G_i, 4)`` float xyxy ground truth, same units.
        pred_labels: Per image ``(P_i,)`` int classes (``None``: all class 0).
        gt_labels: Per image ``(G_i,)`` int classes (``None``: all class 0).
        iou_threshold: IoU of a true positive.

    Returns:
        dict: ``ap`` ``(n_class,)`` float64 (NaN for a class without ground truth) and
        ``map`` (their NaN-ignoring mean; NaN when no class has ground truth).

    Raises:
        ValueError: The per-image lists differ in length.
    """
    n_images = len(gt_bboxes)
    if len(pred_bboxes) != n_images or len(pred_scores) != n_images:
        raise ValueError('got {} images of detections ({} of scores) for {} of ground truth'
                         .format(len(pred_bboxes), len(pred_scores), n_images))
    cpu = chainer.backend.CpuDevice()

    def _labels(labels, boxes):
        if labels is None:
            return [np.zeros(len(b), dtype=np.int32) for b in boxes]
        return [np.asarray(cpu.send(lab), dtype=np.int32).reshape(-1) for lab in labels]
    pred_labels = _labels(pred_labels, pred_bboxes)
    gt_labels = _labels(gt_labels, gt_bboxes)
    n_class = 1 + max([int(lab.max()) for lab in pred_labels + gt_labels if len(lab)] + [0])
    scores = [[] for _ in range(n_class)]
    tps = [[] for _ in range(n_class)]
    n_positive = np.zeros(n_class, dtype=np.int64)
    for pb, ps, pl, gb, gl in zip(pred_bboxes, pred_scores, pred_labels, gt_bboxes, gt_labels):
        xp = chainer.backend.get_array_module(pb)
        pb = xp.asarray(pb, dtype=np.float64).reshape(-1, 4)
        ps = xp.asarray(ps, dtype=np.float64).reshape(-1)
        gb = xp.asarray(gb, dtype=np.float64).reshape(-1, 4)
        n_positive += np.bincount(gl, minlength=n_class)
        for c in np.unique(np.concatenate([pl, gl])):
            p_sel, g_sel = xp.asarray(pl == c), xp.asarray(gl == c)
            order, tp = _match_image(pb[p_sel], ps[p_sel], gb[g_sel], iou_threshold)
            scores[c].append(cpu.send(ps[p_sel][order]))
            tps[c].append(cpu.send(tp))
    ap = np.array([
        average_precision(np.concatenate(scores[c]) if scores[c] else np.zeros(0),
                          np.concatenate(tps[c]) if tps[c] else np.zeros(0, dtype=bool),
                          int(n_positive[c]))
        for c in range(n_class)])
    valid = ~np.isnan(ap)
    return {'ap': ap, 'map': float(ap[valid].mean()) if valid.any() else float('nan')}


class DetectionMapEvaluator(extensions.Evaluator):
    """Trainer extension: VOC mAP of a detector on held-out images.

    Runs ``detector.detect(image, score_threshold=...)`` on every item of the iterator's
    dataset (dicts with ``image`` and ``bboxes`` ``(R, 4)`` xyxy in that image's pixels)
    and reports the mAP as ``<report_name>/main/map`` (``validation/main/map`` by default,
    whatever name the extension is registered under).

    Args:
        iterator: Non-repeating iterator over the held-out items.
        target: The model (a Link; it is what ``main`` refers to).
        detector: Anything with ``detect(image, score_threshold=...)`` (default: ``target``),
            e.g. ``kr.detector.tta.ScaledDetector(model, None)`` for ready-made crops.
        score_threshold: Threshold of the scored detections.
        iou_threshold: IoU of a true positive.
        report_name: Prefix of the reported key.
        comm: A ChainerMN communicator: each rank detects on its own items and the mAP is
            computed from everyone's detections, gathered in rank order (averaging the
            ranks' mAPs would be wrong: AP is not a mean over images).
    """

    trigger = 1, 'epoch'
    default_name = 'validation_map'
    priority = chainer.training.PRIORITY_WRITER

    def __init__(self, iterator, target, detector=None,
                 score_threshold: float = EVAL_SCORE_THRESHOLD,
                 iou_threshold: float = IOU_THRESHOLD, report_name: str = 'validation',
                 comm=None):
        super().__init__(iterator, target)
        self.comm = comm
        self.detector = target if detector is None else detector
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.report_name = report_name

    def evaluate(self):
        iterator = self._iterators['main']
        iterator.reset()
        pred_bboxes, pred_scores, gt_bboxes = [], [], []
        for batch in iterator:
            for item in batch:
                bboxes, scores = self.detector.detect(item['image'],
                                                      score_threshold=self.score_threshold)
                pred_bboxes.append(bboxes)
                pred_scores.append(scores)
                gt_bboxes.append(np.asarray(item['bboxes'], dtype=np.float32).reshape(-1, 4))
        if self.comm is not None:
            parts = self.comm.mpi_comm.allgather((pred_bboxes, pred_scores, gt_bboxes))
            pred_bboxes, pred_scores, gt_bboxes = (
                [a for part in parts for a in part[k]] for k in range(3))
        result = eval_detection_voc(pred_bboxes, pred_scores, gt_bboxes,
                                    iou_threshold=self.iou_threshold)
        return {'{}/main/map'.format(self.report_name): result['map']}
