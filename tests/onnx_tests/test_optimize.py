"""Sub-pixel rewrite of the detector's transposed convolutions (kr.onnx.optimize)."""

import collections

import chainer.functions as F
import numpy as np
import pytest

from kr.onnx.optimize import subpixel_kernels

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from onnx import helper  # NOQA: E402
from onnx import numpy_helper  # NOQA: E402
from onnx import TensorProto  # NOQA: E402

from kr.onnx import export_detector  # NOQA: E402
from kr.onnx.optimize import subpixel_transposed_convolutions  # NOQA: E402
from kr.onnx.runtime import make_session  # NOQA: E402

#: float32 sums of 16 x C_in products taken in another order (C_in = 6 here, values of
#: order 1): differences stay far below this; a wrong tap or phase gives differences of
#: order 1.
TOLERANCE = 1e-5


def _subpixel_reference(x, kernels):
    """The four 2x2 convolutions with their asymmetric pads, interleaved, in NumPy."""
    n, _, h, w = x.shape
    c_out = kernels[0, 0].shape[0]
    y = np.zeros((n, c_out, 2 * h, 2 * w), np.float64)
    for (a, b), k in kernels.items():
        padded = np.pad(x, ((0, 0), (0, 0), (1 - a, a), (1 - b, b)))
        conv = F.convolution_2d(padded, k).array
        y[:, :, a::2, b::2] = conv
    return y


def test_subpixel_kernels_give_the_transposed_convolution():
    rng = np.random.RandomState(0)
    x = rng.normal(size=(2, 6, 5, 7))
    weight = rng.normal(size=(6, 3, 4, 4))
    expected = F.deconvolution_2d(x, weight, stride=2, pad=1).array
    kernels = subpixel_kernels(weight)
    assert sorted(kernels) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(k.shape == (3, 6, 2, 2) for k in kernels.values())
    np.testing.assert_allclose(_subpixel_reference(x, kernels), expected, rtol=0, atol=1e-12)
    # phase (0, 0) reads kernel rows and columns 3 and 1, phase (1, 1) rows and columns 2 and 0
    np.testing.assert_array_equal(kernels[0, 0][:, :, 0, 1], weight[:, :, 3, 1].T)
    np.testing.assert_array_equal(kernels[1, 1][:, :, 1, 0], weight[:, :, 0, 2].T)


def _graph(kernel=4, stride=2, pad=1, bias=True, extra_reader=False):
    """x -> ConvTranspose -> BatchNormalization -> Relu -> y (and the BN output also read by
    an Identity when ``extra_reader``)."""
    rng = np.random.RandomState(1)
    c_in, c_out = 6, 3
    inits = [numpy_helper.from_array(rng.normal(size=(c_in, c_out, kernel, kernel))
                                     .astype(np.float32), 'W')]
    inputs = ['x', 'W']
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(size=c_out).astype(np.float32), 'B'))
        inputs.append('B')
    for name, value in (('gamma', rng.uniform(0.5, 1.5, c_out)), ('beta', rng.normal(size=c_out)),
                        ('mean', rng.normal(size=c_out)), ('var', rng.uniform(0.5, 2, c_out))):
        inits.append(numpy_helper.from_array(value.astype(np.float32), name))
    nodes = [helper.make_node('ConvTranspose', inputs, ['d'], kernel_shape=[kernel, kernel],
                              strides=[stride, stride], pads=[pad] * 4),
             helper.make_node('BatchNormalization', ['d', 'gamma', 'beta', 'mean', 'var'],
                              ['bn'], epsilon=1e-3),
             helper.make_node('Relu', ['bn'], ['y'])]
    outputs = [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 3, 10, 14])]
    if extra_reader:
        nodes.append(helper.make_node('Identity', ['bn'], ['z']))
        outputs.append(helper.make_tensor_value_info('z', TensorProto.FLOAT, [1, 3, 10, 14]))
    graph = helper.make_graph(
        nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, c_in, 5, 7])],
        outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 11)])


def _run(model, tmp_path, name):
    path = str(tmp_path / name)
    onnx.save(model, path)
    x = np.random.RandomState(2).normal(size=(1, 6, 5, 7)).astype(np.float32)
    return make_session(path, threads=1).run(None, {'x': x})


def _ops(model):
    return collections.Counter(n.op_type for n in model.graph.node)


@pytest.mark.parametrize('bias', [True, False])
def test_rewrite_folds_batch_norm_and_relu_and_keeps_the_values(bias, tmp_path):
    model = _graph(bias=bias)
    expected = _run(model, tmp_path, 'before.onnx')[0]
    assert subpixel_transposed_convolutions(model) == 1
    assert _ops(model) == {'Conv': 4, 'Relu': 4, 'Concat': 1, 'DepthToSpace': 1}
    assert {t.name for t in model.graph.initializer}.isdisjoint({'W', 'gamma', 'var'})
    y = _run(model, tmp_path, 'after.onnx')[0]
    assert y.shape == expected.shape == (1, 3, 10, 14)
    assert (expected == 0).any() and (expected > 0).any()  # the ReLU matters
    np.testing.assert_allclose(y, expected, rtol=0, atol=TOLERANCE)


