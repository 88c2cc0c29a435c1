"""Small models for the CPU-kernel, ONNX export and ONNX Runtime tests."""

import json
import os

import chainer
import numpy as np
import pytest

#: Classes of the small test classifier.
N_CLASSES = 23
#: Crop side of the small test classifier (the network takes any multiple of 32).
CROP_SIZE = 32
#: Channel multiplier of the small test models.
WIDTH = 0.25
#: Size channels' bias of the test detector (output cells): an untrained head predicts
#: zero-sized boxes, which would send the adaptive-scale TTA to its largest scale.
BOX_SIZE_BIAS = 6.0


def randomize_statistics(model, seed: int):
    """Give every batch normalisation non-trivial running statistics and affine parameters,
    so that inference-mode comparisons exercise them."""
    rng = np.random.RandomState(seed)
    for link in model.links():
        if isinstance(link, chainer.links.BatchNormalization):
            link.avg_mean[...] = rng.normal(0, 0.1, link.avg_mean.shape)
            link.avg_var[...] = rng.uniform(0.5, 1.5, link.avg_var.shape)
            link.gamma.array[...] = rng.uniform(0.8, 1.2, link.gamma.shape)
            link.beta.array[...] = rng.normal(0, 0.1, link.beta.shape)
    return model


def make_detector(seed: int = 0):
    """A ``width=0.25`` detector with random weights and statistics."""
    from kr.detector import Res18UnetCenterNet
    np.random.seed(seed)
    model = randomize_statistics(Res18UnetCenterNet(width=WIDTH), seed)
    from kr.detector.centernet.decode import N_SIZE_CHANNELS
    n = model.n_fg_class
    model.head.b.array[n:n + N_SIZE_CHANNELS] = BOX_SIZE_BIAS
    return model


def make_classifier(name: str = 'mobilenetv3', seed: int = 0):
    """A small classifier of ``kr.classifier.CLASSIFIERS`` with random weights."""
    from kr.classifier import build_classifier
    np.random.seed(seed)
    return randomize_statistics(build_classifier(name, N_CLASSES, width=WIDTH,
                                                 input_size=CROP_SIZE), seed)


@pytest.fixture(scope='module')
def detector():
    return make_detector()


@pytest.fixture(scope='module')
def classifier():
    return make_classifier()


@pytest.fixture(scope='module')
def page():
    """A synthetic page, 480 px high (RGB uint8), the size no export traces."""
    from kr.synthetic import render_page
    return render_page(np.random.default_rng(0), page_height=480).image


def save_run(model, out_dir: str, args: dict) -> str:
    """Write ``model_1.npz`` and the ``args.json`` a training run would; return the npz path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, 'model_1.npz')
    chainer.serializers.save_npz(path, model)
    with open(os.path.join(out_dir, 'args.json'), 'w', encoding='utf-8') as f:
        json.dump(args, f)
    return path
