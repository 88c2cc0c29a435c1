"""ONNX export: graph structure, and ONNX Runtime outputs equal to Chainer's."""

import json
import os

import chainer
import numpy as np
import pytest

from kr.classifier import CLASSIFIERS
from kr.datasets import normalize_image
from tests.onnx_tests.conftest import CROP_SIZE
from tests.onnx_tests.conftest import make_classifier
from tests.onnx_tests.conftest import N_CLASSES

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from kr.onnx import export_classifier  # NOQA: E402
from kr.onnx import export_detector  # NOQA: E402
from kr.onnx import export_models  # NOQA: E402
from kr.onnx.export import TRACE_SIZE  # NOQA: E402
from kr.onnx.runtime import make_session  # NOQA: E402

#: Largest allowed difference between Chainer's and ONNX Runtime's outputs (issue 6).
MAX_ABS_DIFF = 1e-4


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _check_graph(proto, input_name, output_name):
    graph = proto.graph
    assert [i.name for i in graph.input] == [input_name]  # no initializer among the inputs
    assert [o.name for o in graph.output] == [output_name]
    assert len(graph.initializer) > 0


@pytest.fixture(scope='module')
def detector_session(detector, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('onnx') / 'detector.onnx')
    proto = export_detector(detector, path)
    _check_graph(proto, 'image', 'output')
    assert _dims(proto.graph.input[0]) == ['N', 3, 'H', 'W']
    assert _dims(proto.graph.output[0]) == ['N', 5, 'h', 'w']
    return make_session(path)


@pytest.mark.parametrize('n, height, width', [
    (1,) + TRACE_SIZE,   # the traced size
    (1, 160, 224),       # sizes the export never saw, portrait and landscape
    (2, 256, 96),
])
def test_detector_raw_output_equals_chainer(detector, detector_session, n, height, width):
    x = np.random.RandomState(0).uniform(-1, 1, (n, 3, height, width)).astype(np.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        expected = detector(x).array
    y = detector_session.run(None, {'image': x})[0]
    assert y.shape == expected.shape == (n, 5, height // 4, width // 4)
    assert np.abs(y - expected).max() < MAX_ABS_DIFF


@pytest.mark.parametrize('name', sorted(CLASSIFIERS))
def test_classifier_probabilities_equal_chainer(name, tmp_path):
    model = make_classifier(name)
    path = str(tmp_path / 'classifier.onnx')
    proto = export_classifier(model, path)
    _check_graph(proto, 'crops', 'prob')
    assert _dims(proto.graph.input[0]) == ['N', 3, CROP_SIZE, CROP_SIZE]
    assert _dims(proto.graph.output[0]) == ['N', N_CLASSES]
    session = make_session(path)
    rng = np.random.RandomState(1)
    for n in (1, 5):  # the trace used 2 crops: the batch is dynamic
        crops = rng.randint(0, 256, (n, CROP_SIZE, CROP_SIZE, 3)).astype(np.uint8)
        prob = session.run(None, {'crops': normalize_image(crops)})[0]
        expected = model.predict(crops)
        assert prob.shape == expected.shape == (n, N_CLASSES)
        assert np.abs(prob - expected).max() < MAX_ABS_DIFF


def test_export_models_writes_the_metadata(detector, classifier, tmp_path):
    meta = export_models(detector, classifier, str(tmp_path))
    files = ['classifier.onnx', 'detector.onnx', 'onnx_models.json']
    assert sorted(os.listdir(str(tmp_path))) == files
    assert json.load(open(str(tmp_path / 'onnx_models.json'))) == meta
    assert meta['detector']['width'] == detector.width
    assert meta['detector']['score_threshold'] == detector.score_threshold
    assert meta['classifier'] == dict(meta['classifier'], model='mobilenetv3',
                                      n_classes=N_CLASSES, input_size=CROP_SIZE)


def test_export_leaves_the_model_usable(classifier, tmp_path):
    crops = np.full((2, CROP_SIZE, CROP_SIZE, 3), 128, np.uint8)
    before = classifier.predict(crops)
    export_classifier(classifier, str(tmp_path / 'c.onnx'))
    np.testing.assert_array_equal(classifier.predict(crops), before)
    assert chainer.config.train and getattr(chainer.config, 'kr_cpu_kernels', True)


@pytest.mark.parametrize('family', ['retinanet', 'faster_rcnn'])
def test_families_without_an_onnx_export_are_refused_by_name(family, tmp_path):
    from kr.detector import build_detector
    from kr.detector import DETECTORS
    model = build_detector(family, depth=50, width=0.125)
    with pytest.raises(ValueError, match='no ONNX export for {} detectors: '.format(family)):
        export_detector(model, str(tmp_path / 'd.onnx'))
    assert not (tmp_path / 'd.onnx').exists()
    assert DETECTORS['centernet'].no_onnx is None
