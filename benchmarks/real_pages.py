#!/usr/bin/env python
"""Detection and competition F1 of trained models on your own labelled pages.

The synthetic test pages say how well the models learnt the synthetic set; this says how
they do on real pages, such as a few labelled pages of the Kaggle training set::

    python benchmarks/real_pages.py PAGE.jpg [PAGE.jpg ...] --labels train.csv \\
        --model results/demo/model --out results/real-pages
    python benchmarks/real_pages.py pages/ --labels train.csv \\
        --detector results/demo/detector/model_final.npz \\
        --classifier results/demo/classifier-finetune/model_final.npz \\
        [--detection-threshold 0.45] [--backend onnxruntime]

Pages are image files or folders of them; a page's id is its file name without the
extension, looked up in ``--labels`` (the train.csv format, ``image_id,labels`` with
``U+XXXX x y w h`` per character). For each labelled page, and over all of them, it prints:

- detection precision, recall and F1: a detection counts when its box centre lies strictly
  inside a ground-truth box, labels ignored, with the competition's greedy matching
  (:func:`kr.evaluation.detection.score_detections`);
- the competition's precision, recall and F1 (SPEC section 7: the predicted character must
  also be the right one). On real pages read with models trained on the synthetic set, this
  is bounded by the share of the page's characters that are in the synthetic class table.

Each page is drawn to ``--out/<id>.png``: ground-truth boxes green when a detection matched
them and orange when missed, detections as points, green when matched and red when not,
each with its predicted character. Pages without a labels row are drawn and counted
as unlabelled. Nothing here is a test: run it by hand on pages you have.
"""

import argparse
import os
import sys
import time

import numpy as np

from kr.bbox import box_centers
from kr.cli import nested_args
from kr.evaluation import f1_from_counts
from kr.evaluation import parse_solution_labels
from kr.evaluation import read_label_table
from kr.evaluation import score_page
from kr.evaluation.detection import score_detections
from kr.inference import BACKENDS
from kr.inference import load_recognizer
from kr.model_folder import load_model_folder
from kr.reading.pages import load_page_image
from kr.visualization import PRED_COLOR
from kr.visualization import display_char
from kr.visualization import draw_page
from kr.visualization import draw_scored_page
from kr.visualization import save_figure

#: Image files taken from a folder given as a page.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp', '.webp')


