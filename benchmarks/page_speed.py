#!/usr/bin/env python
"""Seconds to recognise one real-size page end to end: Chainer against ONNX Runtime.

    python benchmarks/page_speed.py                                   # untrained models
    python benchmarks/page_speed.py --backends onnxruntime --int8      # the int8 models
    python benchmarks/page_speed.py --detector results/detector/model_700.npz \\
        --classifier results/classifier/model_1000.npz --data-dir data/kuzushiji-recognition

One synthetic page of 2,400 x 3,900 pixels (``kr.synthetic.render_page``, resized) goes
through adaptive-scale TTA detection (a pass at shorter side 832, then three at 0.8 / 1.0 /
1.25 of the adaptive scale, merged by box voting) and classification of every box
(cropping, resizing and the classifier), as ``kr.inference.PageRecognizer`` does, with the
Chainer models (our CPU kernels) and with the same models exported to ONNX and run by
ONNX Runtime. Prints the median seconds per page over ``--repeat`` rounds (the backends
take turns; one warm-up round), the process's CPU seconds (less disturbed by other jobs on
the machine than the wall time; with ``--threads 1``, the work itself), and each detector
pass with its network input and seconds.

With trained weights (each beside its run's args.json) the page is recognised exactly as by
``PageRecognizer``. Untrained weights find nothing meaningful, so then the adaptive scale is
fixed (``--fixed-scale``, default 1.0: the scale of pages whose characters already measure
35 px at shorter side 832, where the middle TTA pass is the first pass and runs once; 0.9
gives four passes) and the page's true character boxes stand in for the detections: the
work is that of a real page. ``--int8`` runs the int8 detector and classifier
(``kr.onnx.quantize``, calibrated on synthetic pages and crops of their characters),
``--first-pass-side`` a cheaper first pass. Needs the onnx extra (``pip install -e
".[onnx]"``) for the ONNX Runtime row.

Measured with the full-size untrained models (width-1.0 detector, MobileNetV3-Large), ONNX
Runtime, ``--threads 1``, on the 2-core machine while other jobs kept its load average at
6-12 (wall times 2-4x an idle machine's; CPU seconds steadier but also raised by the load,
so the rows were run back to back, twice, against main's code). CPU seconds per page, the
two rounds::

    main before issue 10 item 6 (ConvTranspose, 4 passes at scale 1.0)   5.93  6.62
    float: sub-pixel convolutions, first pass reused, classifier rewrites 4.00  4.55
    int8 detector (--int8), scale 1.0 (3 passes)                          1.83  1.87
    int8 detector, --fixed-scale 0.9 (4 passes)                           2.17  2.12

Then, the same way (scale 1.0, ``--int8``; main's code of then, 1.06 s idle, as the
baseline, run back to back with each change)::

    baseline: int8 detector, float classifier                             1.88  1.89  1.86  1.82
    interleaves in NHWC on uint8 (kr.onnx.optimize.nhwc_depth_to_space)   1.71  1.63
    and the head an integer product with a float output                   1.64  1.62  1.54  1.49
    and the int8 classifier (--int8 now quantises both)                   1.43  1.40

(the first three rows' last two rounds and the fourth row are one back-to-back series; the
classification's share went from 0.33 to 0.19-0.21 s of wall time). Scaled by these ratios
the idle 1.06 s comes to about 0.82 s.

Earlier single runs, one after another: float at scale 1.0 3.61 and at 0.9 4.12 (before
the classifier rewrites), int8 with ``--first-pass-side`` 640 / 512 2.05 / 1.95.

Timed on the idle 2 cores (load average 0.8; wall seconds, median of 3 rounds, 2 threads)::

    python benchmarks/page_speed.py --backends onnxruntime --int8 --repeat 3
        0.80 s a page: detection 0.66 s (passes 0.20 / 0.14 / 0.32 s), classification 0.15 s
    ... --fixed-scale 0.9 (four passes)        0.89 s: detection 0.75 s, classification 0.15 s
    python benchmarks/page_speed.py --backends onnxruntime --repeat 3   (float)
        1.94 s a page: detection 1.77 s, classification 0.17 s

(main before issue 10's item 6: 2.85 s in float; 1.06 s with the first int8 detector).
ONNX Runtime threads that spin between operators instead of sleeping
(``session.intra_op.allow_spinning`` 1) took 0.83 s and 1.57 CPU seconds instead of 0.80 s
and 1.37 on the idle machine too, so :data:`kr.onnx.runtime.SESSION_CONFIG` keeps them
sleeping.
"""

import argparse
import json
import os
import tempfile
import time