def test_rewrite_keeps_the_relu_when_its_input_is_read_elsewhere(tmp_path):
    model = _graph(extra_reader=True)
    expected = _run(model, tmp_path, 'before.onnx')
    assert subpixel_transposed_convolutions(model) == 1
    # the batch norm is folded; its output (now DepthToSpace's) still feeds both readers
    assert _ops(model) == {'Conv': 4, 'Concat': 1, 'DepthToSpace': 1, 'Relu': 1, 'Identity': 1}
    for y, e in zip(_run(model, tmp_path, 'after.onnx'), expected):
        np.testing.assert_allclose(y, e, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize('kernel, stride, pad', [(3, 2, 1), (4, 1, 1), (4, 2, 0)])
def test_other_transposed_convolutions_are_left_alone(kernel, stride, pad):
    model = _graph(kernel, stride, pad)
    before = model.SerializeToString()
    assert subpixel_transposed_convolutions(model) == 0
    assert model.SerializeToString() == before


def test_exported_detector_has_no_transposed_convolution(detector, tmp_path):
    ops = _ops(export_detector(detector, str(tmp_path / 'detector.onnx')))
    # three up-blocks, each four 2x2 convolutions with their ReLUs and one DepthToSpace
    assert 'ConvTranspose' not in ops
    assert ops['DepthToSpace'] == 3
    assert ops['Conv'] == 25 + 3 * 4


def _const(name, value):
    return helper.make_node('Constant', [], [name],
                            value=numpy_helper.from_array(np.asarray(value, np.float32), name))


def _hard_swish_and_se_graph():
    """x (N, 4, 3, 5) -> hard swish h; s = hard sigmoid of the channel means (N, 4),
    unsqueezed, expanded to (1, 4, 3, 5) and multiplied with h (MobileNetV3's export)."""
    nodes = [_const('three', 3.0), _const('zero', 0.0), _const('six', 6.0),
             _const('sixth', 1 / 6),
             helper.make_node('Add', ['x', 'three'], ['a']),
             helper.make_node('Clip', ['a', 'zero', 'six'], ['c']),
             helper.make_node('Mul', ['c', 'sixth'], ['hs']),
             helper.make_node('Mul', ['x', 'hs'], ['h']),
             helper.make_node('ReduceMean', ['h'], ['m'], axes=[2, 3], keepdims=0),
             helper.make_node('Add', ['m', 'three'], ['a2']),
             helper.make_node('Clip', ['a2', 'zero', 'six'], ['c2']),
             helper.make_node('Mul', ['c2', 'sixth'], ['s']),
             helper.make_node('Unsqueeze', ['s'], ['u'], axes=[2, 3]),
             _const('shape', [1, 4, 3, 5]),
             helper.make_node('Cast', ['shape'], ['shape64'], to=TensorProto.INT64),
             helper.make_node('Expand', ['u', 'shape64'], ['e']),
             helper.make_node('Mul', ['h', 'e'], ['y'])]
    graph = helper.make_graph(
        nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 4, 3, 5])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 4, 3, 5])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 11)])


def _run_x(model, x, tmp_path, name):
    """Save ``model`` as ``name`` and run it on ``x`` (input ``'x'``)."""
    path = str(tmp_path / name)
    onnx.save(model, path)
    return make_session(path, threads=1).run(None, {'x': x})[0]


def test_hard_sigmoids_and_broadcasts_are_rewritten_with_the_same_values(tmp_path):
    from kr.onnx.optimize import drop_broadcasts
    from kr.onnx.optimize import hard_sigmoids
    model = _hard_swish_and_se_graph()
    x = np.random.RandomState(3).uniform(-5, 5, (2, 4, 3, 5)).astype(np.float32)
    expected = _run_x(model, x, tmp_path, 'before.onnx')
    assert hard_sigmoids(model) == 2
    assert drop_broadcasts(model) == 0     # the Expand's shape is not a constant here
    ops = _ops(model)
    assert ops['HardSigmoid'] == 2 and 'Clip' not in ops and 'Add' not in ops
    np.testing.assert_allclose(_run_x(model, x, tmp_path, 'hard.onnx'), expected, rtol=0, atol=1e-6)