def page_paths(inputs) -> list:
    """Image files of the arguments (folders expanded, sorted), or a SystemExit naming one."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, n) for n in os.listdir(item)
                           if n.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                sys.exit('page folder {} holds no image ({})'.format(
                    item, ', '.join(IMAGE_EXTENSIONS)))
            paths.extend(found)
        elif os.path.isfile(item):
            paths.append(item)
        else:
            sys.exit('page {}: no such file or folder'.format(item))
    ids = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        sys.exit('two pages with the id {} (the file name without extension)'.format(twice[0]))
    return paths


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('pages', nargs='+', help='page images, or folders of them')
    parser.add_argument('--labels', required=True,
                        help='labels in the train.csv format (image_id,labels)')
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument('--model', help='a model folder (kr make-model-folder; make demo '
                                        'leaves one in results/demo/model)')
    models.add_argument('--detector', help='detector weights (script 03), with --classifier')
    parser.add_argument('--classifier', help='classifier weights (script 04 or 06)')
    parser.add_argument('--backend', choices=BACKENDS, default='chainer',
                        help='inference backend (default: %(default)s)')
    parser.add_argument('--out', default=os.path.join('results', 'real-pages'),
                        help='folder for the pictures (default: %(default)s)')
    parser.add_argument('--detection-threshold', type=float, default=None,
                        help="score a detection needs (default: the model folder's, or the "
                             "detector family's submission threshold)")
    nested_args(parser, "(default: the model folder's, or 0.5)")
    parser.add_argument('--max-side', type=int, default=2000,
                        help='longest side of the pictures in pixels (default: %(default)s)')
    return parser


def main(argv=None):
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.detector and not args.classifier:
        parser.error('--detector needs --classifier')
    if args.model and args.classifier:
        parser.error('--classifier goes with --detector, not with --model')
    if args.detection_threshold is not None and not 0 < args.detection_threshold < 1:
        parser.error('--detection-threshold must be in (0, 1), got {}'.format(
            args.detection_threshold))
    overrides = {key: value for key, value in (
        ('detection_threshold', args.detection_threshold),
        ('nested_overlap', args.nested_overlap)) if value is not None}
    paths = page_paths(args.pages)
    try:
        labels = read_label_table(args.labels)
    except (FileNotFoundError, ValueError) as e:
        parser.error('--labels: {}'.format(e))
    rows = dict(zip(labels['image_id'], labels['labels']))
    if args.model:
        recognizer = load_model_folder(args.model, backend=args.backend, **overrides)
        what = args.model
    else:
        recognizer = load_recognizer(args.detector, args.classifier, backend=args.backend,
                                     **overrides)
        what = '{} + {}'.format(args.detector, args.classifier)
    mapping = recognizer.mapping
    os.makedirs(args.out, exist_ok=True)

    print('models: {} ({} backend, detection threshold {}, TTA {}, nested overlap {})'.format(
        what, args.backend, recognizer.detection_threshold, 'on' if recognizer.tta else 'off',
        recognizer.nested_overlap))
    header = ('{:<24} {:>5} {:>5}   {:>4} {:>4} {:>4} {:>6} {:>6} {:>6}   {:>4} {:>6} {:>6} '
              '{:>6} {:>6}')
    line = ('{:<24} {:>5} {:>5}   {:>4} {:>4} {:>4} {:>6.3f} {:>6.3f} {:>6.3f}   {:>4} {:>6.3f} '
            '{:>6.3f} {:>6.3f} {:>6.1f}')
    print('{:<24} {:>11}   {:^36}   {:^29}'.format('', '', 'detection (labels ignored)',
                                                    'competition (labels count)'))
    print(header.format('page', 'chars', 'dets', 'TP', 'FP', 'FN', 'P', 'R', 'F1', 'TP', 'P',
                        'R', 'F1', 's'))
    det_total = np.zeros(3, dtype=np.int64)
    f1_total = np.zeros(3, dtype=np.int64)
    n_chars = n_dets = n_labelled = 0
    in_table = 0
    for path in paths:
        image_id = os.path.splitext(os.path.basename(path))[0]
        image = load_page_image(path)
        start = time.perf_counter()
        bboxes, scores = recognizer.detect(image)
        characters = recognizer.classify(image, bboxes, scores)
        seconds = time.perf_counter() - start
        bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
        pred_unicodes = [c.unicode for c in characters]
        pred_points = np.array([c.center for c in characters], dtype=np.float64).reshape(-1, 2)
        # Every detection, with its class where it passed the classifier's threshold.
        kept = {tuple(c.bbox): c.unicode for c in characters}
        det_texts = [display_char(kept.get(tuple(float(v) for v in b), '?'), mapping) for b in bboxes]
        out = os.path.join(args.out, image_id + '.png')
        if image_id not in rows:
            fig = draw_page(image, bboxes=bboxes, texts=det_texts, colors=PRED_COLOR,
                            max_side=args.max_side, title='{}: unlabelled, {} detections'.format(
                                image_id, len(bboxes)))
            save_figure(fig, out)
            print('{:<24} {:>5} {:>5}   (no labels row in {}; drawn to {})'.format(
                image_id, '-', len(bboxes), args.labels, out))
            continue
        gt_unicodes, gt_boxes = parse_solution_labels(rows[image_id], image_id, args.labels)
        det = score_detections(bboxes, gt_boxes)
        comp = score_page(pred_unicodes, pred_points, gt_unicodes, gt_boxes)
        d_f1, d_p, d_r = f1_from_counts(det.tp, det.fp, det.fn)
        c_f1, c_p, c_r = f1_from_counts(comp.tp, comp.fp, comp.fn)
        print(line.format(image_id, len(gt_unicodes), len(bboxes), det.tp, det.fp, det.fn, d_p,
                          d_r, d_f1, comp.tp, c_p, c_r, c_f1, seconds))
        # The picture: ground truth and every detection, matched without labels.
        det_unicodes = [kept.get(tuple(float(v) for v in b), '?') for b in bboxes]
        fig = draw_scored_page(
            image, gt_unicodes, gt_boxes, det_unicodes, box_centers(bboxes), det.match,
            mapping=mapping, max_side=args.max_side,
            title='{}: detection F1 {:.3f} (TP {} green, FP {} red, FN {} orange); '
                  'competition F1 {:.3f}'.format(image_id, d_f1, det.tp, det.fp, det.fn, c_f1))
        save_figure(fig, out)
        det_total += (det.tp, det.fp, det.fn)
        f1_total += (comp.tp, comp.fp, comp.fn)
        n_chars += len(gt_unicodes)
        n_dets += len(bboxes)
        n_labelled += 1
        in_table += sum(1 for u in gt_unicodes if u in mapping)
    if n_labelled == 0:
        print('no page had a row in {}: nothing scored'.format(args.labels))
        return
    d_f1, d_p, d_r = f1_from_counts(*det_total)
    c_f1, c_p, c_r = f1_from_counts(*f1_total)
    print(line.format('all ({} pages)'.format(n_labelled), n_chars, n_dets, *det_total, d_p, d_r,
                      d_f1, f1_total[0], c_p, c_r, c_f1, float('nan')).replace('nan', '  -'))
    print('characters whose class is in the classifier\'s table: {} of {} ({:.1%}); the '
          'competition recall cannot exceed that share'.format(in_table, n_chars,
                                                               in_table / max(1, n_chars)))
    print('pictures in {}'.format(args.out))


if __name__ == '__main__':
    main()
