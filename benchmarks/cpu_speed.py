#!/usr/bin/env python
"""CPU speed of the two networks: Chainer (stock), Chainer (our kernels), ONNX Runtime, PyTorch.

    python benchmarks/cpu_speed.py                          # both networks, every backend
    python benchmarks/cpu_speed.py --models mobilenetv3 --repeat 7 --profile
    python benchmarks/cpu_speed.py --models resnet18unet --det-batch 4

Times one training step (forward, backward and a Nesterov momentum SGD update) and one
inference pass of the same batch, for MobileNetV3-Large (64 crops of 112 x 112, 4,787
classes) and the ResNet18-UNet CenterNet (16 crops of 416 x 416), and prints medians over
``--repeat`` rounds, as ratios to PyTorch. The backends take turns within each round, so a
change in the machine's load reaches all of them alike. The detector's training loss is the
mean square of its output for every backend (the CenterNet loss costs little next to the
network); the classifier's is the softmax cross-entropy.

* "chainer-stock": Chainer's own functions (``kr.functions.stock_kernels``);
* "chainer-ours": the models as they run by default, with the CPU kernels of
  ``kr.functions`` (numba depthwise convolution and batch normalisation, one
  matrix product per sample for the dense convolutions);
* "onnxruntime": inference of the models exported by ``kr.onnx`` (needs the onnx extra:
  ``pip install -e ".[onnx]"``);
* "pytorch": twins of both architectures written below with ``torch.nn`` (same layers,
  shapes and parameter counts, checked at start). PyTorch is a benchmark-only dependency:
  ``pip install torch==2.13.0`` (or, for a CPU-only wheel, ``pip install torch==2.13.0+cpu``
  where the index offers it); without it the column is skipped.

``--profile`` adds the per-function forward/backward seconds of one "chainer-ours" training
step (a :class:`chainer.function_hooks.TimerHook` that does not count nested calls twice).
The last line is a JSON list of all measurements.
"""

import argparse
import collections
import json
import os
import platform
import tempfile
import time

import kr  # noqa: F401  (before chainer: kr/_compat.py, Python 3.12+ and NumPy 2)
import chainer
import chainer.functions as F
import numpy as np
from chainer.function_hooks import TimerHook

from kr.classifier import MobileNetV3
from kr.functions import CONFIG_KEY
from kr.detector import Res18UnetCenterNet

BACKENDS = ('chainer-stock', 'chainer-ours', 'onnxruntime', 'pytorch')


# ------------------------------------------------------------------------------------------
# PyTorch twins of the two architectures (imported only when torch is)

