import os

import chainer
import chainer.functions as F
import numpy as np
import pytest

from kr.detector.centernet import training
from kr.detector.centernet.loss import centernet_loss
from kr.detector.centernet.training import CenterNetTrainChain
from kr.detector.centernet.training import centernet_converter
from kr.detector.centernet.training import LOSS_RATIO_TO_ORIGINAL
from kr.detector.centernet.training import make_datasets
from kr.detector.centernet.training import PRESETS
from kr.detector.centernet.training import train_detector
from kr.training import resolve_preset
from kr.training import TrainingDiverged


class _TinyDetector(chainer.Link):
    """A dummy detector: a 1x1 linear map of the (stride-4 subsampled) image to 5 channels."""

    n_fg_class = 1

    def __init__(self, seed=0):
        super().__init__()
        with self.init_scope():
            self.W = chainer.Parameter(np.random.RandomState(seed).randn(5, 3).astype(
                np.float32))

    def forward(self, x):
        h = x[:, :, ::4, ::4]
        return F.transpose(F.tensordot(h, self.W, axes=((1,), (1,))), (0, 3, 1, 2))


def _batch(n=2, size=16, seed=0):
    rng = np.random.RandomState(seed)
    s = size // 4
    x = rng.randn(n, 3, size, size).astype(np.float32)
    heatmap = rng.uniform(0, 0.9, (n, 1, s, s)).astype(np.float32)
    mask = np.zeros((n, s, s), np.float32)
    mask[:, 1, 1] = 1
    heatmap[:, 0, 1, 1] = 1
    size_t = rng.uniform(1, 3, (n, 2, s, s)).astype(np.float32) * mask[:, None]
    offset = rng.uniform(0, 1, (n, 2, s, s)).astype(np.float32) * mask[:, None]
    return x, heatmap, size_t, offset, mask


def test_train_chain_reports_the_loss_terms():
    chain = CenterNetTrainChain(_TinyDetector())
    observation = {}
    reporter = chainer.Reporter()
    reporter.add_observer('main', chain)
    with reporter.scope(observation):
        loss = chain(*_batch())
    assert sorted(observation) == ['main/loss', 'main/loss/offset', 'main/loss/score',
                                   'main/loss/size']
    parts = sum(float(observation['main/loss/' + k].array) for k in ('score', 'size', 'offset'))
    assert float(loss.array) == pytest.approx(parts)
    loss.backward()
    assert chain.model.W.grad is not None


def test_converter_stacks_fields():
    examples = [tuple(a[k] for a in _batch(3)) for k in range(3)]
    batch = centernet_converter(examples, chainer.get_device('@numpy'))
    assert [a.shape for a in batch] == [(3, 3, 16, 16), (3, 1, 4, 4), (3, 2, 4, 4),
                                        (3, 2, 4, 4), (3, 4, 4)]


def _resolve(preset, **given):
    return resolve_preset(train_detector, PRESETS, preset, **given)


def test_resolve_preset():
    demo = _resolve('demo')
    assert {k: demo[k] for k in PRESETS['demo']} == PRESETS['demo']
    assert demo['grad_clip'] == _resolve('full')['grad_clip']  # the default, written once
    assert _resolve('demo', lr=0.5, width=None)['lr'] == 0.5
    switched = _resolve('demo', epoch=3)
    assert switched['epoch'] == 3 and switched['iterations'] is None
    both = _resolve('full', epoch=3, iterations=7)
    assert both['iterations'] == 7
    assert 'detector' not in _resolve('full', detector='centernet')  # not a parameter
    with pytest.raises(ValueError, match='preset'):
        _resolve('huge')
    with pytest.raises(ValueError, match="sets colour, which train_detector does not take"):
        resolve_preset(train_detector, {'odd': {'colour': 1}}, 'odd')


def _run_steps(lr, weight_decay, grad_clip, loss_scale, batch, steps=3):
    """NesterovAG steps on the tiny detector with the loss multiplied by ``loss_scale``."""
    chain = CenterNetTrainChain(_TinyDetector())
    optimizer = chainer.optimizers.NesterovAG(lr=lr, momentum=0.9)
    optimizer.setup(chain)
    optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(weight_decay))
    optimizer.add_hook(chainer.optimizer_hooks.GradientClipping(grad_clip))
    for _ in range(steps):
        optimizer.update(lambda *a: chain(*a) * loss_scale, *batch)
    return chain.model.W.array.copy()


