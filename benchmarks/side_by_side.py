#!/usr/bin/env python
"""The 8th-place system and the second seed's, trained and scored side by side.

    python benchmarks/side_by_side.py                       # the demo's synthetic pages
    python benchmarks/side_by_side.py --detector-minutes 8 --classifier-minutes 6

Four systems on the same synthetic train and test pages, each detector and each classifier
given the same CPU budget (one core each, ``--jobs`` of them at a time):

(a) CenterNet ResNet18-UNet (adaptive-scale TTA) + MobileNetV3: the 8th-place system
    (without its pseudo labels and finetuning, which the seed has no counterpart of);
(b) RetinaNet on the whole page resized to 512 x 512 + Xception (seed 000);
(c) Faster R-CNN on the whole page at 512 x 512 + ResNet50 (seed 000);
(d) RetinaNet on large patches of the page (the seed's own suggestion) + (b)'s classifier.

(a) and (d) are their families' CPU-sized ``demo`` presets; (b) and (c) the ``seed000``
presets (the whole page at 512 x 512; RetinaNet with the TF config's anchors) on a narrow
ResNet50 with the demo presets' optimisation; the classifiers of (b) and (c) are the
``seed000`` recipe (no augmentation, uniform sampling) at the demo classifier's size. A budget is met by measuring each run's seconds per iteration in a short
probe and training for as many iterations as fit. The detections go the seed's way
(``detection.csv`` -> classification -> ``submission.csv``, scripts/07_make_submission.py).

Prints one row per system: the competition F1, precision and recall, the detection recall
and F1 with labels ignored (:mod:`kr.evaluation.detection`), the detector's VOC mAP on the
test pages (IoU 0.5, one pass at its standard size) and seconds per page of script 07 (one
core), and writes them to ``<out>/side_by_side.json``. Finished runs are kept: a second call
trains only what is missing (``--restart`` starts over).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from kr import fileio  # NOQA: E402
from kr.datasets import KuzushijiPageDataset  # NOQA: E402
from kr.detector import load_detector  # NOQA: E402
from kr.detector import ScaledDetector  # NOQA: E402
from kr.evaluation import detection_f1  # NOQA: E402
from kr.evaluation import eval_detection_voc  # NOQA: E402
from kr.evaluation.detection_map import EVAL_SCORE_THRESHOLD  # NOQA: E402
from kr.submission import read_detections  # NOQA: E402

#: The classifier of (b) and (c) at the demo classifier's size (kr.classifier.training's
#: ``demo`` preset): the seed000 recipe changes the architecture, augmentation and sampling.
SEED_CLASSIFIER_SIZE = ['--width', '0.25', '--input-size', '32', '--batchsize', '64',
                        '--lr', '0.1', '--epoch-size', '3200']
#: The systems: detector family and flags, classifier flags (or the system whose classifier
#: is reused).
#: The CPU-sized optimisation of the second seed's detectors (their ``demo`` presets' Adam).
SEED_DETECTOR_CPU = ['--depth', '50', '--optimizer', 'adam', '--weight-decay', '1e-5',
                     '--val-pages', '12']
SYSTEMS = {
    'a_centernet': dict(
        title='(a) CenterNet + MobileNetV3 (8th place)',
        detector=['--detector', 'centernet', '--preset', 'demo'],
        classifier=['--preset', 'demo', '--model', 'mobilenetv3']),
    # The seed's settings (the whole page at 512 x 512, the TF config's anchors and batch
    # norm in the subnets), on a narrow ResNet50.
    'b_retinanet_512': dict(
        title='(b) RetinaNet 512 + Xception (seed 000)',
        detector=['--detector', 'retinanet', '--preset', 'seed000', '--width', '0.125',
                  '--batchsize', '8', '--lr', '3e-3'] + SEED_DETECTOR_CPU,
        classifier=['--preset', 'seed000', '--model', 'xception'] + SEED_CLASSIFIER_SIZE),
    'c_faster_rcnn_512': dict(
        title='(c) Faster R-CNN 512 + ResNet50 (seed 000)',
        detector=['--detector', 'faster_rcnn', '--preset', 'seed000', '--width', '0.25',
                  '--batchsize', '2', '--lr', '2e-3', '--roi-batchsize', '128',
                  '--roi-positive-fraction', '0.5'] + SEED_DETECTOR_CPU,
        classifier=['--preset', 'seed000', '--model', 'resnet50'] + SEED_CLASSIFIER_SIZE),
    # The family's demo preset: half-page patches at 256 px, anchors sized for characters.
    'd_retinanet_patches': dict(
        title='(d) RetinaNet on patches + Xception',
        detector=['--detector', 'retinanet', '--preset', 'demo'],
        classifier='b_retinanet_512'),
}
#: Iterations of the probe that measures a run's speed, and the iterations timed: from the
#: third (the ones before include start-up and the first allocations) to the one before the
#: last (the last one's log entry also holds the end-of-run validation).
PROBE_ITERATIONS = 8
PROBE_TIMED = (3, 7)
#: Environment of every training and submission process: one core each.
ONE_CORE = {'OMP_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1',
            'NUMBA_NUM_THREADS': '1'}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data-dir', default=os.path.join('data', 'kuzushiji-recognition-synthetic'),
                   help='synthetic Kaggle-layout folder with labelled test pages, split (01) '
                        'and crops (02), as `make demo` leaves it (default: %(default)s)')
    p.add_argument('--out', default=os.path.join('results', 'side_by_side'),
                   help='output folder (default: %(default)s)')
    p.add_argument('--systems', default=','.join(SYSTEMS),
                   help='comma-separated systems to run (default: all: %(default)s)')
    p.add_argument('--detector-minutes', type=float, default=4.0,
                   help='CPU minutes (one core) of each detector\'s training (default: '
                        '%(default)s)')
    p.add_argument('--classifier-minutes', type=float, default=3.0,
                   help='CPU minutes (one core) of each classifier\'s training (default: '
                        '%(default)s)')
    p.add_argument('--jobs', type=int, default=2,
                   help='runs at a time, one core each (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='seed of every run (default: 0)')
    p.add_argument('--restart', action='store_true', help='remove --out and start over')
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(',') if s.strip()]
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown:
        p.error('unknown system(s) {} in --systems: choose from {}'.format(
            ', '.join(unknown), ', '.join(SYSTEMS)))
    for s in args.systems:
        reused = SYSTEMS[s]['classifier']
        if isinstance(reused, str) and reused not in args.systems:
            p.error('--systems: {} reuses the classifier of {}: run both'.format(s, reused))
    return args


def _run(script, flags, log_path):
    """Run a numbered script on one core, its output to ``log_path``; raise on failure."""
    env = dict(os.environ, PYTHONPATH=REPO, **ONE_CORE)
    with open(log_path, 'w') as log:
        proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', script)] + flags,
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError('{} failed (exit {}); see {}'.format(script, proc.returncode,
                                                                log_path))


def _seconds_per_iteration(run_dir):
    """Seconds per iteration of a probe run, from its log's elapsed times."""
    with open(os.path.join(run_dir, 'log')) as f:
        log = {entry['iteration']: entry['elapsed_time'] for entry in json.load(f)}
    first, last = PROBE_TIMED
    return (log[last] - log[first]) / (last - first)


