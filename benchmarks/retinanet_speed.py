#!/usr/bin/env python
"""Training-step time of the RetinaNet ``demo`` preset next to CenterNet's, back to back.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/retinanet_speed.py \\
        --data-dir data/kuzushiji-recognition-synthetic [--rounds 3] [--repeat 3]

Builds each family's ``demo`` training examples from the same pages (CenterNet: 192 px
crops, batch 8; RetinaNet: half-page patches at 256 px, batch 8), then times
``repeat`` optimizer updates of one family, then of the other, ``rounds`` times, and prints
the median seconds per iteration of each and the time of its whole preset run (iterations
x median, validation excluded). On a busy machine the ratio is the figure to read: both
run under the same load.
"""

import argparse
import statistics
import time

import kr  # noqa: F401  (before chainer: kr/_compat.py, Python 3.12+ and NumPy 2)
import chainer
import numpy as np

from kr.detector import DETECTORS
from kr.training import resolve_preset


def _setup(name, data_dir, split_dir):
    """``(update, iterations)`` of a family's demo preset on its first batch."""
    training = DETECTORS[name].training()
    settings = resolve_preset(training.train_detector, training.PRESETS, 'demo')
    np.random.seed(0)
    if name == 'centernet':
        model = training.Res18UnetCenterNet(width=settings['width'])
        chain = training.CenterNetTrainChain(model)
        train, _, _ = training.make_datasets(data_dir, split_dir,
                                             crop_size=settings['crop_size'], seed=0)
        converter = training.centernet_converter
    else:
        model = training.RetinaNetResNet(
            depth=settings['depth'], width=settings['width'],
            input_size=settings['input_size'], patch_fraction=settings['patch_fraction'],
            anchor_scale=settings['anchor_scale'], head_norm=settings['head_norm'])
        chain = training.RetinaNetTrainChain(model)
        train, _, _ = training.make_datasets(data_dir, split_dir,
                                             input_size=settings['input_size'],
                                             patch_fraction=settings['patch_fraction'], seed=0)
        converter = training.fixed_size_converter
    optimizer = chainer.optimizers.Adam(alpha=settings['lr'])
    optimizer.setup(chain)
    batch = converter([train[i] for i in range(settings['batchsize'])],
                      chainer.get_device('@numpy'))
    optimizer.update(chain, *batch)  # warm-up: numba compilation, allocations
    return (lambda: optimizer.update(chain, *batch)), settings['iterations']


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data-dir', required=True)
    p.add_argument('--split-dir')
    p.add_argument('--rounds', type=int, default=3, help='alternations of the two families')
    p.add_argument('--repeat', type=int, default=3, help='updates timed per round')
    args = p.parse_args(argv)
    families = ('centernet', 'retinanet')
    runs = {name: _setup(name, args.data_dir, args.split_dir) for name in families}
    times = {name: [] for name in families}
    for _ in range(args.rounds):
        for name in families:
            update, _ = runs[name]
            start = time.perf_counter()
            for _ in range(args.repeat):
                update()
            times[name].append((time.perf_counter() - start) / args.repeat)
    for name in families:
        median = statistics.median(times[name])
        print('{:10s} demo: {:.3f} s/iter (median of {}), {} iterations: {:.0f} s'.format(
            name, median, args.rounds, runs[name][1], median * runs[name][1]))
    print('ratio retinanet / centernet (whole run): {:.2f}'.format(
        statistics.median(times['retinanet']) * runs['retinanet'][1]
        / (statistics.median(times['centernet']) * runs['centernet'][1])))


if __name__ == '__main__':
    main()