import cv2
import numpy as np

from kr.bbox import xywh_to_xyxy
from kr.classifier import load_classifier
from kr.classifier import MobileNetV3
from kr.detector import AdaptiveScaleDetector
from kr.detector import Res18UnetCenterNet
from kr.inference import load_detector
from kr.inference import PageRecognizer
from kr.synthetic import render_page

#: Page size of the benchmark (width, height), a large page of the real data.
PAGE_SIZE = (2400, 3900)
#: Classes of the untrained classifier (the real class table).
N_CLASSES = 4787


class FixedScaleTTA(AdaptiveScaleDetector):
    """Adaptive-scale TTA whose first pass always yields the scale ``fixed_scale``
    (untrained weights find nothing to measure); at 1.0 the same passes as on a page of
    35 px characters."""

    fixed_scale = 1.0

    def _scale(self, image, detections):
        return self.fixed_scale, True


class TimedDetector:
    """A detector whose ``detect`` calls are timed (``passes``: ``(network size, seconds)``)."""

    def __init__(self, detector):
        self.detector = detector
        self.min_side = detector.min_side
        self.passes = []

    def network_size(self, height, width, min_side):
        return self.detector.network_size(height, width, min_side)

    def detect(self, image, min_side, score_threshold=None):
        start = time.perf_counter()
        out = self.detector.detect(image, min_side=min_side, score_threshold=score_threshold)
        self.passes.append((self.network_size(image.shape[0], image.shape[1], min_side),
                            time.perf_counter() - start))
        return out


class IndexMapping:
    """Class index -> a private-use code point (when no class table is given)."""

    def index_to_unicode(self, index):
        return 'U+{:04X}'.format(0xE000 + int(index))

    def index_to_char(self, index):
        return chr(0xE000 + int(index))


def calibration(args):
    """Calibration pages of the int8 models, with their character boxes: training pages
    of ``--data-dir``, else synthetic pages of the benchmark size (other seeds than the
    timed page's)."""
    from kr.onnx.quantize import CALIBRATION_PAGES
    from kr.onnx.quantize import calibration_pages
    if args.data_dir:
        return calibration_pages(args.data_dir, boxes=True)
    return [make_page(seed) for seed in range(1, CALIBRATION_PAGES + 1)]


def make_page(seed: int = 0):
    """``(image (3900, 2400, 3) uint8, true boxes (R, 4) float32 xyxy)``."""
    page = render_page(np.random.default_rng(seed), page_height=PAGE_SIZE[1])
    h, w = page.image.shape[:2]
    image = cv2.resize(page.image, PAGE_SIZE, interpolation=cv2.INTER_AREA)
    scale = np.array([PAGE_SIZE[0] / w, PAGE_SIZE[1] / h] * 2, dtype=np.float32)
    boxes = xywh_to_xyxy(np.asarray(page.bboxes, dtype=np.float32))
    return image, (boxes * scale).astype(np.float32)


