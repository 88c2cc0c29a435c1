#!/usr/bin/env python
"""Speed of the CenterNet detector: training step and page inference.

    python benchmarks/detector_speed.py [--width 1.0] [--device 0]

Prints forward+backward seconds per iteration (batch 16 of 416 x 416 crops, NesterovAG
update included) and inference seconds per page (a 2:3 page detected at shorter side 832,
with and without adaptive-scale TTA), on the CPU and, when CuPy sees one, on GPU 0
(or on ``--device`` only). Weights are random, so the TTA pass is forced to scale 1.0
(one pass at 832 and three at 0.8 / 1.0 / 1.25 x 832, as on a page of 35 px characters).
"""

import argparse
import time

import kr  # noqa: F401  (before chainer: kr/_compat.py, Python 3.12+ and NumPy 2)
import chainer
import numpy as np

from kr.devices import get_device
from kr.detector.centernet.model import Res18UnetCenterNet
from kr.detector.centernet.training import CenterNetTrainChain
from kr.detector.tta import AdaptiveScaleDetector


class _ScaleOneTTA(AdaptiveScaleDetector):
    """Adaptive-scale TTA whose first pass always yields scale 1.0 (random weights find
    nothing meaningful to measure)."""

    def adaptive_scale(self, image, score_threshold=None):
        self.detector.detect(image, min_side=self.base_min_side, score_threshold=score_threshold)
        return 1.0, True


def _sync(device):
    if device.xp is not np:
        device.xp.cuda.Device().synchronize()


def _timed(fn, device, repeat):
    fn()  # warm-up: allocations, cuDNN autotuning
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeat


def bench_train(device, width, batchsize, size, repeat):
    """Seconds per forward+backward+update of a batch."""
    model = Res18UnetCenterNet(width=width)
    chain = CenterNetTrainChain(model)
    chain.to_device(device)
    optimizer = chainer.optimizers.NesterovAG(lr=1e-3)
    optimizer.setup(chain)
    rng = np.random.RandomState(0)
    s = size // model.stride
    mask = np.zeros((batchsize, s, s), np.float32)
    mask[:, ::8, ::8] = 1
    heatmap = rng.uniform(0, 0.9, (batchsize, 1, s, s)).astype(np.float32)
    heatmap[:, 0][mask > 0] = 1
    batch = [rng.randn(batchsize, 3, size, size).astype(np.float32), heatmap,
             rng.uniform(1, 10, (batchsize, 2, s, s)).astype(np.float32),
             rng.uniform(0, 1, (batchsize, 2, s, s)).astype(np.float32), mask]
    batch = [device.send(a) for a in batch]
    return _timed(lambda: optimizer.update(chain, *batch), device, repeat)


def bench_inference(device, width, min_side, repeat):
    """Seconds per page without and with TTA."""
    model = Res18UnetCenterNet(width=width)
    model.to_device(device)
    page = (np.random.RandomState(0).rand(min_side * 3 // 2, min_side, 3) * 255).astype(np.uint8)
    plain = _timed(lambda: model.detect(page, min_side=min_side), device, repeat)
    tta = _ScaleOneTTA(model, base_min_side=min_side)
    with_tta = _timed(lambda: tta.detect(page), device, repeat)
    return plain, with_tta


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default=None,
                   help='only this device (default: the CPU, and GPU 0 when available)')
    p.add_argument('--width', type=float, default=1.0, help='network width (default: 1.0)')
    p.add_argument('--batchsize', type=int, default=16)
    p.add_argument('--size', type=int, default=416, help='training crop side')
    p.add_argument('--min-side', type=int, default=832, help='inference shorter side')
    p.add_argument('--repeat', type=int, default=2, help='timed repetitions (after a warm-up)')
    args = p.parse_args(argv)

    if args.device is not None:
        devices = [args.device]
    else:
        devices = ['-1']
        try:
            import cupy
            if cupy.cuda.runtime.getDeviceCount() > 0:
                devices.append('0')
        except Exception:
            pass
    for spec in devices:
        device = get_device(spec)
        device.use()
        train = bench_train(device, args.width, args.batchsize, args.size, args.repeat)
        plain, tta = bench_inference(device, args.width, args.min_side, args.repeat)
        print('{} width {}: train {:.3f} s/iter (batch {}, {}x{}); inference {:.3f} s/page, '
              'with TTA {:.3f} s/page ({}x{} page)'.format(
                  device, args.width, train, args.batchsize, args.size, args.size, plain, tta,
                  args.min_side * 3 // 2, args.min_side))


if __name__ == '__main__':
    main()
