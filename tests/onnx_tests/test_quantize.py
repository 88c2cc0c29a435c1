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
from kr.onnx.export import INT8_CLASSIFIER_FILE  # NOQA: E402
from kr.onnx.quantize import calibration_crops  # NOQA: E402
from kr.onnx.quantize import calibration_inputs  # NOQA: E402
from kr.onnx.quantize import calibration_pages  # NOQA: E402
from kr.onnx.quantize import integer_head  # NOQA: E402
from kr.onnx.quantize import INT8_WEIGHT_MAX  # NOQA: E402
from kr.onnx.quantize import quantize_detector  # NOQA: E402
from tests.onnx_tests.conftest import save_run  # NOQA: E402

#: Largest mean absolute difference between the int8 and the float detector's raw output,
#: as a share of the float output's standard deviation, on a page the calibration saw:
#: measured 0.004 with the test models (an 8-bit grid over each activation's range, ~20
#: layers); ten times that leaves room for other CPUs' integer kernels, while a wrong
#: scale, zero point or weight layout gives errors of the order of the output (near 1).
INT8_MEAN_ERROR_SHARE = 0.05
#: The same for the int8 classifier's probabilities on 16 crops of a calibration page:
#: measured 0.040 with the test classifier (untrained: nearly uniform probabilities, whose
#: small spread makes the share large; ~30 quantised layers); a wrong scale, zero point or
#: layout gives shares near 1.
INT8_CLASSIFIER_ERROR_SHARE = 0.15


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


def _int8_weights(model):
    from onnx import numpy_helper
    return [numpy_helper.to_array(t) for t in model.graph.initializer
            if t.data_type == onnx.TensorProto.INT8]


@pytest.mark.parametrize('which', ['detector', 'classifier'])
def test_int8_weights_use_seven_bits(int8_both_export, which):
    # |w| <= 64: ONNX Runtime's int16 pair sums (CPUs without VNNI) cannot saturate
    out, meta, _ = int8_both_export
    q = meta[which]['quantization']
    assert q['weights'] == 'int8 per channel, 7-bit range'
    weights = _int8_weights(onnx.load(os.path.join(out, meta[which]['file'])))
    assert len(weights) > 10
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) == INT8_WEIGHT_MAX == 64


def test_int8_graph_quantises_everything_and_keeps_the_head_output_float(int8_export):
    out, meta = int8_export
    model = onnx.load(os.path.join(out, INT8_DETECTOR_FILE))
    ops = collections.Counter(n.op_type for n in model.graph.node)
    assert ops['QuantizeLinear'] > 0 and ops['DequantizeLinear'] > ops['QuantizeLinear']
    assert 'BatchNormalization' not in ops          # folded before quantisation
    assert 'DepthToSpace' not in ops and ops['Split'] == 3  # interleaves in NHWC, in uint8
    quantization = meta['detector']['quantization']
    assert quantization['integer_head'] and len(quantization['float_nodes']) == 1
    # the head: an integer product with a float output, named after the head convolution
    head = [n for n in model.graph.node if 'output' in n.output]
    assert [n.name for n in head] == [quantization['float_nodes'][0] + '_integer']
    assert ops['MatMulIntegerToFloat'] == 1
    floats = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    convs = [n for n in model.graph.node if n.op_type == 'Conv']
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


def test_int8_graph_runs_its_interleaves_without_layout_changes(int8_export, tmp_path):
    # ONNX Runtime's own optimised graph: the int8 convolutions, interleaves and skip
    # concatenations in one NHWC chain, float only at the input and around the float head
    import onnxruntime as ort
    out, _ = int8_export
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / 'optimized.onnx')
    ort.InferenceSession(os.path.join(out, INT8_DETECTOR_FILE), options,
                         providers=['CPUExecutionProvider'])
    ops = collections.Counter(n.op_type for n in onnx.load(options.optimized_model_filepath)
                              .graph.node)
    assert ops['QLinearConv'] > 20 and 'DepthToSpace' not in ops
    # one layout change in (the image), one out (the 5-channel head output), nothing
    # dequantised: the head reads the uint8 tensor
    assert ops['Transpose'] == 2 and ops['QuantizeLinear'] == 1
    assert 'DequantizeLinear' not in ops and ops['MatMulIntegerToFloat'] == 1


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
    pairs = calibration_pages(data_dir, 3, boxes=True)
    for (g, b), e, i in zip(pairs, expected, (0, 6, 11)):
        np.testing.assert_array_equal(g, e)
        np.testing.assert_array_equal(b, dataset[i]['bboxes'])
        assert b.dtype == np.float32 and b.shape[1] == 4
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


