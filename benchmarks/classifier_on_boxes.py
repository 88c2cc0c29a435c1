#!/usr/bin/env python
"""Where a classifier loses characters: on the true boxes of labelled pages, and on the
detector's boxes that the competition's matching gives to a character.

    python benchmarks/classifier_on_boxes.py results/demo/classifier/model_final.npz \\
        --data-dir data/kuzushiji-recognition-synthetic \\
        --detections results/demo/submission-before-finetune/detection.csv

For the test pages of ``--data-dir`` (``test_images`` with ``test_labels.csv``; ``--split
train`` for ``train_images`` with ``train.csv``) it prints the classifier's top-1 accuracy
on the true boxes and, with ``--detections`` (a ``detection.csv`` of script 07), on the
detections matched to a character (box centre strictly inside it, the competition's greedy
matching, labels ignored, detections under ``--detection-threshold`` left out), and for each
the share of characters a class threshold keeps and keeps right (the competition counts a
dropped character as missed, a wrong one as missed and false). With a synthetic set's
``synthetic_info.json`` the rows are also split by the font each page's book is written in.

On the demo after issue 13's brush-font pages: 0.921 on the true boxes, 0.829 on the
matched detections; at the class threshold 0.5, 0.93 and 0.88 of them kept, 0.89 and 0.80
kept right (0.855 and 0.72 top-1 with the 0.5 dropout the demo preset had before). A gap
between the two rows is the detector's boxes; a low first row, the classifier.
"""

import argparse
import collections
import json
import os
import sys

import numpy as np

from kr.classifier import load_class_table
from kr.classifier import load_classifier
from kr.datasets.image import load_image
from kr.detector.centernet.model import SUBMISSION_SCORE_THRESHOLD
from kr.evaluation import parse_solution_labels
from kr.evaluation import read_label_table
from kr.evaluation.detection import score_detections
from kr.submission import read_detections

#: Class thresholds reported (the SPEC's 0.5 among them).
THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
#: Detection threshold of the demo's CenterNet: its family's submission threshold.
DEFAULT_DETECTION_THRESHOLD = SUBMISSION_SCORE_THRESHOLD


class Tally:
    """Counts of one row: characters, right at top-1, kept and kept right per threshold."""

    def __init__(self):
        self.n = 0
        self.right = 0
        self.kept = collections.Counter()
        self.kept_right = collections.Counter()

    def add(self, right: np.ndarray, scores: np.ndarray) -> None:
        self.n += len(right)
        self.right += int(right.sum())
        for t in THRESHOLDS:
            keep = scores >= t
            self.kept[t] += int(keep.sum())
            self.kept_right[t] += int((keep & right).sum())

    def row(self) -> list:
        n = max(self.n, 1)
        cells = [self.n, self.right / n]
        for t in THRESHOLDS:
            cells += [self.kept[t] / n, self.kept_right[t] / n]
        return cells


def page_fonts(data_dir: str) -> dict:
    """``{image_id: font of its book}`` from synthetic_info.json, or ``{}``."""
    path = os.path.join(data_dir, 'synthetic_info.json')
    if not os.path.isfile(path):
        return {}
    with open(path, encoding='utf-8') as f:
        info = json.load(f)
    return {k: (v[0] if v else '-') for k, v in info.get('page_fonts', {}).items()}


def classifier_classes(model_path: str, data_dir: str) -> list:
    """The classifier's class table (its run folder's copy, else the data folder's)."""
    return list(load_class_table(model_path, data_dir).unicodes)


def make_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('classifier', help='classifier weights (script 04 or 06), args.json beside')
    p.add_argument('--data-dir', required=True, help='Kaggle-layout data folder')
    p.add_argument('--split', choices=('test', 'train'), default='test',
                   help='test_images with test_labels.csv, or train_images with train.csv')
    p.add_argument('--detections', help="detection.csv of script 07 on the same pages")
    p.add_argument('--detection-threshold', type=float, default=DEFAULT_DETECTION_THRESHOLD,
                   help='detections under it are left out (default %(default)s)')
    p.add_argument('--max-pages', type=int, default=None, help='the first N labelled pages')
    p.add_argument('--tta', action='store_true',
                   help='average over crops of five margins (--classify-tta of scripts 05/07)')
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    labels_path = os.path.join(args.data_dir, '{}_labels.csv'.format(args.split)
                               if args.split == 'test' else 'train.csv')
    image_dir = os.path.join(args.data_dir, '{}_images'.format(args.split))
    try:
        classifier = load_classifier(args.classifier)
        labels = read_label_table(labels_path)
        detections = read_detections(args.detections) if args.detections else None
        classes = classifier_classes(args.classifier, args.data_dir)
    except (FileNotFoundError, ValueError) as e:
        sys.exit('error: {}'.format(e))
    fonts = page_fonts(args.data_dir)
    pad_ratios = 'tta' if args.tta else None
    rows = collections.defaultdict(Tally)
    pages = list(labels.itertuples())[:args.max_pages]
    for page in pages:
        unicodes, gt = parse_solution_labels(page.labels, page.image_id, labels_path)
        if not unicodes:
            continue
        image = load_image(os.path.join(image_dir, page.image_id + '.jpg'))
        truth = np.asarray(unicodes)
        font = fonts.get(page.image_id)
        idx, scores = classifier.classify(image, gt.astype(np.float32), pad_ratios=pad_ratios)
        right = np.asarray([classes[i] for i in idx]) == truth
        for key in ('true boxes', 'true boxes, ' + font if font else None):
            if key:
                rows[key].add(right, scores)
        if detections is None:
            continue
        if page.image_id not in detections:
            sys.exit('error: {} has no row for page {}'.format(args.detections, page.image_id))
        boxes, det_scores = detections[page.image_id]
        boxes = boxes[det_scores >= args.detection_threshold]
        match = score_detections(boxes, gt).match
        taken = match >= 0
        if not taken.any():
            continue
        idx, scores = classifier.classify(image, boxes[match[taken]], pad_ratios=pad_ratios)
        right = np.asarray([classes[i] for i in idx]) == truth[taken]
        for key in ('matched detections', 'matched detections, ' + font if font else None):
            if key:
                rows[key].add(right, scores)

    head = '{:<48} {:>6} {:>6}'.format('boxes', 'chars', 'top-1')
    for t in THRESHOLDS:
        head += '  {:>5} {:>5}'.format('k@{:.1f}'.format(t), 'r@{:.1f}'.format(t))
    print(head)
    for key in sorted(rows, key=lambda k: (k.split(',')[0], ',' in k, k)):
        cells = rows[key].row()
        print('{:<48} {:>6} {:>6.3f}'.format(key, cells[0], cells[1])
              + ''.join('  {:>5.3f} {:>5.3f}'.format(a, b)
                        for a, b in zip(cells[2::2], cells[3::2])))
    print('k@t: share of the characters whose class score is >= t (kept); r@t: kept and right')


if __name__ == '__main__':
    main()
