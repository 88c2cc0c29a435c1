#!/usr/bin/env python
"""How well RetinaNet's anchors fit the characters: the choice of ``anchor_scale``.

    python benchmarks/retinanet_anchor_coverage.py \\
        --data-dir data/kuzushiji-recognition-synthetic [--input-size 512] \\
        [--patch-fraction 0.5] [--pages 10] [--scales 1,1.5,2,4]

Takes training examples as :class:`kr.detector.fixed_size.FixedSizeTrainTransform` makes
them (the whole page, or a random patch, resized to the input size) from the first train
pages of fold 0, and prints for each anchor scale (P3-P7, 2 and 3 scales per octave,
ratios 0.5 / 1 / 2) the share of the characters whose best anchor has IoU >= 0.5 (the rest
are only learned through the forced match), the mean number of anchors of IoU >= 0.5 per
character, and the median best IoU; and the characters' heights and widths.
"""

import argparse

import kr  # noqa: F401  (before chainer: kr/_compat.py, Python 3.12+ and NumPy 2)
import numpy as np

from kr.bbox import iou_matrix
from kr.datasets import KuzushijiPageDataset
from kr.detector.fixed_size import FixedSizeTrainTransform
from kr.detector.retinanet.anchors import pyramid_anchors


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data-dir', required=True)
    p.add_argument('--split-dir')
    p.add_argument('--input-size', type=int, default=512)
    p.add_argument('--patch-fraction', type=float, help='patches (default: whole pages)')
    p.add_argument('--pages', type=int, default=10)
    p.add_argument('--scales', default='1,1.5,2,4', help='anchor scales, comma-separated')
    args = p.parse_args(argv)
    pages = KuzushijiPageDataset(args.data_dir, 'train', 0, args.split_dir)
    transform = FixedSizeTrainTransform(args.input_size, args.patch_fraction, seed=0)
    boxes = [transform(pages[i])[1].astype(np.float64)
             for i in range(min(args.pages, len(pages)))]
    every = np.concatenate(boxes)
    print('{} characters on {} examples at {} px ({}): height {} width {} px (5/50/95%)'.format(
        len(every), len(boxes), args.input_size,
        'patches of {}'.format(args.patch_fraction) if args.patch_fraction else 'whole pages',
        np.percentile(every[:, 3] - every[:, 1], [5, 50, 95]).round(1).tolist(),
        np.percentile(every[:, 2] - every[:, 0], [5, 50, 95]).round(1).tolist()))
    shapes = [(-(-args.input_size // 2 ** level),) * 2 for level in range(3, 8)]
    for scale in (float(s) for s in args.scales.split(',')):
        for per_octave in (2, 3):
            anchors = np.concatenate(pyramid_anchors(shapes, 3, scale, per_octave,
                                                     '0.5,1,2')).astype(np.float64)
            best, n_good = [], []
            for b in boxes:
                if len(b):
                    iou = iou_matrix(anchors, b)
                    best.append(iou.max(axis=0))
                    n_good.append((iou >= 0.5).sum(axis=0))
            best, n_good = np.concatenate(best), np.concatenate(n_good)
            print('anchor scale {:4.2f} ({:5.1f} px at P3), {} per octave: IoU >= 0.5 for '
                  '{:.3f}, {:5.2f} such anchors per character, median best IoU {:.2f}'.format(
                      scale, scale * 8, per_octave, (best >= 0.5).mean(), n_good.mean(),
                      np.median(best)))


if __name__ == '__main__':
    main()