class PageRun:
    """One backend: detect with TTA (or stand-in boxes) and classify, timed apart."""

    def __init__(self, detector, classifier, mapping, trained: bool, threshold: float,
                 first_min_side: int = None, fixed_scale: float = 1.0):
        self.recognizer = PageRecognizer(detector, classifier, mapping,
                                         detection_threshold=threshold,
                                         class_threshold=0.5 if trained else 0.0)
        self.timed = TimedDetector(detector)
        self.tta = (AdaptiveScaleDetector if trained else FixedScaleTTA)(
            self.timed, first_min_side=first_min_side)
        self.tta.fixed_scale = fixed_scale
        self.trained = trained
        self.threshold = threshold

    def __call__(self, image, true_boxes):
        self.timed.passes.clear()
        cpu = time.process_time()
        start = time.perf_counter()
        bboxes, scores = self.tta.detect(image, score_threshold=self.threshold)
        if not self.trained:
            bboxes, scores = true_boxes, np.ones(len(true_boxes), np.float32)
        middle = time.perf_counter()
        characters = self.recognizer.classify(image, bboxes, scores)
        end = time.perf_counter()
        return {'detect_s': middle - start, 'classify_s': end - middle,
                'total_s': end - start, 'cpu_s': time.process_time() - cpu,
                'boxes': len(bboxes), 'characters': len(characters),
                'passes': list(self.timed.passes)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--detector', default=None, help='detector weights (else untrained)')
    p.add_argument('--classifier', default=None, help='classifier weights (else untrained)')
    p.add_argument('--data-dir', default=None,
                   help="folder whose unicode_translation.csv is the classifier's classes")
    p.add_argument('--backends', nargs='+', choices=('chainer', 'onnxruntime'),
                   default=['chainer', 'onnxruntime'])
    p.add_argument('--threshold', type=float, default=None,
                   help='detection threshold (default: the submission threshold)')
    p.add_argument('--threads', type=int, default=None,
                   help='ONNX Runtime intra-op threads (default: the usable cores)')
    p.add_argument('--repeat', type=int, default=3, help='timed rounds (after a warm-up)')
    p.add_argument('--first-pass-side', type=int, default=None,
                   help="shorter side of the TTA's first pass (default: the detector's, 832)")
    p.add_argument('--fixed-scale', type=float, default=1.0,
                   help='untrained weights: the adaptive scale to use (default: %(default)s; '
                        'at 1.0 the middle TTA pass is the first pass and runs once)')
    p.add_argument('--int8', action='store_true',
                   help='ONNX Runtime: the int8 detector and classifier, calibrated on '
                        'training pages of --data-dir and crops of their characters (else on '
                        'synthetic pages of the benchmark size)')
    args = p.parse_args(argv)
    if (args.detector is None) != (args.classifier is None):
        p.error('give both --detector and --classifier, or neither')
    from kr.detector.centernet.model import SUBMISSION_SCORE_THRESHOLD
    threshold = SUBMISSION_SCORE_THRESHOLD if args.threshold is None else args.threshold
    trained = args.detector is not None
    if trained:
        detector, classifier = load_detector(args.detector), load_classifier(args.classifier)
    else:
        np.random.seed(0)
        detector, classifier = Res18UnetCenterNet(), MobileNetV3(N_CLASSES)
    if args.data_dir:
        from kr.datasets.unicode_mapping import KuzushijiUnicodeMapping
        mapping = KuzushijiUnicodeMapping(args.data_dir)
    else:
        mapping = IndexMapping()
    image, true_boxes = make_page()
    print('# page {} x {} px, {} true characters; {} weights; {} cores, load average {:.2f}'
          .format(image.shape[1], image.shape[0], len(true_boxes),
                  'trained' if trained else 'untrained (scale fixed, true boxes '
                  'classified)', len(os.sched_getaffinity(0)), os.getloadavg()[0]))
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        if 'chainer' in args.backends:
            runs['chainer'] = PageRun(detector, classifier, mapping, trained, threshold,
                                      args.first_pass_side, args.fixed_scale)
        if 'onnxruntime' in args.backends:
            try:
                from kr.onnx import export_models
                from kr.onnx import load_onnx_models
                export_models(detector, classifier, tmp,
                              int8_calibration=calibration(args) if args.int8 else None)
                runs['onnxruntime'] = PageRun(*load_onnx_models(tmp, threads=args.threads),
                                              mapping, trained, threshold, args.first_pass_side,
                                              args.fixed_scale)
            except ImportError as e:
                print('# onnxruntime skipped: {} (pip install -e ".[onnx]")'.format(e))
        results = {name: [] for name in runs}
        for round_ in range(args.repeat + 1):
            for name, run in runs.items():
                result = run(image, true_boxes)
                if round_:
                    results[name].append(result)
    print('# first pass at shorter side {}; {} detector{}'.format(
        args.first_pass_side or 'the standard (832)', 'int8' if args.int8 else 'float',
        '' if trained else '; scale fixed at {}'.format(args.fixed_scale)))
    print('\n  {:<12} {:>9} {:>11} {:>9} {:>7} {:>7} {:>11}'.format(
        'backend', 'detect s', 'classify s', 'total s', 'CPU s', 'boxes', 'characters'))
    summary = []
    for name, rows in results.items():
        row = {key: float(np.median([r[key] for r in rows])) for key in rows[0]
               if key != 'passes'}
        row['passes'] = [{'size': list(rows[0]['passes'][i][0]),
                          'seconds': float(np.median([r['passes'][i][1] for r in rows]))}
                         for i in range(len(rows[0]['passes']))]
        row['backend'] = name
        summary.append(row)
        print('  {:<12} {:9.2f} {:11.2f} {:9.2f} {:7.2f} {:7d} {:11d}'.format(
            name, row['detect_s'], row['classify_s'], row['total_s'], row['cpu_s'],
            int(row['boxes']), int(row['characters'])))
    for row in summary:
        print('  {} passes: {}'.format(row['backend'], ', '.join(
            '{}x{} {:.2f} s'.format(p['size'][1], p['size'][0], p['seconds'])
            for p in row['passes'])))
    print(json.dumps(summary))


if __name__ == '__main__':
    main()