def _torch_twins():
    """``(TorchMobileNetV3, TorchResNet18UNet)`` classes, built on :mod:`torch.nn`."""
    import torch
    from torch import nn

    from kr.classifier.layers import make_divisible
    from kr.classifier.mobilenetv3 import HEAD_CH
    from kr.classifier.mobilenetv3 import LARGE_BLOCKS
    from kr.classifier.mobilenetv3 import LAST_CONV_CH
    from kr.classifier.mobilenetv3 import SE_REDUCTION
    from kr.classifier.mobilenetv3 import STEM_CH
    from kr.detector.centernet.backbone import STAGE_CHANNELS
    from kr.detector.centernet.backbone import STEM_CHANNELS

    def conv_bn(cin, cout, k, stride=1, groups=1, act=None):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout, eps=2e-5, momentum=0.1)]
        return nn.Sequential(*(layers + ([act] if act is not None else [])))

    class SqueezeExcite(nn.Module):
        def __init__(self, ch):
            super().__init__()
            mid = make_divisible(ch / SE_REDUCTION)
            self.fc1, self.fc2 = nn.Linear(ch, mid), nn.Linear(mid, ch)

        def forward(self, x):
            w = nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3))))))
            return x * w[:, :, None, None]

    class InvertedResidual(nn.Module):
        def __init__(self, cin, exp, cout, k, stride, se, act):
            super().__init__()
            make_act = nn.ReLU if act == 'RE' else nn.Hardswish
            self.residual = stride == 1 and cin == cout
            self.expand = conv_bn(cin, exp, 1, act=make_act())
            self.depthwise = conv_bn(exp, exp, k, stride, groups=exp, act=make_act())
            self.se = SqueezeExcite(exp) if se else nn.Identity()
            self.project = conv_bn(exp, cout, 1)

        def forward(self, x):
            h = self.project(self.se(self.depthwise(self.expand(x))))
            return h + x if self.residual else h

    class TorchMobileNetV3(nn.Module):
        """MobileNetV3-Large as ``kr.classifier.MobileNetV3`` (width 1)."""

        def __init__(self, n_classes):
            super().__init__()
            self.stem = conv_bn(3, STEM_CH, 3, 2, act=nn.Hardswish())
            self.blocks = nn.Sequential(*[InvertedResidual(*b) for b in LARGE_BLOCKS])
            self.last = conv_bn(LARGE_BLOCKS[-1][2], LAST_CONV_CH, 1, act=nn.Hardswish())
            self.fc = nn.Linear(LAST_CONV_CH, HEAD_CH)
            self.dropout = nn.Dropout(0.2)
            self.out = nn.Linear(HEAD_CH, n_classes)

        def forward(self, x):
            h = self.last(self.blocks(self.stem(x))).mean((2, 3))
            return self.out(self.dropout(nn.functional.hardswish(self.fc(h))))

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = conv_bn(cin, cout, 3, stride, act=nn.ReLU(inplace=True))
            self.conv2 = conv_bn(cout, cout, 3)
            self.shortcut = (conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout
                             else nn.Identity())

        def forward(self, x):
            return torch.relu(self.conv2(self.conv1(x)) + self.shortcut(x))

    class UpBlock(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            mid = max(1, cin // 2)
            self.deconv = nn.Sequential(nn.ConvTranspose2d(cin, mid, 4, 2, 1, bias=False),
                                        nn.BatchNorm2d(mid, eps=2e-5), nn.ReLU(inplace=True))
            self.conv = conv_bn(mid, cout, 3, act=nn.ReLU(inplace=True))

        def forward(self, x):
            return self.conv(self.deconv(x))

    class TorchResNet18UNet(nn.Module):
        """The CenterNet ResNet18-UNet as ``kr.detector.Res18UnetCenterNet`` (width 1)."""

        def __init__(self, n_out):
            super().__init__()
            c1, c2, c3, c4 = STAGE_CHANNELS
            self.stem = conv_bn(3, STEM_CHANNELS, 7, 2, act=nn.ReLU(inplace=True))
            stages, cin = [], STEM_CHANNELS
            for c in STAGE_CHANNELS:
                stages.append(nn.Sequential(BasicBlock(cin, c, 2), BasicBlock(c, c, 1)))
                cin = c
            self.stages = nn.ModuleList(stages)
            self.up1, self.up2, self.up3 = UpBlock(c4, c3), UpBlock(2 * c3, c2), UpBlock(2 * c2, c1)
            self.head = nn.Conv2d(2 * c1, n_out, 3, 1, 1)

        def forward(self, x):
            h, features = self.stem(x), []
            for stage in self.stages:
                h = stage(h)
                features.append(h)
            s4, s8, s16, s32 = features
            h = self.up2(torch.cat([self.up1(s32), s16], 1))
            h = self.up3(torch.cat([h, s8], 1))
            return self.head(torch.cat([h, s4], 1))

    return TorchMobileNetV3, TorchResNet18UNet


# ------------------------------------------------------------------------------------------
# Runners: each has train() and infer(); the timer calls them in turns

class ChainerRunner:
    """A Chainer model; ``kernels`` chooses ours or Chainer's functions."""

    def __init__(self, model, x, t, kernels: bool):
        self.model, self.x, self.t, self.kernels = model, x, t, kernels
        self.optimizer = chainer.optimizers.NesterovAG(lr=1e-4)
        self.optimizer.setup(model)

    def loss(self):
        y = self.model(self.x)
        return F.softmax_cross_entropy(y, self.t) if self.t is not None else F.mean(y * y)

    def train(self):
        with chainer.using_config(CONFIG_KEY, self.kernels):
            self.model.cleargrads()
            self.loss().backward()
            self.optimizer.update()

    def infer(self):
        with chainer.using_config(CONFIG_KEY, self.kernels), \
                chainer.using_config('train', False), chainer.no_backprop_mode():
            self.model(self.x)


class OnnxRunner:
    """Inference of a model exported by :mod:`kr.onnx`."""

    train = None

    def __init__(self, session, x):
        self.session, self.feed = session, {session.get_inputs()[0].name: x}

    def infer(self):
        self.session.run(None, self.feed)


class TorchRunner:
    """The PyTorch twin, trained with SGD + Nesterov momentum."""

    def __init__(self, model, x, t):
        import torch
        self.torch, self.model = torch, model
        self.x = torch.from_numpy(x)
        self.t = None if t is None else torch.from_numpy(t.astype(np.int64))
        self.optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9,
                                         nesterov=True)

    def train(self):
        self.model.train()
        self.optimizer.zero_grad()
        y = self.model(self.x)
        loss = (self.torch.nn.functional.cross_entropy(y, self.t) if self.t is not None
                else (y * y).mean())
        loss.backward()
        self.optimizer.step()

    def infer(self):
        self.model.eval()
        with self.torch.no_grad():
            self.model(self.x)


class LayerProfile(TimerHook):
    """Seconds per function type, forward and backward apart; a function called inside
    another one's forward or backward (a gradient node) counts towards the outer one only."""

    name = 'LayerProfile'

    def __init__(self):
        super().__init__()
        self.forward = collections.Counter()
        self.backward = collections.Counter()
        self._starts = []

    def _push(self):
        self._starts.append(time.perf_counter())

    def _pop(self, table, function):
        elapsed = time.perf_counter() - self._starts.pop()
        if not self._starts:
            table[function.label] += elapsed

    def forward_preprocess(self, function, in_data):
        self._push()

    def forward_postprocess(self, function, in_data):
        self._pop(self.forward, function)

    def backward_preprocess(self, function, in_data, out_grad):
        self._push()

    def backward_postprocess(self, function, in_data, out_grad):
        self._pop(self.backward, function)

    def table(self, total: float, top: int = 12) -> str:
        names = sorted(set(self.forward) | set(self.backward),
                       key=lambda k: -(self.forward[k] + self.backward[k]))
        lines = ['  {:<26} {:>8} {:>8} {:>7}'.format('function', 'fwd s', 'bwd s', 'share')]
        for name in names[:top]:
            t = self.forward[name] + self.backward[name]
            lines.append('  {:<26} {:8.3f} {:8.3f} {:6.1f}%'.format(
                name[:26], self.forward[name], self.backward[name], 100 * t / total))
        lines.append('  {:<26} {:8.3f} (step {:.3f} s)'.format(
            'all functions', sum(self.forward.values()) + sum(self.backward.values()), total))
        return '\n'.join(lines)


# ------------------------------------------------------------------------------------------

def _n_params(model) -> int:
    if isinstance(model, chainer.Link):
        return int(sum(p.size for p in model.params()))
    return int(sum(p.numel() for p in model.parameters()))


def _export_session(model, kind: str, threads: int, tmp: str):
    from kr.onnx import export_classifier
    from kr.onnx import export_detector
    from kr.onnx.runtime import make_session
    path = os.path.join(tmp, kind + '.onnx')
    (export_classifier if kind == 'classifier' else export_detector)(model, path)
    return make_session(path, threads=threads)


def build_runners(name: str, args, backends, tmp: str):
    """``{backend: runner}`` for one network; the Chainer model is shared."""
    rng = np.random.RandomState(0)
    np.random.seed(0)
    if name == 'mobilenetv3':
        x = rng.uniform(-1, 1, (args.mnv3_batch, 3, 112, 112)).astype(np.float32)
        t = rng.randint(0, args.classes, args.mnv3_batch).astype(np.int32)
        model, kind = MobileNetV3(args.classes), 'classifier'
    else:
        x = rng.uniform(-1, 1, (args.det_batch, 3, 416, 416)).astype(np.float32)
        t = None
        model, kind = Res18UnetCenterNet(), 'detector'
    runners = {}
    if 'chainer-stock' in backends:
        runners['chainer-stock'] = ChainerRunner(model, x, t, kernels=False)
    if 'chainer-ours' in backends:
        runners['chainer-ours'] = ChainerRunner(model, x, t, kernels=True)
    if 'onnxruntime' in backends:
        runners['onnxruntime'] = OnnxRunner(_export_session(model, kind, args.threads, tmp), x)
    if 'pytorch' in backends:
        import torch
        mobilenet, unet = _torch_twins()
        twin = mobilenet(args.classes) if name == 'mobilenetv3' else unet(model.head.W.shape[0])
        if _n_params(twin) != _n_params(model):
            raise RuntimeError('the PyTorch twin of {} has {} parameters, Chainer {}'.format(
                name, _n_params(twin), _n_params(model)))
        with torch.no_grad():
            if tuple(twin(torch.from_numpy(x[:2])).shape) != model(x[:2]).shape:
                raise RuntimeError('the PyTorch twin of {} gives another shape'.format(name))
        runners['pytorch'] = TorchRunner(twin, x, t)
    return model, runners


def measure(runners, repeat: int) -> dict:
    """Median seconds ``{(backend, 'train'|'infer'): s}``; one untimed warm-up round."""
    times = collections.defaultdict(list)
    for round_ in range(repeat + 1):
        for backend, runner in runners.items():
            for phase in ('train', 'infer'):
                fn = getattr(runner, phase)
                if fn is None:
                    continue
                start = time.perf_counter()
                fn()
                if round_:
                    times[backend, phase].append(time.perf_counter() - start)
    return {key: float(np.median(v)) for key, v in times.items()}


def profile(runner) -> str:
    hook = LayerProfile()
    start = time.perf_counter()
    with hook:
        runner.train()
    return hook.table(time.perf_counter() - start)


def _available_backends(requested):
    out = []
    for backend in requested:
        module = {'onnxruntime': 'onnxruntime', 'pytorch': 'torch'}.get(backend)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                print('# {} skipped: {} is not installed ({})'.format(
                    backend, module, 'pip install torch==2.13.0' if module == 'torch'
                    else 'pip install -e ".[onnx]"'))
                continue
        out.append(backend)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', nargs='+', choices=('mobilenetv3', 'resnet18unet'),
                   default=['mobilenetv3', 'resnet18unet'])
    p.add_argument('--backends', nargs='+', choices=BACKENDS, default=list(BACKENDS))
    p.add_argument('--mnv3-batch', type=int, default=64)
    p.add_argument('--det-batch', type=int, default=16)
    p.add_argument('--classes', type=int, default=4787)
    p.add_argument('--repeat', type=int, default=3, help='timed rounds (after one warm-up)')
    p.add_argument('--threads', type=int, default=None,
                   help='threads of PyTorch and ONNX Runtime (default: the usable cores; '
                        'set OMP_NUM_THREADS / NUMBA_NUM_THREADS for NumPy and numba)')
    p.add_argument('--profile', action='store_true',
                   help='print where a chainer-ours training step spends its time')
    args = p.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    args.threads = args.threads or cores
    backends = _available_backends(args.backends)
    if 'pytorch' in backends:
        import torch
        torch.set_num_threads(args.threads)
    versions = {'chainer': chainer.__version__, 'numpy': np.__version__}
    for module in ('numba', 'onnxruntime', 'torch'):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            pass
    print('# {} cores ({}), load average {:.2f}; {}'.format(
        cores, platform.processor() or platform.machine(), os.getloadavg()[0],
        ', '.join('{} {}'.format(k, v) for k, v in versions.items())))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            batch = args.mnv3_batch if name == 'mobilenetv3' else args.det_batch
            size = 112 if name == 'mobilenetv3' else 416
            model, runners = build_runners(name, args, backends, tmp)
            medians = measure(runners, args.repeat)
            ref = {phase: medians.get(('pytorch', phase)) for phase in ('train', 'infer')}
            print('\n{} {} x 3 x {} x {} (median of {} rounds; ratio = time / PyTorch)'.format(
                name, batch, size, size, args.repeat))
            print('  {:<14} {:>10} {:>8} {:>10} {:>8}'.format(
                'backend', 'train s', 'ratio', 'infer s', 'ratio'))
            for backend in runners:
                row = {'model': name, 'backend': backend, 'batch': batch, 'size': size}
                cells = []
                for phase in ('train', 'infer'):
                    s = medians.get((backend, phase))
                    row[phase + '_s'] = None if s is None else round(s, 4)
                    ratio = s / ref[phase] if s is not None and ref[phase] else None
                    row[phase + '_ratio'] = None if ratio is None else round(ratio, 2)
                    cells += ['-' if s is None else '{:.3f}'.format(s),
                              '-' if ratio is None else '{:.2f}x'.format(ratio)]
                print('  {:<14} {:>10} {:>8} {:>10} {:>8}'.format(backend, *cells))
                results.append(row)
            if args.profile and 'chainer-ours' in runners:
                print('\n  profile of one chainer-ours training step:')
                print(profile(runners['chainer-ours']))
            del model, runners
    print(json.dumps(results))


if __name__ == '__main__':
    main()