def _qdq_conv_graph(kernel=3, stride=1, pad=1, channels=6, outputs=5):
    """``x -> Quantize -> Dequantize -> Conv (float weights) -> y`` (uint8, per tensor)."""
    from onnx import helper
    from onnx import numpy_helper
    rng = np.random.RandomState(3)
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), 's'),
             numpy_helper.from_array(np.array(7, np.uint8), 'z'),
             numpy_helper.from_array(rng.normal(size=(outputs, channels, kernel, kernel))
                                     .astype(np.float32), 'W'),
             numpy_helper.from_array(rng.normal(size=outputs).astype(np.float32), 'b')]
    nodes = [helper.make_node('QuantizeLinear', ['x', 's', 'z'], ['xq']),
             helper.make_node('DequantizeLinear', ['xq', 's', 'z'], ['xdq']),
             helper.make_node('Conv', ['xdq', 'W', 'b'], ['y'], name='head',
                              kernel_shape=[kernel, kernel], pads=[pad] * 4,
                              strides=[stride, stride])]
    graph = helper.make_graph(
        nodes, 'head', [helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT,
                                                      ['N', channels, 'H', 'W'])],
        [helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, ['N', outputs, 'h', 'w'])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])


def _run(model, x):
    import onnxruntime as ort
    return ort.InferenceSession(model.SerializeToString(),
                                providers=['CPUExecutionProvider']).run(None, {'x': x})[0]


@pytest.mark.parametrize('kernel, pad', [(3, 1), (1, 0), (5, 2)])
def test_integer_head_is_the_convolution_up_to_its_int8_weights(kernel, pad):
    from onnx import numpy_helper
    model = _qdq_conv_graph(kernel, pad=pad)
    x = np.random.RandomState(4).uniform(-0.3, 12, size=(2, 6, 7, 9)).astype(np.float32)
    expected = _run(model, x)
    weight = numpy_helper.to_array([t for t in model.graph.initializer if t.name == 'W'][0])
    assert integer_head(model, 'head')
    ops = collections.Counter(n.op_type for n in model.graph.node)
    assert ops['MatMulIntegerToFloat'] == 1 and ops['Slice'] == kernel ** 2
    assert 'Conv' not in ops and 'DequantizeLinear' not in ops
    y = _run(model, x)
    assert y.shape == expected.shape == (2, 5, 7, 9)
    # each weight off by at most half its column's int8 step (max |w| / 127 over the
    # channels of one tap and output channel): bound the error by that times the
    # |input| window, from the same uint8 input (x clipped and rounded as Quantize does)
    xq = (np.clip(np.round(x / 0.05) + 7, 0, 255) - 7) * 0.05
    step = np.abs(weight).max(axis=1) / INT8_WEIGHT_MAX          # (O, k, k)
    padded = np.pad(np.abs(xq).sum(axis=1), ((0, 0), (pad, pad), (pad, pad)))
    bound = np.zeros_like(y)
    for ky in range(kernel):
        for kx in range(kernel):
            window = padded[:, ky:ky + 7, kx:kx + 9]                 # (N, H, W)
            bound += step[None, :, ky, kx, None, None] / 2 * window[:, None]
    err = np.abs(y - expected)
    assert (err <= bound + 1e-4).all()
    assert err.max() > 0                            # the weights were rounded
    # 7-bit weights: 0.4-1.3% of the largest output here; a saturated int16 sum (a CPU
    # without VNNI given 8-bit weights) was off by 10-32%
    assert err.max() < 0.02 * np.abs(expected).max()


