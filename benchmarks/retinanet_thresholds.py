#!/usr/bin/env python
"""Detection quality of a trained RetinaNet against its score threshold: the calibration of
the ``default`` and ``submission`` thresholds of ``kr.detector.DETECTORS['retinanet']``.

    python benchmarks/retinanet_thresholds.py results/retinanet-demo/model_final.npz \\
        --data-dir data/kuzushiji-recognition-synthetic [--split-dir DIR] [--pages 30] \
        [--nms-threshold 0.6]

Detects the fold's val pages once at a low threshold, then prints for each threshold the
detections per page, and F1 / precision / recall at IoU 0.5 (a box matched to one
character) and by the competition's rule with every label right (a box centre strictly
inside an unmatched character box, :func:`kr.evaluation.f1.score_page`), the VOC mAP, and
the seconds per page of detection.
"""

import argparse
import time

import kr  # noqa: F401  (before chainer: kr/_compat.py, Python 3.12+ and NumPy 2)
import numpy as np

from kr.bbox import iou_matrix
from kr.datasets import KuzushijiPageDataset
from kr.detector import load_detector
from kr.evaluation.detection_map import eval_detection_voc
from kr.evaluation.f1 import f1_from_counts
from kr.evaluation.f1 import score_page

#: Thresholds tried (probabilities).
THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6)


def _iou_counts(bboxes, gt):
    """TP, FP, FN of one page at IoU 0.5, detections taken by descending score."""
    if len(bboxes) == 0 or len(gt) == 0:
        return 0, len(bboxes), len(gt)
    iou = iou_matrix(np.asarray(bboxes, np.float64), np.asarray(gt, np.float64))
    used = np.zeros(len(gt), dtype=bool)
    tp = 0
    for row in iou:
        row = np.where(used, -1, row)
        j = int(row.argmax())
        if row[j] >= 0.5:
            used[j] = True
            tp += 1
    return tp, len(bboxes) - tp, len(gt) - tp


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('model', help='model_*.npz of a retinanet run (args.json beside it)')
    p.add_argument('--data-dir', required=True)
    p.add_argument('--split-dir')
    p.add_argument('--cv-index', type=int, default=0)
    p.add_argument('--pages', type=int, default=30, help='val pages used')
    p.add_argument('--nms-threshold', type=float, help="NMS IoU (default: the model's)")
    args = p.parse_args()
    model = load_detector(args.model)
    if args.nms_threshold is not None:
        model.nms_threshold = args.nms_threshold
    pages = KuzushijiPageDataset(args.data_dir, 'val', args.cv_index, args.split_dir)
    items = [pages[i] for i in range(min(args.pages, len(pages)))]
    found = []
    start = time.perf_counter()
    for item in items:
        found.append(model.detect(item['image'], score_threshold=min(THRESHOLDS)))
    seconds = (time.perf_counter() - start) / len(items)
    print('{} val pages, {} characters; NMS at {}; detection {:.2f} s per page'.format(
        len(items), sum(len(i['bboxes']) for i in items), model.nms_threshold, seconds))
    print('threshold  per-page   IoU0.5 F1 / P / R       centre F1 / P / R       mAP')
    for threshold in THRESHOLDS:
        iou_counts = np.zeros(3, dtype=np.int64)
        centre_counts = np.zeros(3, dtype=np.int64)
        kept = []
        for item, (bboxes, scores) in zip(items, found):
            keep = scores >= threshold
            bboxes, scores = bboxes[keep], scores[keep]
            kept.append((bboxes, scores))
            iou_counts += _iou_counts(bboxes, item['bboxes'])
            centres = (bboxes[:, :2] + bboxes[:, 2:]) / 2
            page = score_page(['c'] * len(bboxes), centres, ['c'] * len(item['bboxes']),
                              item['bboxes'])
            centre_counts += (page.tp, page.fp, page.fn)
        ap = eval_detection_voc([b for b, _ in kept], [s for _, s in kept],
                                [i['bboxes'] for i in items])['map']
        print('{:9.2f}  {:8.1f}   {:.3f} / {:.3f} / {:.3f}   {:.3f} / {:.3f} / {:.3f}   {:.3f}'
              .format(threshold, np.mean([len(b) for b, _ in kept]),
                      *f1_from_counts(*iou_counts), *f1_from_counts(*centre_counts), ap))


if __name__ == '__main__':
    main()
