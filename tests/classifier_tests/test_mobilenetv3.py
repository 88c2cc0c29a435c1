import chainer
import numpy as np
import pytest
from chainer import testing

from kr.classifier.mobilenetv3 import InvertedResidual
from kr.classifier.mobilenetv3 import LARGE_BLOCKS
from kr.classifier.mobilenetv3 import MobileNetV3
from kr.classifier.mobilenetv3 import SqueezeExcite


def test_se_scales_each_channel_by_its_hard_sigmoid_weight():
    se = SqueezeExcite(8)
    assert se.fc1.W.shape == (8, 8)  # 8 / 4 rounded up to the multiple of 8
    # Zero weights: the gate is hard_sigmoid(bias of fc2), one value per channel.
    se.fc1.W.array[...] = 0
    se.fc2.W.array[...] = 0
    bias = np.array([-4, -3, -1.5, 0, 1.5, 3, 4, 0], dtype=np.float32)
    se.fc2.b.array[...] = bias
    x = np.random.RandomState(0).uniform(1, 2, (2, 8, 3, 3)).astype(np.float32)
    y = se(x).array
    gate = np.clip(bias + 3, 0, 6) / 6
    np.testing.assert_allclose(y, x * gate[None, :, None, None], rtol=1e-6)


def test_se_depends_on_the_pooled_input():
    se = SqueezeExcite(16)
    x = np.random.RandomState(1).randn(2, 16, 4, 4).astype(np.float32)
    ratio = se(x).array / x
    # One factor per (sample, channel), in [0, 1].
    np.testing.assert_allclose(ratio, ratio[:, :, :1, :1] * np.ones_like(ratio), rtol=1e-4)
    assert ratio.min() >= 0 and ratio.max() <= 1


def test_large_table_structure():
    model = MobileNetV3(10)
    assert len(model.blocks) == 15
    for block, (i, e, o, k, s, se, act) in zip(model.blocks, LARGE_BLOCKS):
        assert block.expand.conv.W.shape == (e, i, 1, 1)
        assert block.depthwise.conv.W.shape == (e, 1, k, k)
        assert block.depthwise.stride == s
        assert block.project.conv.W.shape == (o, e, 1, 1)
        assert (block.se is not None) == se
        assert block.use_residual == (s == 1 and i == o)
    assert model.stem.conv.W.shape == (16, 3, 3, 3)
    assert model.last.conv.W.shape == (960, 160, 1, 1)
    assert model.fc.W.shape == (1280, 960)
    assert model.head.fc.W.shape == (10, 1280)
    assert model.head.dropout_ratio == 0.2


def test_width_multiplier():
    model = MobileNetV3(5, width=0.5)
    assert model.stem.conv.W.shape[0] == 8
    assert model.last.conv.W.shape[0] == 480
    assert model.fc.W.shape[0] == 1280  # the hidden FC does not shrink


def test_residual_block_adds_input():
    block = InvertedResidual(8, 16, 8, 3, 1, True, chainer.functions.relu)
    block.project.bn.gamma.array[...] = 0
    block.project.bn.beta.array[...] = 0
    x = np.random.RandomState(2).randn(1, 8, 5, 5).astype(np.float32)
    with chainer.using_config('train', False):
        np.testing.assert_allclose(block(x).array, x, atol=1e-6)


@pytest.mark.parametrize('bad', [dict(out_ch=0), dict(out_ch=3, width=0)])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        MobileNetV3(**bad)


@testing.attr.gpu
def test_gpu_forward_matches_cpu():
    model = MobileNetV3(7, width=0.25)
    x = np.random.RandomState(3).randn(2, 3, 32, 32).astype(np.float32)
    with chainer.using_config('train', False):
        expected = model(x).array
        model.to_device('@cupy:0')
        y = model(model.device.send(x)).array
    np.testing.assert_allclose(chainer.backend.CpuDevice().send(y), expected, rtol=1e-3,
                               atol=1e-3)
