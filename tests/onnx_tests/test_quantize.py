"""Static int8 quantisation of the exported detector (kr.onnx.quantize)."""

import collections
import json
import os

import chainer
import numpy as np
import pytest

from kr.datasets import normalize_image

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from kr.inference import load_recognizer  # NOQA: E402
from kr.onnx import export_models  # NOQA: E402
from kr.onnx import load_onnx_models  # NOQA: E402
from kr.onnx.export import INT8_DETECTOR_FILE  # NOQA: E402
from kr.onnx.quantize import calibration_inputs  # NOQA: E402
from kr.onnx.quantize import calibration_pages  # NOQA: E402
from kr.onnx.quantize import quantize_detector  # NOQA: E402
from tests.onnx_tests.conftest import save_run  # NOQA: E402

#: Largest mean absolute difference between the int8 and the float detector's raw output,
#: as a share of the float output's standard deviation, on a page the calibration saw:
#: measured 0.004 with the test models (an 8-bit grid over each activation's range, ~20
#: layers); ten times that leaves room for other CPUs' integer kernels, while a wrong
#: scale, zero point or weight layout gives errors of the order of the output (near 1).
INT8_MEAN_ERROR_SHARE = 0.05


@pytest.fixture(scope='module')
def pages():
    from kr.synthetic import render_page
    return [render_page(np.random.default_rng(seed), page_height=320).image for seed in (0, 1)]


@pytest.fixture(scope='module')
def int8_export(detector, classifier, pages, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('int8'))
    meta = export_models(detector, classifier, out, int8_calibration=pages)
    return out, meta


def test_export_writes_and_names_the_int8_detector(int8_export):
    out, meta = int8_export
    det = meta['detector']
    assert det['file'] == INT8_DETECTOR_FILE and det['float_file'] == 'detector.onnx'
    assert os.path.isfile(os.path.join(out, INT8_DETECTOR_FILE))
    assert os.path.isfile(os.path.join(out, 'detector.onnx'))
    q = det['quantization']
    assert q['calibration_pages'] == 2 and q['opset_version'] == 13 and q['format'] == 'QDQ'
    with open(os.path.join(out, 'onnx_models.json'), encoding='utf-8') as f:
        assert json.load(f)['detector']['file'] == INT8_DETECTOR_FILE
    assert not [name for name in os.listdir(out) if name.startswith('.')]  # no leftovers


def test_int8_graph_quantises_all_but_the_head(int8_export):
    out, meta = int8_export
    model = onnx.load(os.path.join(out, INT8_DETECTOR_FILE))
    ops = collections.Counter(n.op_type for n in model.graph.node)
    assert ops['QuantizeLinear'] > 0 and ops['DequantizeLinear'] > ops['QuantizeLinear']
    assert 'BatchNormalization' not in ops          # folded before quantisation
    head = [n for n in model.graph.node if 'output' in n.output]
    assert [n.op_type for n in head] == ['Conv'] and [n.name for n in head] == \
        meta['detector']['quantization']['float_nodes']
    floats = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    assert head[0].input[1] in floats                # the head's weights stay float
    convs = [n for n in model.graph.node if n.op_type == 'Conv' and n not in head]
    assert convs and all(n.input[1] not in floats for n in convs)


def test_int8_output_is_close_to_float(int8_export, detector, pages):
    out, _ = int8_export
    onnx_detector, _ = load_onnx_models(out, threads=1)
    x = calibration_inputs(detector, pages[:1])[0]
    assert x.shape == (1, 3) + tuple(detector.network_size(320, pages[0].shape[1], 832))
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        expected = detector(x).array
    y = onnx_detector.run_network(x)
    assert y.shape == expected.shape
    share = np.abs(y - expected).mean() / expected.std()
    assert 0 < share < INT8_MEAN_ERROR_SHARE


def test_calibration_inputs_are_what_detect_feeds_the_network(detector, pages):
    x = calibration_inputs(detector, pages, min_side=128)
    from kr.detector.transforms import resize_image
    for page, item in zip(pages, x):
        size = detector.network_size(page.shape[0], page.shape[1], 128)
        np.testing.assert_array_equal(item[0], normalize_image(resize_image(page, size)))


def test_calibration_pages_are_evenly_spaced_training_pages(tiny_kaggle_dir):
    from kr.datasets import KuzushijiPageDataset
    data_dir = tiny_kaggle_dir['data_dir']
    dataset = KuzushijiPageDataset(data_dir)
    got = calibration_pages(data_dir, 3)
    expected = [np.asarray(dataset[i]['image']) for i in (0, 6, 11)]  # of 12 pages
    assert len(got) == 3
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    assert len(calibration_pages(data_dir, 50)) == 12
    with pytest.raises(ValueError, match='at least one page, got n_pages=0'):
        calibration_pages(data_dir, 0)


def test_no_calibration_page_is_refused(detector, classifier, tmp_path):
    with pytest.raises(ValueError, match='at least one calibration page'):
        export_models(detector, classifier, str(tmp_path / 'out'), int8_calibration=[])
    assert not (tmp_path / 'out').exists()
    with pytest.raises(ValueError, match='at least one calibration page'):
        quantize_detector('unused.onnx', str(tmp_path / 'q.onnx'), [])


def test_load_recognizer_int8_needs_the_onnx_backend_and_data(detector, classifier, tmp_path):
    det = save_run(detector, str(tmp_path / 'det'), {'width': 0.25})
    clf = save_run(classifier, str(tmp_path / 'clf'), {'width': 0.25})
    for kwargs in ({'backend': 'chainer', 'data_dir': 'd'}, {'backend': 'onnxruntime'}):
        with pytest.raises(ValueError, match='needs --backend onnxruntime and --data-dir'):
            load_recognizer(det, clf, int8=True, **kwargs)
