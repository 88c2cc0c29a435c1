#!/usr/bin/env python
"""Speed of the character classifiers: training step and inference, per architecture.

    python benchmarks/classifier_speed.py                      # every model, CPU (+ GPU 0)
    python benchmarks/classifier_speed.py --models mobilenetv3 --devices -1 --repeat 3

For each model and device prints the seconds of one forward+backward pass (with the
optimizer update) on a batch of 64 crops of 112 x 112, and the crops per second of
``classify`` on a synthetic page. The GPU is used when CuPy sees one (or when named in
``--devices``). The last line is a JSON list of all measurements.
"""

import argparse
import json
import time

import kr  # noqa: F401  (before chainer: kr/_compat.py, Python 3.12+ and NumPy 2)
import chainer
import chainer.links as L
import numpy as np

from kr.classifier import CLASSIFIERS
from kr.devices import get_device


def _gpu_available() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _synchronize(device) -> None:
    if device.xp is not np:
        device.device.synchronize()


def time_train_step(model_name, device, batchsize, size, n_classes, repeat, width):
    """Mean seconds of one training iteration (forward, backward, NesterovAG update)."""
    predictor = CLASSIFIERS[model_name](n_classes, width=width, input_size=size)
    model = L.Classifier(predictor)
    model.to_device(device)
    optimizer = chainer.optimizers.NesterovAG(lr=0.01)
    optimizer.setup(model)
    rng = np.random.RandomState(0)
    x = device.send(rng.uniform(-1, 1, (batchsize, 3, size, size)).astype(np.float32))
    t = device.send(rng.randint(0, n_classes, batchsize).astype(np.int32))
    times = []
    for i in range(repeat + 1):  # the first pass (allocations, cuDNN autotune) is not timed
        _synchronize(device)
        start = time.perf_counter()
        optimizer.update(model, x, t)
        _synchronize(device)
        if i:
            times.append(time.perf_counter() - start)
    return float(np.mean(times))


def time_classify(model_name, device, n_boxes, size, n_classes, repeat, width):
    """Crops per second of ``classify`` (cropping, resizing and the forward pass)."""
    model = CLASSIFIERS[model_name](n_classes, width=width, input_size=size)
    model.to_device(device)
    rng = np.random.RandomState(0)
    page = rng.randint(0, 255, (2400, 1600, 3)).astype(np.uint8)
    xy = rng.uniform(0, [1500, 2300], (n_boxes, 2))
    wh = rng.uniform(30, 100, (n_boxes, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    model.classify(page, boxes[:8])
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeat):
        model.classify(page, boxes)
    _synchronize(device)
    return n_boxes * repeat / (time.perf_counter() - start)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', nargs='+', choices=sorted(CLASSIFIERS), default=list(CLASSIFIERS))
    p.add_argument('--devices', nargs='+', default=None,
                   help='Chainer devices (default: -1, plus 0 when a GPU is present)')
    p.add_argument('--batchsize', type=int, default=64)
    p.add_argument('--size', type=int, default=112)
    p.add_argument('--width', type=float, default=1.0)
    p.add_argument('--classes', type=int, default=4787,
                   help='output classes (default: the real class table)')
    p.add_argument('--boxes', type=int, default=256, help='boxes per classify call')
    p.add_argument('--repeat', type=int, default=2)
    args = p.parse_args(argv)
    devices = args.devices or (['-1', '0'] if _gpu_available() else ['-1'])
    results = []
    for spec in devices:
        device = get_device(spec)
        device.use()
        for name in args.models:
            step = time_train_step(name, device, args.batchsize, args.size, args.classes,
                                   args.repeat, args.width)
            rate = time_classify(name, device, args.boxes, args.size, args.classes,
                                 args.repeat, args.width)
            results.append({'model': name, 'device': str(device), 'batchsize': args.batchsize,
                            'size': args.size, 'width': args.width,
                            'train_s_per_batch': round(step, 4),
                            'classify_crops_per_s': round(rate, 1)})
            print('{:<12} {:<10} train {:8.3f} s/batch of {}   classify {:9.1f} crops/s'.format(
                name, str(device), step, args.batchsize, rate), flush=True)
    print(json.dumps(results))


if __name__ == '__main__':
    main()
