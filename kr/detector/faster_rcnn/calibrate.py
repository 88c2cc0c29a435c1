"""Choose detection thresholds: the detection F1 of a trained detector over thresholds.

    python -m kr.detector.faster_rcnn.calibrate RUN/model_final.npz \\
        --data-dir data/kuzushiji-recognition-synthetic --pages 20

Detects each val page of the fold once (at the lowest threshold) and prints, for each
threshold, the label-free competition F1 of the boxes' centres (a centre strictly inside
an unmatched ground-truth box is a hit: :func:`kr.evaluation.f1.score_page` with one label
for every character), its precision and recall. This is how the ``default`` and
``submission`` thresholds of ``DETECTORS['faster_rcnn']`` were chosen (the model's module
docstring says which run). Works for a detector of any family.
"""

import argparse

import numpy as np

from kr.datasets.kuzushiji import KuzushijiPageDataset
from kr.evaluation.f1 import f1_from_counts
from kr.evaluation.f1 import score_page

#: Thresholds tried.
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def threshold_table(detector, pages, thresholds=THRESHOLDS):
    """Detection F1, precision and recall at each threshold.

    Args:
        detector: Anything with ``detect(image, score_threshold=...)``.
        pages: Items with ``image`` and ``bboxes`` (page pixels).
        thresholds: Probabilities to try (ascending).

    Returns:
        list of ``(threshold, f1, precision, recall)``.
    """
    found = []
    for item in pages:
        bboxes, scores = detector.detect(item['image'], score_threshold=min(thresholds))
        found.append((bboxes, scores, np.asarray(item['bboxes'], dtype=np.float64)))
    table = []
    for threshold in thresholds:
        tp = fp = fn = 0
        for bboxes, scores, gt in found:
            kept = bboxes[scores >= threshold]
            centres = np.stack([(kept[:, 0] + kept[:, 2]) / 2, (kept[:, 1] + kept[:, 3]) / 2],
                               axis=1)
            score = score_page(['c'] * len(kept), centres, ['c'] * len(gt), gt)
            tp, fp, fn = tp + score.tp, fp + score.fp, fn + score.fn
        table.append((threshold,) + f1_from_counts(tp, fp, fn))
    return table


def main(argv=None):
    from kr.detector.registry import load_detector

    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('model', help='model_*.npz of a detector run (args.json beside it)')
    p.add_argument('--data-dir', required=True, help='Kaggle-layout folder')
    p.add_argument('--split-dir', help='fold CSVs (default: <data-dir>-gsplit)')
    p.add_argument('--cv-index', type=int, default=0, help='fold (default: %(default)s)')
    p.add_argument('--pages', type=int, default=20,
                   help='first this many val pages (default: %(default)s)')
    args = p.parse_args(argv)
    detector = load_detector(args.model)
    val = KuzushijiPageDataset(args.data_dir, 'val', args.cv_index, args.split_dir)
    pages = [val[i] for i in range(min(args.pages, len(val)))]
    print('{} val pages, {} characters'.format(len(pages),
                                              sum(len(p['bboxes']) for p in pages)))
    print('threshold     F1  precision  recall')
    for threshold, f1, precision, recall in threshold_table(detector, pages):
        print('{:9.2f} {:6.3f} {:10.3f} {:7.3f}'.format(threshold, f1, precision, recall))


if __name__ == '__main__':
    main()
