"""What every classifier shares: output shapes, snapshot round trip, registry."""

import json

import chainer
import numpy as np
import pytest

from kr.classifier import build_classifier
from kr.classifier import CLASSIFIERS
from kr.classifier import load_classifier
from kr.classifier import MobileNetV3
from kr.classifier import Resnet18
from kr.classifier import Resnet34
from kr.classifier import Resnet50
from kr.classifier import Xception


def _forward_shape(model, n, size):
    x = np.random.RandomState(0).randn(n, 3, size, size).astype(np.float32)
    y = model(x)
    return y.shape, y.dtype


@pytest.mark.parametrize('name', sorted(CLASSIFIERS))
@pytest.mark.parametrize('out_ch, size', [(3, 32), (11, 64), (5, 40)])
def test_output_shape(name, out_ch, size):
    model = CLASSIFIERS[name](out_ch, width=0.25)
    assert _forward_shape(model, 2, size) == ((2, out_ch), np.float32)


@pytest.mark.parametrize('name', sorted(CLASSIFIERS))
def test_output_shape_test_mode_single_sample(name):
    model = CLASSIFIERS[name](4, width=0.25)
    with chainer.using_config('train', False):
        assert _forward_shape(model, 1, 32) == ((1, 4), np.float32)


def test_backward_reaches_every_parameter():
    model = Resnet18(3, width=0.25)
    x = np.random.RandomState(0).randn(2, 3, 32, 32).astype(np.float32)
    loss = chainer.functions.softmax_cross_entropy(model(x), np.array([0, 2], np.int32))
    loss.backward()
    assert all(p.grad is not None for p in model.params())


def test_architectures():
    # Width 0.25: a quarter of the channels of the papers' 512 / 2048 / 2048 last features.
    assert [len(s) for s in Resnet18(2, width=0.25).stages] == [2, 2, 2, 2]
    assert [len(s) for s in Resnet34(2, width=0.25).stages] == [3, 4, 6, 3]
    assert [len(s) for s in Resnet50(2, width=0.25).stages] == [3, 4, 6, 3]
    assert Resnet18(2, width=0.25).head.fc.W.shape == (2, 128)
    assert Resnet50(2, width=0.25).head.fc.W.shape == (2, 512)
    xception = Xception(2, width=0.25)
    assert len(xception.blocks) == 3 + 8 + 1
    assert xception.head.fc.W.shape == (2, 512)


@pytest.mark.parametrize('name', sorted(CLASSIFIERS))
def test_snapshot_round_trip(name, tmp_path):
    model = CLASSIFIERS[name](6, width=0.25)
    x = np.random.RandomState(1).randn(3, 3, 32, 32).astype(np.float32)
    model(x)  # a training-mode pass moves the BN statistics away from their initial values
    path = str(tmp_path / 'model.npz')
    chainer.serializers.save_npz(path, model)
    fresh = CLASSIFIERS[name](6, width=0.25)
    chainer.serializers.load_npz(path, fresh)
    with chainer.using_config('train', False):
        np.testing.assert_array_equal(model(x).array, fresh(x).array)


def test_build_and_load_classifier(tmp_path):
    model = build_classifier('mobilenetv3', 6, width=0.25, input_size=48)
    assert isinstance(model, MobileNetV3) and model.input_size == 48
    chainer.serializers.save_npz(str(tmp_path / 'model_3.npz'), model)
    (tmp_path / 'args.json').write_text(json.dumps(
        {'model': 'mobilenetv3', 'n_classes': 6, 'width': 0.25, 'input_size': 48}))
    loaded = load_classifier(str(tmp_path / 'model_3.npz'))
    assert loaded.input_size == 48
    x = np.random.RandomState(2).randn(2, 3, 48, 48).astype(np.float32)
    with chainer.using_config('train', False):
        np.testing.assert_array_equal(model(x).array, loaded(x).array)


def test_build_and_load_errors(tmp_path):
    with pytest.raises(ValueError, match='mobilenetv3'):
        build_classifier('vgg', 3)
    with pytest.raises(FileNotFoundError):
        load_classifier(str(tmp_path / 'missing.npz'))
    chainer.serializers.save_npz(str(tmp_path / 'model_1.npz'), Resnet18(2, width=0.25))
    (tmp_path / 'args.json').write_text('{"model": "resnet18"}')
    with pytest.raises(ValueError, match='n_classes'):
        load_classifier(str(tmp_path / 'model_1.npz'))