def test_integer_head_takes_the_full_int8_range_when_asked():
    model = _qdq_conv_graph(3, pad=1)
    assert integer_head(model, 'head', weight_max=127)
    q = _int8_weights(model)
    assert len(q) == 1 and q[0].shape == (6, 9 * 5)
    assert np.abs(q[0].astype(np.int16)).max(axis=0).tolist() == [127] * 45


@pytest.mark.parametrize('kwargs', [dict(stride=2), dict(kernel=3, pad=0), dict(kernel=2, pad=1)])
def test_integer_head_leaves_other_convolutions_alone(kwargs):
    model = _qdq_conv_graph(**kwargs)
    before = model.SerializeToString()
    assert not integer_head(model, 'head')
    assert not integer_head(model, 'no such node')
    assert model.SerializeToString() == before


def test_calibration_crops_are_evenly_spaced_over_the_boxes():
    from kr.classifier.base import classification_crops
    rng = np.random.RandomState(5)
    pages = [rng.randint(0, 256, (60, 50, 3)).astype(np.uint8) for _ in range(3)]
    boxes = [np.array([[i, i, i + 9, i + 12] for i in range(n)], np.float32) for n in (4, 0, 3)]
    crops = calibration_crops(list(zip(pages, boxes)), 16, n_crops=4)
    # 7 boxes, picks 0, 2, 4, 6: boxes 0 and 2 of page 0, 0 and 2 of page 2
    expected = np.concatenate([classification_crops(pages[0], boxes[0][[0, 2]], 16),
                               classification_crops(pages[2], boxes[2][[0, 2]], 16)])
    np.testing.assert_array_equal(crops, expected)
    assert calibration_crops(list(zip(pages, boxes)), 16).shape == (7, 16, 16, 3)
    with pytest.raises(ValueError, match='needs character boxes'):
        calibration_crops([(pages[1], boxes[1])], 16)


@pytest.fixture(scope='module')
def int8_both_export(detector, classifier, tmp_path_factory):
    from kr.bbox import xywh_to_xyxy
    from kr.synthetic import render_page
    out = str(tmp_path_factory.mktemp('int8-both'))
    pages = []
    for seed in (0, 1):
        p = render_page(np.random.default_rng(seed), page_height=320)
        pages.append((p.image, xywh_to_xyxy(np.asarray(p.bboxes, np.float32))))
    meta = export_models(detector, classifier, out, int8_calibration=pages)
    return out, meta, pages


def test_pages_with_boxes_also_quantise_the_classifier(int8_both_export):
    out, meta, pages = int8_both_export
    cls = meta['classifier']
    assert cls['file'] == INT8_CLASSIFIER_FILE and cls['float_file'] == 'classifier.onnx'
    assert meta['detector']['file'] == INT8_DETECTOR_FILE
    n_boxes = sum(len(b) for _, b in pages)
    assert cls['quantization']['calibration_crops'] == min(n_boxes, 512)
    model = onnx.load(os.path.join(out, INT8_CLASSIFIER_FILE))
    ops = collections.Counter(n.op_type for n in model.graph.node)
    assert ops['QuantizeLinear'] > 10 and 'BatchNormalization' not in ops
    # the class logits and the softmax stay float
    floats = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    gemms = [n for n in model.graph.node if n.op_type == 'Gemm']
    assert gemms[-1].input[1] in floats and all(n.input[1] not in floats for n in gemms[:-1])
    assert [n.op_type for n in model.graph.node if 'prob' in n.output] == ['Softmax']


def test_int8_classifier_probabilities_are_close_to_float(int8_both_export, classifier):
    from kr.classifier.base import classification_crops
    out, _, pages = int8_both_export
    _, onnx_classifier = load_onnx_models(out, threads=1)
    crops = classification_crops(pages[0][0], pages[0][1][:16], classifier.input_size)
    expected = np.asarray(classifier.predict(crops))
    got = onnx_classifier.predict(crops)
    assert got.shape == expected.shape == (16, classifier.out_ch)
    np.testing.assert_allclose(got.sum(axis=1), 1, rtol=1e-5)
    share = np.abs(got - expected).mean() / expected.std()
    assert 0 < share < INT8_CLASSIFIER_ERROR_SHARE
