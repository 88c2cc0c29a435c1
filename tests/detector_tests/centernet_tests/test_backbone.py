import numpy as np
import pytest

from kr.detector.centernet.backbone import ResNet18Encoder
from kr.detector.centernet.backbone import scale_channels
from kr.links import BasicBlock


@pytest.mark.parametrize('width', [1.0, 0.25])
@pytest.mark.parametrize('size', [(32, 32), (64, 96)])
def test_encoder_pyramid_shapes(width, size):
    encoder = ResNet18Encoder(width)
    x = np.random.RandomState(0).randn(2, 3, *size).astype(np.float32)
    features = encoder(x)
    assert len(features) == 4
    for feature, stride, channels in zip(features, (4, 8, 16, 32), encoder.channels):
        assert feature.shape == (2, channels, size[0] // stride, size[1] // stride)
        assert feature.dtype == np.float32
    assert encoder.channels == tuple(scale_channels(c, width) for c in (64, 128, 256, 512))


def test_original_width_is_resnet18():
    assert ResNet18Encoder(1.0).channels == (64, 128, 256, 512)


def test_block_projects_only_when_needed():
    assert BasicBlock(8, 8, 1).shortcut is None
    assert BasicBlock(8, 8, 2).shortcut is not None
    assert BasicBlock(8, 16, 1).shortcut is not None


def test_scale_channels_floor():
    assert scale_channels(64, 0.01) == 4
    assert scale_channels(64, 0.5) == 32


@pytest.mark.parametrize('width', [0, -1.0])
def test_bad_width(width):
    with pytest.raises(ValueError, match='width'):
        ResNet18Encoder(width)