def _with_constant_shape(model, widen=False):
    """The graph with the Expand's shape a Constant node of int64 (the export's form); with
    ``widen`` the last Mul multiplies the expanded tensor with the (N, 4, 1, 1) one."""
    graph = model.graph
    nodes = [n for n in graph.node if n.output[0] not in ('shape', 'shape64')]
    nodes.insert(0, helper.make_node('Constant', [], ['shape64'], value=numpy_helper.from_array(
        np.array([1, 4, 3, 5], np.int64), 'shape64')))
    if widen:
        nodes[-1] = helper.make_node('Mul', ['u', 'e'], ['y'])
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def test_drop_broadcasts_removes_a_constant_expand(tmp_path):
    from kr.onnx.optimize import drop_broadcasts
    model = _with_constant_shape(_hard_swish_and_se_graph())
    x = np.random.RandomState(4).uniform(-5, 5, (2, 4, 3, 5)).astype(np.float32)
    expected = _run_x(model, x, tmp_path, 'before.onnx')
    assert drop_broadcasts(model) == 1
    assert 'Expand' not in _ops(model)
    assert not [n for n in model.graph.node if 'shape64' in n.output]   # unused constant gone
    np.testing.assert_array_equal(_run_x(model, x, tmp_path, 'after.onnx'), expected)
    # an Expand that really widens what it is multiplied with is kept
    model = _with_constant_shape(_hard_swish_and_se_graph(), widen=True)
    assert drop_broadcasts(model) == 0 and 'Expand' in _ops(model)


def test_exported_classifier_has_no_expand_and_fused_hard_sigmoids(classifier, tmp_path):
    from kr.onnx import export_classifier
    ops = _ops(export_classifier(classifier, str(tmp_path / 'classifier.onnx')))
    assert 'Expand' not in ops and 'Clip' not in ops and ops['HardSigmoid'] > 0


def _depth_to_space_graph(channels=12, mode='DCR', blocksize=2):
    """``x (N, channels, H, W) -> DepthToSpace -> y``, N, H and W dynamic; channels ``None``:
    unknown to shape inference."""
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', channels or 'C', 'H', 'W'])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 'c', 'h', 'w'])
    node = helper.make_node('DepthToSpace', ['x'], ['y'], blocksize=blocksize, mode=mode)
    graph = helper.make_graph([node], 'd2s', [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])


@pytest.mark.parametrize('shape', [(1, 12, 5, 7), (2, 12, 3, 1), (1, 12, 1, 4)])
def test_nhwc_depth_to_space_moves_the_same_values(shape, tmp_path):
    from kr.onnx.optimize import nhwc_depth_to_space
    model = _depth_to_space_graph()
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)  # every value distinct
    expected = _run_x(model, x, tmp_path, 'before.onnx')
    assert nhwc_depth_to_space(model) == 1
    assert _ops(model) == {'Transpose': 2, 'Split': 1, 'Concat': 1, 'Reshape': 1}
    y = _run_x(model, x, tmp_path, 'after.onnx')
    assert y.shape == (shape[0], 3, 2 * shape[2], 2 * shape[3])
    np.testing.assert_array_equal(y, expected)
    # DCR by hand: output (n, c, 2h + a, 2w + b) is input channel (2a + b) C + c at (h, w)
    n, h, w = shape[0] - 1, shape[2] - 1, shape[3] - 1
    assert y[n, 2, 2 * h + 1, 2 * w] == x[n, 2 * 3 + 2, h, w]


@pytest.mark.parametrize('kwargs', [dict(mode='CRD'), dict(blocksize=3, channels=18),
                                    dict(channels=None)])
def test_nhwc_depth_to_space_leaves_other_interleaves_alone(kwargs):
    from kr.onnx.optimize import nhwc_depth_to_space
    model = _depth_to_space_graph(**kwargs)
    before = model.SerializeToString()
    assert nhwc_depth_to_space(model) == 0
    assert model.SerializeToString() == before


def test_arithmetic_hard_sigmoids_give_the_hard_sigmoid(tmp_path):
    from kr.onnx.optimize import arithmetic_hard_sigmoids
    x_info = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 4])
    y_info = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 4])
    nodes = [helper.make_node('HardSigmoid', ['x'], ['h'], alpha=1 / 6, beta=0.5),
             helper.make_node('HardSigmoid', ['h'], ['y'], alpha=0.3, beta=0.1)]
    model = helper.make_model(helper.make_graph(nodes, 'hs', [x_info], [y_info]),
                              opset_imports=[helper.make_opsetid('', 13)])
    x = np.linspace(-5, 5, 40, dtype=np.float32).reshape(10, 4)   # both clips reached
    expected = _run_x(model, x, tmp_path, 'before.onnx')
    assert arithmetic_hard_sigmoids(model) == 2
    assert _ops(model) == {'Mul': 2, 'Add': 2, 'Clip': 2}
    np.testing.assert_allclose(_run_x(model, x, tmp_path, 'after.onnx'), expected,
                               rtol=0, atol=1e-6)
    assert arithmetic_hard_sigmoids(model) == 0
