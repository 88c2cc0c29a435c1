#!/usr/bin/env python
"""Reading order and text, measured on the synthetic test pages (SPEC section 12).

    python benchmarks/reading_order.py --data-dir data/kuzushiji-recognition-synthetic
    python benchmarks/reading_order.py --data-dir data/kuzushiji-recognition-synthetic \\
        --model results/demo/model --backend onnxruntime

1. Ground-truth boxes: every test page's labelled boxes, shuffled, are ordered by
   ``kr.reading.reading_order``, as they are and perturbed (skewed 1.5 degrees, 10 % of the
   characters dropped, box edges jittered by 10 %); printed: successor-link accuracy
   (share of characters whose predicted next character is the true one), share of pages
   entirely right, share of characters with the right ruby flag, and milliseconds per
   page. A baseline row orders the same boxes by the rule NDL 古典籍OCR applies to lines (a
   new column where the x-centres differ by more than 0.3 x the median width; columns
   right to left, characters by y). Anchor: Lamb et al. 2021 (arXiv 2106.06786), 98.65 %
   with a learned model.
2. End to end, when ``--model`` is a model folder (``make demo`` leaves one in
   ``results/demo/model``): the pages are recognised, ordered and turned into their main
   text; printed: the character error rate (edit distance / reference length, white space
   left out) against 1 - the order-free character F1, which isolates recognition from
   ordering, and the CER of the same recognised characters put in the true order (each by
   the ground-truth box holding its centre): the difference is what the ordering costs.
   (A missed or extra character is one edit in the CER but half an error in 1 - F1.)

Needs ``test_reading_order.json`` beside ``test_labels.csv`` (written by
scripts/00_make_synthetic_dataset.py).
"""

import argparse
import os
import time

import numpy as np

from kr.reading import character_counts
from kr.reading import character_error_rate
from kr.reading import load_reading_truth
from kr.reading import make_page
from kr.reading import page_text
from kr.reading import reading_order
from kr.reading import successor_links
from kr.reading.pages import load_page_image

#: NDL 古典籍OCR's column rule (SPEC section 12).
NDL_COLUMN_GAP = 0.3


def ndl_rule_order(bboxes):
    """The baseline: columns split where sorted x-centres jump by > 0.3 median width."""
    b = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return np.zeros(0, dtype=np.int64)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    width = float(np.median(b[:, 2] - b[:, 0]))
    by_x = np.argsort(-cx, kind='stable')
    column = np.zeros(len(b), dtype=np.int64)
    column[by_x] = np.concatenate([[0], np.cumsum(-np.diff(cx[by_x]) > NDL_COLUMN_GAP * width)])
    return np.lexsort((cy, column))


#: Perturbations of the ground-truth boxes: a page photographed 1.5 degrees askew (box
#: centres rotated about the page centre), 10 % of the characters missed by the detector,
#: and every box edge moved by up to 10 % of the box size (detector noise).
SKEW_DEGREES = 1.5
DROP_RATE = 0.1
JITTER = 0.1
SCENARIOS = ('clean', 'skewed', 'dropped', 'jittered')


def perturb(bboxes, scenario, rng):
    """``(boxes, kept)``: perturbed boxes and the indices of the characters kept."""
    b = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    kept = np.arange(len(b))
    if scenario == 'skewed' and len(b):
        t = np.deg2rad(SKEW_DEGREES)
        c = (b[:, :2] + b[:, 2:]) / 2
        centre = c.mean(axis=0)
        d = c - centre
        moved = centre + np.stack([d[:, 0] * np.cos(t) - d[:, 1] * np.sin(t),
                                   d[:, 0] * np.sin(t) + d[:, 1] * np.cos(t)], axis=1)
        b = b + np.concatenate([moved - c, moved - c], axis=1)
    elif scenario == 'dropped':
        kept = np.flatnonzero(rng.uniform(size=len(b)) >= DROP_RATE)
        b = b[kept]
    elif scenario == 'jittered' and len(b):
        size = np.repeat(b[:, 2:] - b[:, :2], 2, axis=0).reshape(-1, 4)
        b = b + rng.uniform(-JITTER, JITTER, size=b.shape) * size[:, [0, 2, 1, 3]]
        b = np.concatenate([np.minimum(b[:, :2], b[:, 2:]), np.maximum(b[:, :2], b[:, 2:])],
                           axis=1)
    return b, kept


def ground_truth_rows(pages, seed):
    rows = []
    for scenario in SCENARIOS:
        for name, method in (('kr.reading.reading_order', 'kr'), ('NDL column rule', 'ndl')):
            rng = np.random.RandomState(seed)
            correct = total = right_pages = ruby_ok = chars = 0
            seconds = 0.0
            for p in pages:
                boxes, kept = perturb(p.bboxes, scenario, rng)
                n = len(kept)
                perm = rng.permutation(n)
                start = time.perf_counter()
                if method == 'kr':
                    layout = reading_order(boxes[perm])
                    order, ruby = layout.order, layout.ruby[np.argsort(perm)]
                else:
                    order, ruby = ndl_rule_order(boxes[perm]), np.zeros(n, dtype=bool)
                seconds += time.perf_counter() - start
                c, t = successor_links(perm[order], np.arange(n))
                correct, total = correct + c, total + t
                right_pages += int(c == t)
                ruby_ok += int((ruby == p.ruby[kept]).sum())
                chars += n
            rows.append((scenario, name, correct / max(total, 1),
                         right_pages / max(len(pages), 1), ruby_ok / max(chars, 1),
                         1000.0 * seconds / max(len(pages), 1)))
    return rows


