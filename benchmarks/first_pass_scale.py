#!/usr/bin/env python
"""How well a cheaper first pass measures the adaptive scale of the TTA.

    python benchmarks/first_pass_scale.py results/demo/detector/model_final.npz \\
        results/demo/classifier-finetune/model_final.npz \\
        --data-dir data/kuzushiji-recognition-synthetic [--images ../shared/real_sample]

The adaptive-scale TTA (``kr.detector.tta.AdaptiveScaleDetector``) runs a first pass only to
measure the mean character size; the original runs it at the detector's standard shorter
side (832). For each page (the synthetic test pages of ``--data-dir`` and any images of
``--images``) this prints, for each shorter side of ``--sides``, how far the scale measured
there is from the one measured at 832 (``|s / s_832 - 1|``, median and largest), how many
pages find no character at that side but do at 832, and on how many pages the three TTA
passes get exactly the network inputs they get with the 832 first pass (so the same
detections), with the detector run by ONNX Runtime (or Chainer with ``--backend chainer``).
"""

import argparse
import json
import os

import numpy as np

from kr.datasets.image import load_image
from kr.datasets.image import to_array
from kr.detector.tta import AdaptiveScaleDetector
from kr.inference import load_recognizer

#: Shorter sides of the first pass compared with the standard one.
SIDES = (320, 416, 512, 640)
#: Image files read from ``--images``.
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.tif', '.tiff')


def pages(data_dir: str, images_dir: str):
    """``(source, name, image)`` of the test pages and of the images of a folder."""
    if data_dir:
        test_dir = os.path.join(data_dir, 'test_images')
        for name in sorted(os.listdir(test_dir)):
            yield 'synthetic', name, to_array(load_image(os.path.join(test_dir, name)))
    if images_dir:
        for name in sorted(os.listdir(images_dir)):
            if name.lower().endswith(IMAGE_SUFFIXES):
                yield 'images', name, to_array(load_image(os.path.join(images_dir, name)))


def tta_sizes(detector, tta, image, scale):
    """Network input sizes of the TTA passes at ``scale``."""
    h, w = image.shape[:2]
    return [tuple(detector.network_size(h, w, tta.base_min_side * scale * s))
            for s in tta.scales]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('detector', help='detector weights (args.json beside them)')
    p.add_argument('classifier', help='classifier weights (needed to build the recognizer)')
    p.add_argument('--data-dir', default=None, help='a data folder: its test pages')
    p.add_argument('--images', default=None, help='a folder of page images')
    p.add_argument('--sides', type=int, nargs='+', default=list(SIDES),
                   help='first-pass shorter sides to compare with the standard one')
    p.add_argument('--backend', choices=('chainer', 'onnxruntime'), default='onnxruntime')
    args = p.parse_args(argv)
    if not args.data_dir and not args.images:
        p.error('give --data-dir or --images (or both)')
    recognizer = load_recognizer(args.detector, args.classifier, backend=args.backend)
    detector, threshold = recognizer.detector, recognizer.detection_threshold
    original = AdaptiveScaleDetector(detector)
    rows = []
    for source, name, image in pages(args.data_dir, args.images):
        scale, found = original.adaptive_scale(image, threshold)
        row = {'source': source, 'page': name, 'scale_832': scale, 'found_832': found}
        for side in args.sides:
            tta = AdaptiveScaleDetector(detector, first_min_side=side)
            s, f = tta.adaptive_scale(image, threshold)
            row[side] = {'scale': s, 'found': f,
                         'same_passes': f == found and tta_sizes(detector, tta, image, s)
                         == tta_sizes(detector, original, image, scale)}
        rows.append(row)
        print('# {:<10} {:<32} scale at 832 {:.3f}  '.format(source, name, scale) + '  '.join(
            '{}: {:.3f}'.format(side, row[side]['scale']) for side in args.sides), flush=True)
    print('\n  {:<10} {:>5} {:>6} {:>14} {:>12} {:>9} {:>12}'.format(
        'pages', 'side', 'count', 'median |s/s0-1|', 'max |s/s0-1|', 'lost', 'same passes'))
    summary = []
    for source in sorted({r['source'] for r in rows}):
        group = [r for r in rows if r['source'] == source]
        for side in args.sides:
            both = [r for r in group if r['found_832'] and r[side]['found']]
            err = [abs(r[side]['scale'] / r['scale_832'] - 1) for r in both]
            lost = sum(r['found_832'] and not r[side]['found'] for r in group)
            same = sum(bool(r[side]['same_passes']) for r in group)
            item = {'pages': source, 'side': side, 'count': len(group),
                    'median_rel_diff': float(np.median(err)) if err else None,
                    'max_rel_diff': float(max(err)) if err else None,
                    'lost': int(lost), 'same_passes': int(same)}
            summary.append(item)
            print('  {:<10} {:>5} {:>6} {:>14} {:>12} {:>9} {:>12}'.format(
                source, side, len(group),
                '-' if not err else '{:.4f}'.format(item['median_rel_diff']),
                '-' if not err else '{:.4f}'.format(item['max_rel_diff']), lost,
                '{}/{}'.format(same, len(group))))
    print(json.dumps(summary))


if __name__ == '__main__':
    main()