@pytest.mark.parametrize('clip', [100.0, 0.5])
def test_full_preset_takes_the_original_steps(clip):
    # Quirk (b): the original loss is the batch sum / 5 channels = ours x 16 / 5; with lr,
    # weight decay and clipping rescaled, our updates are the original's (clipping active
    # or not).
    batch = _batch(16, seed=1)
    original = _run_steps(1e-3, 1e-5, clip, 1 / LOSS_RATIO_TO_ORIGINAL, batch)
    ours = _run_steps(1e-3 / LOSS_RATIO_TO_ORIGINAL, 1e-5 * LOSS_RATIO_TO_ORIGINAL,
                      clip * LOSS_RATIO_TO_ORIGINAL, 1.0, batch)
    np.testing.assert_allclose(ours, original, rtol=1e-5, atol=1e-7)
    assert PRESETS['full'] == {}
    full = _resolve('full')
    assert LOSS_RATIO_TO_ORIGINAL == 5 / 16
    assert full['lr'] == pytest.approx(1e-3 * 16 / 5)
    assert full['weight_decay'] == pytest.approx(1e-5 * 5 / 16)
    assert full['grad_clip'] == pytest.approx(100 * 5 / 16)
    assert (full['batchsize'], full['epoch'], full['crop_size'], full['width']) == \
        (16, 700, 416, 1.0)


def test_make_datasets_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match='00_make_synthetic_dataset'):
        make_datasets(str(tmp_path / 'nowhere'))


@pytest.mark.parametrize('kwargs,match', [({'crop_size': 100}, 'multiple of 32'),
                                          ({'batchsize': 0}, 'batchsize'),
                                          ({'epoch': 0}, 'epoch'),
                                          ({'min_sigma': 0}, r'--min-sigma must be > 0'),
                                          ({'resume': 'missing_snapshot'}, 'resume')])
def test_train_detector_bad_settings(tmp_path, kwargs, match):
    error = FileNotFoundError if 'resume' in kwargs else ValueError
    with pytest.raises(error, match=match):
        train_detector(str(tmp_path), str(tmp_path / 'out'), **kwargs)


TINY_RUN = dict(width=0.25, crop_size=64, batchsize=2, lr=0.01, snapshot_interval=1,
                eval_interval=1, log_interval=1, val_pages=1, seed=0)


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_snapshot(detector_data, tmp_path, monkeypatch):
    calls = []

    def nan_on_second_call(*args, **kwargs):
        terms = centernet_loss(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            terms['score'] = terms['score'] * float('nan')
        return terms

    monkeypatch.setattr(training, 'centernet_loss', nan_on_second_call)
    out = str(tmp_path / 'run')
    with pytest.raises(TrainingDiverged, match='iteration 2'):
        train_detector(detector_data['data_dir'], out, split_dir=detector_data['split_dir'],
                       iterations=4, **dict(TINY_RUN, eval_interval=100))
    assert os.path.isfile(os.path.join(out, 'snapshot_iter_1'))
    assert not os.path.exists(os.path.join(out, 'snapshot_iter_2'))


@pytest.mark.slow
@pytest.mark.parametrize('optimizer', ['nesterov', 'adam'])
def test_resume_after_the_last_lr_drop_keeps_the_dropped_lr(detector_data, tmp_path, optimizer):
    out = str(tmp_path / 'run')
    kwargs = dict(TINY_RUN, eval_interval=100, optimizer=optimizer)
    first = train_detector(detector_data['data_dir'], out, split_dir=detector_data['split_dir'],
                           iterations=2, **kwargs)
    assert first.iteration == 2 and first.lr == pytest.approx(0.01 * 0.01)
    again = train_detector(detector_data['data_dir'], out, split_dir=detector_data['split_dir'],
                           iterations=2, resume=os.path.join(out, 'snapshot_iter_2'), **kwargs)
    assert again.iteration == 2 and again.lr == pytest.approx(0.01 * 0.01)
