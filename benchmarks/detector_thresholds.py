#!/usr/bin/env python
"""Detection quality of a trained detector (any family) against its score threshold: how
the ``default`` and ``submission`` thresholds of ``kr.detector.DETECTORS`` are calibrated.

    python benchmarks/detector_thresholds.py results/retinanet-demo/model_final.npz \\
        --data-dir data/kuzushiji-recognition-synthetic [--split-dir DIR] [--pages 30] \\
        [--nms-threshold 0.6]

Detects the fold's val pages once at the lowest threshold (one pass at the detector's
standard size), then prints for each threshold the detections per page, F1 / precision /
recall by IoU 0.5 and by the competition's rule with every label right (a box centre
strictly inside an unmatched character box), and the VOC mAP of the kept boxes
(:func:`kr.evaluation.threshold_sweep`); and the seconds per page of detection. The
``default`` threshold is the best IoU F1, the ``submission`` one the best centre F1 (the
classifier rejects few boxes).
"""

import argparse
import time

import kr  # noqa: F401  (before chainer: kr/_compat.py, Python 3.12+ and NumPy 2)

from kr.datasets import KuzushijiPageDataset
from kr.detector import load_detector
from kr.detector import ScaledDetector
from kr.evaluation import threshold_sweep

#: Thresholds tried (probabilities).
THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('model', help='model_*.npz of a detector run (args.json beside it)')
    p.add_argument('--data-dir', required=True, help='Kaggle-layout folder')
    p.add_argument('--split-dir', help='fold CSVs (default: <data-dir>-gsplit)')
    p.add_argument('--cv-index', type=int, default=0, help='fold (default: %(default)s)')
    p.add_argument('--pages', type=int, default=30,
                   help='first this many val pages (default: %(default)s)')
    p.add_argument('--nms-threshold', type=float, help="NMS IoU (default: the model's)")
    args = p.parse_args(argv)
    model = load_detector(args.model)
    if args.nms_threshold is not None:
        model.nms_threshold = args.nms_threshold
    detector = ScaledDetector(model)
    pages = KuzushijiPageDataset(args.data_dir, 'val', args.cv_index, args.split_dir)
    items = [pages[i] for i in range(min(args.pages, len(pages)))]
    if not items:
        p.error('fold {} of {} has no val pages'.format(args.cv_index, args.data_dir))
    start = time.perf_counter()
    found = [detector.detect(item['image'], score_threshold=min(THRESHOLDS))
             for item in items]
    seconds = (time.perf_counter() - start) / len(items)
    print('{} val pages, {} characters; NMS at {}; detection {:.2f} s per page'.format(
        len(items), sum(len(i['bboxes']) for i in items), model.nms_threshold, seconds))
    print('threshold  per-page   IoU0.5 F1 / P / R       centre F1 / P / R       mAP')
    for row in threshold_sweep(found, [i['bboxes'] for i in items], THRESHOLDS):
        print('{:9.2f}  {:8.1f}   {:.3f} / {:.3f} / {:.3f}   {:.3f} / {:.3f} / {:.3f}   {:.3f}'
              .format(row['threshold'], row['per_page'], *row['iou'], *row['centre'],
                      row['map']))


if __name__ == '__main__':
    main()