def oracle_text(page, truth):
    """The page's main characters (same ruby flags) in the true order: each one sorted by
    the ground-truth box holding its centre (else the nearest), one line."""
    chars = [page.characters[i] for i in page.layout.main_order]
    boxes = np.asarray(truth.bboxes, dtype=np.float64).reshape(-1, 4)
    if not chars or not len(boxes):
        return ''.join(c.char for c in chars)
    keys = []
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    for c in chars:
        x, y = c.center
        inside = np.flatnonzero((boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y)
                                & (y <= boxes[:, 3]))
        if len(inside):
            keys.append(float(inside[0]))
        else:
            keys.append(float(np.argmin(((centres - (x, y)) ** 2).sum(axis=1))) + 0.5)
    return ''.join(chars[k].char for k in np.argsort(keys, kind='stable'))


def end_to_end(pages, data_dir, model, backend, limit):
    from kr.model_folder import load_model_folder
    recognizer = load_model_folder(model, backend=backend)
    edits = length = tp = n_pred = n_ref = oracle_edits = 0
    seconds = 0.0
    done = 0
    for p in pages[:limit]:
        path = os.path.join(data_dir, 'test_images', p.image_id + '.jpg')
        image = load_page_image(path)
        start = time.perf_counter()
        page = make_page(os.path.basename(path), (image.shape[1], image.shape[0]),
                         recognizer.recognize(image))
        seconds += time.perf_counter() - start
        text = page_text(page)
        e, n = character_error_rate(text, p.text)
        edits, length = edits + e, length + n
        oracle_edits += character_error_rate(oracle_text(page, p), p.text)[0]
        a, b, c = character_counts(text, p.text)
        tp, n_pred, n_ref = tp + a, n_pred + b, n_ref + c
        done += 1
    f1 = 2.0 * tp / max(n_pred + n_ref, 1)
    return {'pages': done, 'cer': edits / max(length, 1), 'f1': f1,
            'oracle_cer': oracle_edits / max(length, 1),
            'seconds_per_page': seconds / max(done, 1), 'reference_characters': length}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-dir', default=os.path.join('data',
                                                           'kuzushiji-recognition-synthetic'),
                        help='synthetic dataset with test_reading_order.json '
                             '(default: %(default)s)')
    parser.add_argument('--model', default=None,
                        help='model folder for the end-to-end rows (default: results/demo/model '
                             'when it exists)')
    parser.add_argument('--backend', choices=('chainer', 'onnxruntime'), default='chainer')
    parser.add_argument('--max-pages', type=int, default=None,
                        help='end to end: at most this many pages')
    parser.add_argument('--seed', type=int, default=0, help='shuffle of the boxes')
    args = parser.parse_args()
    pages = load_reading_truth(args.data_dir)
    n_chars = sum(len(p.unicodes) for p in pages)
    print('{}: {} test pages, {} characters ({} ruby)'.format(
        args.data_dir, len(pages), n_chars, sum(int(p.ruby.sum()) for p in pages)))
    print()
    print('ground-truth boxes (shuffled)        successor links  pages right  ruby flag  ms/page')
    for scenario, name, links, right, ruby, ms in ground_truth_rows(pages, args.seed):
        print('{:<10s}{:<27s}{:>15.2%}{:>13.2%}{:>11.2%}{:>9.1f}'.format(
            scenario, name, links, right, ruby, ms))
    print('{:<37s}{:>15.2%}'.format('Lamb et al. 2021 (learned, real pages)', 0.9865))
    model = args.model
    if model is None and os.path.isfile(os.path.join('results', 'demo', 'model', 'model.json')):
        model = os.path.join('results', 'demo', 'model')
    if model is None:
        print('\n(no --model: end-to-end rows skipped; make demo leaves results/demo/model)')
        return
    r = end_to_end(pages, args.data_dir, model, args.backend, args.max_pages)
    print()
    print('end to end ({}, {}; {} pages, {} reference characters)'.format(
        model, args.backend, r['pages'], r['reference_characters']))
    print('  CER of the main text        {:.4f}'.format(r['cer']))
    print('  CER, same characters in the true order {:.4f}   (what the order costs: {:.4f})'
          .format(r['oracle_cer'], r['cer'] - r['oracle_cer']))
    print('  1 - character F1 (no order) {:.4f}   (F1 {:.4f})'.format(1 - r['f1'], r['f1']))
    print('  seconds per page            {:.2f}   (recognition and ordering)'.format(
        r['seconds_per_page']))


if __name__ == '__main__':
    main()