def train_within(script, flags, out, minutes):
    """Train with ``script`` for as many iterations as fit in ``minutes`` on one core.

    Returns:
        dict: ``iterations``, ``seconds_per_iteration``, ``model`` (``model_final.npz``).
    """
    info_path = os.path.join(out, 'budget.json')
    if os.path.isfile(os.path.join(out, 'model_final.npz')) and os.path.isfile(info_path):
        with open(info_path) as f:
            info = json.load(f)
        if info.get('minutes') == minutes and info.get('flags') == flags:
            return info  # the same run, finished earlier
    probe = out + '-probe'
    shutil.rmtree(probe, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    _run(script, flags + ['--iterations', str(PROBE_ITERATIONS), '--log-interval', '1',
                          '--snapshot-interval', str(PROBE_ITERATIONS),
                          '--eval-interval', str(10 * PROBE_ITERATIONS), '--out', probe],
         probe + '.log')
    seconds = _seconds_per_iteration(probe)
    shutil.rmtree(probe)
    iterations = max(PROBE_ITERATIONS, int(minutes * 60 / seconds))
    _run(script, flags + ['--iterations', str(iterations),
                          '--log-interval', str(max(1, iterations // 20)),
                          '--snapshot-interval', str(iterations),
                          '--eval-interval', str(iterations), '--out', out], out + '.log')
    info = dict(iterations=iterations, seconds_per_iteration=seconds, minutes=minutes,
                flags=flags, model=os.path.join(out, 'model_final.npz'))
    fileio.write_json(info_path, info)
    return info


def detector_map(model_path, data_dir):
    """VOC mAP (IoU 0.5) of a detector on the labelled test pages, one pass at its
    standard input size, as during training."""
    model = load_detector(model_path)
    detector = ScaledDetector(model)
    pages = KuzushijiPageDataset(data_dir, 'test')
    pred_bboxes, pred_scores, gt_bboxes = [], [], []
    for i in range(len(pages)):
        item = pages[i]
        bboxes, scores = detector.detect(item['image'], score_threshold=EVAL_SCORE_THRESHOLD)
        pred_bboxes.append(bboxes)
        pred_scores.append(scores)
        gt_bboxes.append(item['bboxes'])
    return float(eval_detection_voc(pred_bboxes, pred_scores, gt_bboxes)['map'])


def score_system(name, det, clf, args):
    """Script 07 with the system's two models, then its scores."""
    out = os.path.join(args.out, name, 'submission')
    metrics_path = os.path.join(out, 'metrics.json')
    timing_path = os.path.join(out, 'seconds.json')
    models = {'detector': det, 'classifier': clf}  # the runs' budget records
    done = os.path.isfile(metrics_path) and os.path.isfile(timing_path)
    if done:
        with open(timing_path) as f:
            done = json.load(f).get('models') == models
    if not done:
        start = time.perf_counter()
        _run('07_make_submission.py', [det['model'], clf['model'], '--data-dir', args.data_dir,
                                       '--out', out, '--restart'],
             os.path.join(args.out, name, 'submission.log'))
        fileio.write_json(timing_path, {'seconds': time.perf_counter() - start,
                                        'models': models})
    with open(metrics_path) as f:
        metrics = json.load(f)
    with open(timing_path) as f:
        seconds = json.load(f)['seconds']
    pages = KuzushijiPageDataset(args.data_dir, 'test')
    gt = dict(zip(pages.ids, pages.bboxes))
    found = {k: b for k, (b, _) in read_detections(os.path.join(out, 'detection.csv')).items()}
    detection = detection_f1(found, gt)
    return dict(system=name, title=SYSTEMS[name]['title'], f1=metrics['f1'],
                precision=metrics['precision'], recall=metrics['recall'],
                detection_recall=detection['recall'], detection_f1=detection['f1'],
                map=detector_map(det['model'], args.data_dir),
                seconds_per_page=seconds / len(pages),
                detector_iterations=det['iterations'],
                classifier_iterations=clf['iterations'])


def table(rows) -> str:
    """The rows as an RST table."""
    header = ['system', 'F1', 'precision', 'recall', 'det. recall', 'det. F1', 'mAP',
              's/page']
    body = [[r['title'], '{:.4f}'.format(r['f1']), '{:.4f}'.format(r['precision']),
             '{:.4f}'.format(r['recall']), '{:.4f}'.format(r['detection_recall']),
             '{:.4f}'.format(r['detection_f1']), '{:.4f}'.format(r['map']),
             '{:.2f}'.format(r['seconds_per_page'])] for r in rows]
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    rule = ' '.join('=' * w for w in widths)
    lines = [rule, ' '.join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), rule]
    lines += [' '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
    return '\n'.join(lines + [rule])


def main(argv=None):
    args = parse_args(argv)
    for needed in ('train.csv', 'test_labels.csv'):
        if not os.path.isfile(os.path.join(args.data_dir, needed)):
            sys.exit('{} has no {}: run `make demo` (or scripts 00-02) first'.format(
                args.data_dir, needed))
    if args.restart:
        shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    common = ['--data-dir', args.data_dir, '--seed', str(args.seed), '--full-data']
    tasks = {}
    for name in args.systems:
        system = SYSTEMS[name]
        os.makedirs(os.path.join(args.out, name), exist_ok=True)
        tasks[name, 'detector'] = ('03_train_detector.py', system['detector'] + common,
                                   os.path.join(args.out, name, 'detector'),
                                   args.detector_minutes)
        if not isinstance(system['classifier'], str):
            tasks[name, 'classifier'] = ('04_train_classifier.py',
                                         system['classifier'] + common + ['--val-samples',
                                                                          '1000'],
                                         os.path.join(args.out, name, 'classifier'),
                                         args.classifier_minutes)
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = {key: pool.submit(train_within, *task) for key, task in tasks.items()}
        trained = {key: future.result() for key, future in futures.items()}

    def classifier_of(name):
        reused = SYSTEMS[name]['classifier']
        return trained[(reused if isinstance(reused, str) else name), 'classifier']

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda n: score_system(n, trained[n, 'detector'],
                                                    classifier_of(n), args), args.systems))
    fileio.write_json(os.path.join(args.out, 'side_by_side.json'), {
        'detector_minutes': args.detector_minutes,
        'classifier_minutes': args.classifier_minutes, 'seed': args.seed, 'rows': rows})
    print(table(rows))
    print('detector / classifier iterations: ' + ', '.join(
        '{} {} / {}'.format(r['system'], r['detector_iterations'], r['classifier_iterations'])
        for r in rows))


if __name__ == '__main__':
    np.seterr(all='ignore')
    main()
