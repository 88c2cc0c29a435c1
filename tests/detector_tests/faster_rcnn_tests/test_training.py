import json
import os

import chainer
import numpy as np
import pytest

from kr.detector import DETECTORS
from kr.detector import load_detector
from kr.detector.faster_rcnn.loss import head_loss
from kr.detector.faster_rcnn.loss import rpn_loss
from kr.detector.faster_rcnn.model import FasterRCNNFPNResNet
from kr.detector.faster_rcnn.training import FasterRCNNTrainChain
from kr.detector.faster_rcnn.training import LOSS_KEYS
from kr.detector.faster_rcnn.training import PRESETS
from kr.detector.faster_rcnn.training import train_detector
from kr.detector.fixed_size import fixed_size_converter
from kr.training import resolve_preset


def _sigmoid_ce(x, t):
    return np.log1p(np.exp(-abs(x))) + np.maximum(x, 0) - x * t


def _huber(d):
    d = abs(d)
    return np.where(d < 1, 0.5 * d * d, d - 0.5)


def test_rpn_loss_exact_value():
    scores = np.array([[2.0, -1.0, 0.5, 3.0]], np.float32)
    locs = np.array([[[0.5, -2, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [9, 9, 9, 9]]], np.float32)
    labels = np.array([[1, 0, 1, -1]], np.int32)
    targets = np.array([[[0, 0, 0.2, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]],
                       np.float32)
    cls, loc = rpn_loss(chainer.Variable(scores), chainer.Variable(locs), labels, targets)
    expected_cls = sum(_sigmoid_ce(s, t) for s, t in [(2.0, 1), (-1.0, 0), (0.5, 1)]) / 3
    expected_loc = 2 * (_huber(np.array([0.5, -2, -0.2, 0])).sum()
                        + _huber(np.array([-1.0, 0, 0, 0])).sum()) / 3
    assert float(cls.array) == pytest.approx(expected_cls, rel=1e-5)
    assert float(loc.array) == pytest.approx(expected_loc, rel=1e-5)


def test_head_loss_exact_value():
    logits = np.array([[1.0, 2.0], [0.5, -0.5], [0.0, 0.0]], np.float32)
    locs = np.array([[0.5, 0, 0, 3], [7, 7, 7, 7], [0, 0, 0, 0]], np.float32)
    labels = np.array([1, 0, 1], np.int32)
    targets = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0.25, 0, 0, 0]], np.float32)
    cls, loc = head_loss(chainer.Variable(logits), chainer.Variable(locs), labels, targets)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected_cls = -(log_softmax[0, 1] + log_softmax[1, 0] + log_softmax[2, 1]) / 3
    expected_loc = 2 * (_huber(np.array([0.5, 0, 0, 3])).sum() + _huber(-0.25)) / 3
    assert float(cls.array) == pytest.approx(expected_cls, rel=1e-5)
    assert float(loc.array) == pytest.approx(expected_loc, rel=1e-5)


def test_train_chain_reports_the_loss_terms():
    np.random.seed(0)
    model = FasterRCNNFPNResNet(depth=50, width=0.125, input_size=64)
    chain = FasterRCNNTrainChain(model, roi_batchsize=16)
    x = np.random.RandomState(0).randn(2, 3, 64, 64).astype(np.float32)
    boxes = [np.array([[4, 4, 14, 20], [30, 8, 40, 22]], np.float32),
             np.zeros((0, 4), np.float32)]
    x, boxes = fixed_size_converter(list(zip(x, boxes)), chainer.get_device('@numpy'))
    observation = {}
    reporter = chainer.Reporter()
    reporter.add_observer('main', chain)
    with reporter.scope(observation):
        loss = chain(x, boxes)
    assert sorted(observation) == sorted('main/' + k for k in LOSS_KEYS)
    parts = sum(float(observation['main/' + k].array) for k in LOSS_KEYS[1:])
    assert float(loss.array) == pytest.approx(parts, rel=1e-6)
    chain.cleargrads()  # a fresh Parameter's gradient is NaN until cleared
    loss.backward()
    for link in (model.extractor.resnet.stem.conv, model.rpn.score, model.head.cls):
        assert np.abs(link.W.grad).sum() > 0


def _resolve(preset, **given):
    return resolve_preset(train_detector, PRESETS, preset, **given)


def test_presets():
    assert _resolve('full') == _resolve('seed000')  # the seed's input is the default
    assert _resolve('full')['depth'] == 101 and _resolve('full')['input_size'] == 512
    assert _resolve('full')['patch_fraction'] is None
    assert _resolve('patches')['patch_fraction'] == 0.5
    demo = _resolve('demo')
    assert {k: demo[k] for k in PRESETS['demo']} == PRESETS['demo']
    assert demo['depth'] == 50 and demo['width'] == 0.25


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match='multiple of 32'):
        train_detector('nowhere', str(tmp_path), input_size=500)
    with pytest.raises(ValueError, match='--roi-batchsize'):
        train_detector('nowhere', str(tmp_path), roi_batchsize=0)
    with pytest.raises(ValueError, match='one size per pyramid level'):
        train_detector('nowhere', str(tmp_path), anchor_sizes='8')


@pytest.mark.slow
def test_registry_round_trip(detector_data, tmp_path):
    out = str(tmp_path / 'run')
    settings = dict(depth=50, width=0.125, input_size=64, patch_fraction=1.0,
                    anchor_sizes='6,12,24,48', batchsize=2, iterations=2, roi_batchsize=16,
                    optimizer='adam', lr=1e-3, val_pages=1, seed=0, snapshot_interval=2,
                    eval_interval=2, log_interval=1)
    record = dict(settings, detector='faster_rcnn')
    result = train_detector(detector_data['data_dir'], out,
                            split_dir=detector_data['split_dir'], run_record=record,
                            **settings)
    with open(os.path.join(out, 'log')) as f:
        log = json.load(f)
    assert [e['iteration'] for e in log] == [1, 2]
    assert 'validation/main/map' in log[-1]
    model = load_detector(result.model_path)
    assert type(model) is FasterRCNNFPNResNet
    assert (model.depth, model.width, model.input_size, model.patch_fraction,
            model.anchor_sizes) == (50, 0.125, 64, 1.0, (6, 12, 24, 48))
    trained = dict(result.model.namedparams())
    for name, param in model.namedparams():
        np.testing.assert_array_equal(param.array, trained[name].array, err_msg=name)
    page = np.full((200, 150, 3), 200, np.uint8)
    page[50:80, 40:70] = 0
    a = model.detect(page, score_threshold=0.0)
    b = result.model.detect(page, score_threshold=0.0)
    np.testing.assert_array_equal(a[0], b[0])
    family = DETECTORS['faster_rcnn']
    assert family.threshold('submission') == family.threshold(None) == model.score_threshold \
        == 0.7
