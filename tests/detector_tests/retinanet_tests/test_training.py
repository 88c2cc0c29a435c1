import inspect
import json
import os
import subprocess
import sys

import chainer
import numpy as np
import pytest

from kr.detector import DETECTORS
from kr.detector import detector_family
from kr.detector import load_detector
from kr.detector.fixed_size import fixed_size_converter
from kr.detector.fixed_size import FixedSizeTrainTransform
from kr.detector.retinanet.model import RetinaNetResNet
from kr.detector.retinanet.training import LOSS_KEYS
from kr.detector.retinanet.training import PRESETS
from kr.detector.retinanet.training import RetinaNetTrainChain
from kr.detector.retinanet.training import train_detector
from kr.training import resolve_preset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SCRIPT = os.path.join(REPO, 'scripts', '03_train_detector.py')
#: A run of seconds: a sixteenth-width ResNet50 on 128 px pages.
TINY = dict(width=0.0625, input_size=128, batchsize=2, iterations=2, log_interval=1,
            snapshot_interval=1, eval_interval=2, val_pages=1, seed=0)


def _page(seed=0):
    rng = np.random.RandomState(seed)
    xy = rng.uniform(0, 100, (6, 2))
    bboxes = np.concatenate([xy, xy + rng.uniform(8, 24, (6, 2))], axis=1).astype(np.float32)
    return {'image': rng.randint(0, 255, (160, 128, 3)).astype(np.uint8), 'bboxes': bboxes}


def test_train_chain_reports_its_terms():
    model = RetinaNetResNet(depth=50, width=0.0625, input_size=64)
    chain = RetinaNetTrainChain(model)
    transform = FixedSizeTrainTransform(64)
    batch = fixed_size_converter([transform(_page(0)), transform(_page(1))],
                                 chainer.get_device('@numpy'))
    observation = {}
    with chainer.reporter.Reporter().scope(observation):
        chainer.reporter.get_current_reporter().add_observer('main', chain)
        loss = chain(*batch)
    assert sorted(observation) == sorted('main/' + k for k in LOSS_KEYS)
    assert float(loss.array) == pytest.approx(float(observation['main/loss/cls'].array)
                                              + float(observation['main/loss/box'].array))
    loss.backward()
    assert model.cls_subnet.out.W.grad is not None and np.isfinite(float(loss.array))
    with pytest.raises(ValueError, match='negative_iou 0.6 must not exceed positive_iou 0.5'):
        RetinaNetTrainChain(model, 0.5, 0.6)


def test_presets_and_model_keys():
    assert set(PRESETS) == {'full', 'seed000', 'patches', 'demo'} and PRESETS['full'] == {}
    for name in PRESETS:
        resolve_preset(train_detector, PRESETS, name)  # only parameters it takes
    family = DETECTORS['retinanet']
    defaults = {k: p.default for k, p in inspect.signature(RetinaNetResNet).parameters.items()}
    assert family.model_keys == {k: defaults[k] for k in family.model_keys}
    assert family.training().train_detector is train_detector
    assert family.threshold(None) == family.threshold('submission') == 0.35
    # every model key but the class count is a setting of train_detector
    params = inspect.signature(train_detector).parameters
    assert all(params[k].default == v for k, v in family.model_keys.items()
               if k != 'n_fg_class')


@pytest.mark.slow
def test_registry_round_trip_from_a_run_folder(detector_data, tmp_path):
    out = str(tmp_path / 'run')
    settings = dict(TINY, anchor_scale=3.0, patch_fraction=0.5, max_detections=50)
    record = dict(settings, detector='retinanet', depth=50)
    result = train_detector(detector_data['data_dir'], out, detector_data['split_dir'],
                            depth=50, run_record=record, **settings)
    assert result.iteration == 2
    log = json.load(open(os.path.join(out, 'log')))
    assert all(k in log[0] for k in ['main/' + k for k in LOSS_KEYS])
    assert 'validation/main/map' in log[-1] and 'validation/main/loss' in log[-1]
    model = load_detector(os.path.join(out, 'model_final.npz'))
    assert isinstance(model, RetinaNetResNet) and detector_family(model).name == 'retinanet'
    assert (model.width, model.input_size, model.patch_fraction, model.anchor_scale,
            model.max_detections) == (0.0625, 128, 0.5, 3.0, 50)
    x = np.random.RandomState(0).uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)
    for a, b in zip(result.model.run_network(x), model.run_network(x)):
        np.testing.assert_array_equal(a, b)


def _run(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_script_03_help_documents_every_setting():
    proc = _run('--detector', 'retinanet', '--preset', 'seed000', '--help')
    assert proc.returncode == 0, proc.stderr
    text = ' '.join(proc.stdout.split())
    for flag in ('--depth', '--width', '--input-size', '--patch-fraction', '--anchor-scale',
                 '--scales-per-octave', '--anchor-ratios', '--min-level', '--max-level',
                 '--head-norm', '--positive-iou', '--negative-iou', '--max-detections'):
        assert flag in text, flag
    assert '(default: 2.0; preset seed000: 4.0)' in text


@pytest.mark.slow
def test_script_03_demo_preset(detector_data, tmp_path):
    out = str(tmp_path / 'run')
    proc = _run('--detector', 'retinanet', '--preset', 'demo', '--iterations', '2',
                '--input-size', '128', '--width', '0.0625', '--val-pages', '1',
                '--data-dir', detector_data['data_dir'], '--split-dir',
                detector_data['split_dir'], '--out', out, '--seed', '0')
    assert proc.returncode == 0, proc.stderr
    args = json.load(open(os.path.join(out, 'args.json')))
    assert (args['detector'], args['preset'], args['depth'], args['iterations']) == \
        ('retinanet', 'demo', 50, 2)
    log = json.load(open(os.path.join(out, 'log')))
    assert log[-1]['iteration'] == 2 and 'validation/main/map' in log[-1]
    assert isinstance(load_detector(os.path.join(out, 'model_final.npz')), RetinaNetResNet)
