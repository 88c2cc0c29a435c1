"""Static int8 quantisation of the exported models (SPEC section 12, the one-second page).

``onnxruntime.quantization`` with calibration pages: the graph is converted to opset 13
(per-channel weight scales need it), pre-processed (its batch norms folded into the
convolutions, which quantisation would otherwise keep in float between two quantised
tensors), then quantised in the QDQ format: weights int8 with one scale per output channel,
activations uint8 with ranges from the calibration pages (min-max), which ONNX Runtime runs
as integer convolutions (VNNI / AMX where the CPU has them) in its NHWC layout. The weights
use 7 of the 8 bits (``reduce_range``, :data:`INT8_WEIGHT_MAX`), so that CPUs without VNNI,
which add products in int16, give the same results as those with it.

The detector (:func:`quantize_detector`): its sub-pixel interleaves are written in NHWC
first (:func:`kr.onnx.optimize.nhwc_depth_to_space`), so that they move uint8 data inside
ONNX Runtime's NHWC chain instead of leaving it for a float ``DepthToSpace``. The head
convolution, whose one output tensor holds the class logits, box sizes and offsets (ranges
of very different widths: one uint8 scale would blur the logits near the threshold), keeps
a float output: it is left out of the QDQ quantisation and then rewritten as an integer
product of its uint8 input and int8 weights with a float result (:func:`integer_head`).

The classifier (:func:`quantize_classifier`, calibrated on crops of the calibration pages'
characters): its hard sigmoids written as ``Mul``, ``Add`` and ``Clip``
(:func:`kr.onnx.optimize.arithmetic_hard_sigmoids`), the logits layer and the softmax in
float.

Measured with ONNX Runtime's profiler (1.19, one thread, the full-size untrained models of
``benchmarks/page_speed.py``, its three TTA passes at 832 x 1344, 672 x 1088 and
1024 x 1696): the int8 detector spent 72% of its time in the integer convolutions, and 6%
in float ``DepthToSpace``, 5% in Transposes (8 a pass), 5% in the float head, 5% in
(de)quantisations and 2% in NCHWc reorders around the head; with the NHWC interleaves and
the integer head, 2 Transposes a pass (the image in, the 5-channel output out) and no
dequantisation are left. The float MobileNetV3-Large on the page's 99 crops: 50% in its
convolutions, 23% in NCHWc reorders (hard swishes and squeeze-excite blocks break ONNX
Runtime's blocked layout), 18% in the hard swishes' ``HardSigmoid`` and ``Mul``; int8, 0.16
instead of 0.26 CPU seconds (0.17 with ``HardSigmoid`` kept, which dequantised 39 tensors).
"""

import os
import tempfile

import numpy as np

from kr.datasets.image import normalize_image
from kr.datasets.image import to_array
from kr.detector.transforms import resize_image
from kr.onnx.optimize import arithmetic_hard_sigmoids
from kr.onnx.optimize import nhwc_depth_to_space

#: Opset of the quantised graph (per-channel QDQ needs 13).
QUANTIZED_OPSET = 13
#: Calibration pages used when none are asked for: more pages than this moved the demo
#: detector's activation ranges little (min-max over whole pages of one kind).
CALIBRATION_PAGES = 8
#: Crops that calibrate the int8 classifier (at most; evenly spaced over the calibration
#: pages' boxes): batches of crops, unlike whole pages, fill each activation's range fast.
CALIBRATION_CROPS = 512
#: Crops per calibration batch of the classifier.
CALIBRATION_BATCH = 64


def _first_input_name(model_proto) -> str:
    return model_proto.graph.input[0].name


def _output_node_names(model_proto):
    """Names of the nodes that write the graph outputs (naming unnamed nodes first)."""
    outputs = {o.name for o in model_proto.graph.output}
    names = []
    for i, node in enumerate(model_proto.graph.node):
        if not node.name:
            node.name = '{}_{}'.format(node.op_type, i)
        if outputs.intersection(node.output):
            names.append(node.name)
    return names


class _PageReader:
    """``onnxruntime.quantization.CalibrationDataReader`` over network inputs."""

    def __init__(self, input_name: str, inputs):
        self._items = iter([{input_name: x} for x in inputs])

    def get_next(self):
        return next(self._items, None)

    def rewind(self):  # pragma: no cover - called by some calibrators only
        pass


def calibration_pages(data_dir: str, n_pages: int = CALIBRATION_PAGES,
                      boxes: bool = False) -> list:
    """Calibration pages: ``n_pages`` of a data folder's training pages (train.csv), evenly
    spaced over it (the same pages every time).

    Args:
        data_dir: Kaggle-layout folder (train.csv, train_images).
        n_pages: How many (all of them if there are fewer).
        boxes: Also return each page's character boxes, whose crops calibrate the int8
            classifier (:func:`kr.onnx.export_models`).

    Returns:
        list of ``(H, W, 3)`` uint8 pages; with ``boxes``, of ``(page, (R, 4) float32
        x_min y_min x_max y_max boxes in page pixels)`` pairs.

    Raises:
        FileNotFoundError: No train.csv or train_images there (named).
        ValueError: ``n_pages`` under 1, or a train.csv without pages.
    """
    from kr.datasets import KuzushijiPageDataset
    if n_pages < 1:
        raise ValueError('calibration needs at least one page, got n_pages={}'.format(n_pages))
    dataset = KuzushijiPageDataset(data_dir, split='trainval')
    if len(dataset) == 0:
        raise ValueError('{}: train.csv lists no pages to calibrate with'.format(data_dir))
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(n_pages, len(dataset))).round()
                      .astype(int))
    items = [dataset[int(i)] for i in picks]
    if boxes:
        return [(to_array(item['image']), np.asarray(item['bboxes'], np.float32))
                for item in items]
    return [to_array(item['image']) for item in items]


def calibration_crops(pages, input_size: int, n_crops: int = CALIBRATION_CROPS) -> np.ndarray:
    """The classifier's input crops of calibration pages' character boxes, as ``classify``
    cuts them (:func:`kr.classifier.base.classification_crops`): at most ``n_crops``, evenly
    spaced over all the boxes.

    Args:
        pages: ``(page, boxes)`` pairs (:func:`calibration_pages` with ``boxes=True``).
        input_size: The classifier's crop side.
        n_crops: How many crops at most.

    Returns:
        ``(N, input_size, input_size, 3)`` uint8 RGB crops.

    Raises:
        ValueError: No box on any page.
    """
    from kr.classifier.base import classification_crops
    counts = [len(b) for _, b in pages]
    total = sum(counts)
    if total == 0:
        raise ValueError('int8 classifier calibration needs character boxes; the '
                         'calibration pages have none')
    picks = np.unique(np.linspace(0, total - 1, min(n_crops, total)).round().astype(int))
    crops, start = [], 0
    for (page, page_boxes), count in zip(pages, counts):
        mine = picks[(picks >= start) & (picks < start + count)] - start
        if len(mine):
            crops.append(classification_crops(page, np.asarray(page_boxes)[mine], input_size))
        start += count
    return np.concatenate(crops)


def calibration_inputs(detector, images, min_side: int = None):
    """Network inputs of calibration pages, as the detector's ``detect`` would make them.

    Args:
        detector: A CenterNet detector (Chainer or ONNX Runtime): ``network_size`` and
            ``min_side`` are used.
        images: Pages (PIL images or ``(H, W, 3)`` uint8 arrays).
        min_side: Shorter side of the network input (default: the detector's standard).

    Returns:
        list of ``(1, 3, H, W)`` float32 arrays.
    """
    min_side = detector.min_side if min_side is None else min_side
    out = []
    for image in images:
        image = to_array(image)
        size = detector.network_size(image.shape[0], image.shape[1], min_side)
        out.append(normalize_image(resize_image(image, size))[None].astype(np.float32))
    return out


#: Int8 weights: symmetric, the largest magnitude of each column at 64, the 7-bit range of
#: ``onnxruntime.quantization``'s ``reduce_range`` (127 without it). On x86 CPUs without VNNI
#: ONNX Runtime multiplies uint8 by int8 with AVX2's ``vpmaddubsw``, which adds each pair of
#: products in int16 and saturates past 32767: 255 x 127 x 2 does, 255 x 64 x 2 = 32640
#: does not. With the full range, the integer heads of ``tests/onnx_tests/test_quantize.py``
#: were off by up to 23 (outputs up to 229) on a Haswell emulated by ``qemu-x86_64 -cpu
#: Haswell`` and by 0.77 (their weights' rounding) on an AVX-512 VNNI CPU; with the 7-bit
#: range by 1.35 on both, the same to the last bit. The demo's int8 models on a test page,
#: emulated Haswell against that CPU: 8-bit weights, detector outputs up to 1.03 apart
#: (of up to 17.7) and classifier probabilities up to 0.63; 7-bit weights, the same
#: detector output to the bit, probabilities within 6e-8. The demo's int8 F1 on the VNNI
#: CPU was 0.8213 with either.
INT8_WEIGHT_MAX = 64
#: The same bound for a model quantised without ``reduce_range`` (for CPUs with VNNI only).
INT8_FULL_WEIGHT_MAX = 127


def _producers(graph) -> dict:
    return {name: node for node in graph.node for name in node.output}


def integer_head(model_proto, head_name: str, weight_max: int = INT8_WEIGHT_MAX) -> bool:
    """Run the float head convolution of a QDQ graph on its uint8 input with int8 weights and
    a float output, in place.

    The head ``Conv`` (``k x k``, stride 1, pads ``k // 2``, one group) reads the
    dequantisation of a uint8 tensor and writes the graph output. Kept in float, ONNX
    Runtime (1.19) dequantised its whole input (the 128-channel skip concatenation at a
    quarter of the input size), reordered it to its blocked float layout and back: 10% of
    an int8 pass for 0.5% of its multiply-adds. Here its ``k x k`` taps become the columns
    of one integer matrix product over the channels, in the NHWC layout of the int8
    convolutions before it: ``MatMulIntegerToFloat`` (uint8 input times int8 weights, one
    scale per column, int32 sums scaled to float) gives ``(N, H, W, k k O)``; the
    zero-padded result's ``k x k`` shifted slices of ``O`` channels summed, plus the bias,
    are the convolution. Only the weights are rounded (int8, one scale per tap and output
    channel); the output, whose class logits, sizes and offsets would share one uint8
    scale in a ``QLinearConv``, stays float.

    Args:
        model_proto: A QDQ ``onnx.ModelProto`` of :func:`quantize_detector`.
        head_name: Name of the head ``Conv`` node.
        weight_max: The largest int8 weight magnitude: :data:`INT8_WEIGHT_MAX` (7 bits,
            right on every x86 CPU) or :data:`INT8_FULL_WEIGHT_MAX` (CPUs with VNNI only).

    Returns:
        bool: Whether the head was rewritten (``False``: not a convolution of that form
        reading a per-tensor dequantisation, left as it is).
    """
    import onnx
    from onnx import helper
    from onnx import numpy_helper
    from kr.onnx.optimize import _attributes
    from kr.onnx.optimize import NCHW_TO_NHWC
    from kr.onnx.optimize import NHWC_TO_NCHW
    graph = model_proto.graph
    initializers = {t.name: t for t in graph.initializer}
    heads = [n for n in graph.node if n.name == head_name and n.op_type == 'Conv']
    if len(heads) != 1 or heads[0].input[1] not in initializers:
        return False
    head = heads[0]
    dq = _producers(graph).get(head.input[0])
    if dq is None or dq.op_type != 'DequantizeLinear' or len(dq.input) < 3:
        return False
    scale, zero = (numpy_helper.to_array(initializers[n]) if n in initializers else None
                   for n in dq.input[1:3])
    if scale is None or zero is None or scale.size != 1 or zero.dtype != np.uint8:
        return False
    weight = numpy_helper.to_array(initializers[head.input[1]]).astype(np.float64)
    o, c, k, k2 = weight.shape
    a = _attributes(head)
    p = k // 2
    if (k != k2 or k % 2 == 0 or a.get('group', 1) != 1
            or list(a.get('strides', [1, 1])) != [1, 1]
            or list(a.get('dilations', [1, 1])) != [1, 1]
            or list(a.get('pads', [0] * 4)) != [p] * 4
            or a.get('auto_pad', b'NOTSET') not in (b'NOTSET', 'NOTSET')):
        return False
    bias = (numpy_helper.to_array(initializers[head.input[2]]).astype(np.float32)
            if len(head.input) > 2 and head.input[2] else np.zeros(o, np.float32))
    # column (ky k + kx) O + o of the matrix is tap (ky, kx) of output channel o
    matrix = weight.transpose(1, 2, 3, 0).reshape(c, k * k * o)
    w_scale = np.abs(matrix).max(axis=0) / weight_max
    w_scale[w_scale == 0] = 1.0
    q_weight = np.clip(np.round(matrix / w_scale), -weight_max, weight_max)
    name = head.name + '_integer'
    consts = {'_W': q_weight.astype(np.int8), '_W_scale': w_scale.astype(np.float32),
              '_b': bias, '_pads': np.array([0, p, p, 0] * 2, np.int64),
              '_axes': np.array([1, 2, 3], np.int64)}
    nodes = [
        helper.make_node('Transpose', [dq.input[0]], [name + '_nhwc'], name=name + '_nhwc',
                         perm=list(NCHW_TO_NHWC)),
        helper.make_node('MatMulIntegerToFloat', [name + '_nhwc', name + '_W', dq.input[1],
                                                  name + '_W_scale', dq.input[2]],
                         [name + '_taps'], name=name + '_taps', domain='com.microsoft'),
        helper.make_node('Pad', [name + '_taps', name + '_pads'], [name + '_padded'],
                         name=name + '_pad'),
    ]
    tap_names = []
    for ky in range(k):
        for kx in range(k):
            t = '{}_tap{}{}'.format(name, ky, kx)
            j = ky * k + kx
            # rows ky .. ky + H of the padded H + 2p (an end of 0 would be empty: to the end)
            ends = [ky - 2 * p if ky < 2 * p else np.iinfo(np.int64).max,
                    kx - 2 * p if kx < 2 * p else np.iinfo(np.int64).max, (j + 1) * o]
            consts['_tap{}{}_starts'.format(ky, kx)] = np.array([ky, kx, j * o], np.int64)
            consts['_tap{}{}_ends'.format(ky, kx)] = np.array(ends, np.int64)
            nodes.append(helper.make_node('Slice', [name + '_padded', t + '_starts',
                                                    t + '_ends', name + '_axes'], [t], name=t))
            tap_names.append(t)
    nodes += [helper.make_node('Sum', tap_names + [name + '_b'], [name + '_sum'],
                               name=name + '_sum'),
              helper.make_node('Transpose', [name + '_sum'], [head.output[0]], name=name,
                               perm=list(NHWC_TO_NCHW))]
    graph.initializer.extend(numpy_helper.from_array(v, name + key) for key, v in consts.items())
    index = list(graph.node).index(head)
    kept = [n for n in graph.node if n is not head]
    kept[index:index] = nodes
    del graph.node[:]
    graph.node.extend(kept)
    if dq.output[0] not in {i for n in graph.node for i in n.input}:
        kept = [n for n in graph.node if dq.output[0] not in n.output]
        del graph.node[:]
        graph.node.extend(kept)
    used = {i for n in graph.node for i in n.input}
    inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    if not any(op.domain == 'com.microsoft' for op in model_proto.opset_import):
        model_proto.opset_import.append(helper.make_opsetid('com.microsoft', 1))
    onnx.checker.check_model(model_proto)
    return True


def _weights(reduce_range: bool) -> str:
    return 'int8 per channel' + (', 7-bit range' if reduce_range else '')


def quantize_detector(float_path: str, out_path: str, inputs,
                      integer_output_head: bool = True, reduce_range: bool = True) -> dict:
    """Write the int8 quantisation of an exported detector.

    Its sub-pixel interleaves are written in NHWC (:func:`kr.onnx.optimize.
    nhwc_depth_to_space`) before quantisation, so that they run on the quantised tensors.

    Args:
        float_path: ``detector.onnx`` of :func:`kr.onnx.export_detector`.
        out_path: The quantised model to write (whole or not at all).
        inputs: Calibration network inputs (:func:`calibration_inputs`), at least one.
        integer_output_head: Run the head convolution on its uint8 input with int8
            weights, its output in float (:func:`integer_head`); else the head is a float
            convolution of the dequantised input.
        reduce_range: Weights in 7 bits (:data:`INT8_WEIGHT_MAX`), which ONNX Runtime
            multiplies exactly on every x86 CPU; ``False``: the full int8 range, a little
            finer, but wrong where products saturate on CPUs without VNNI.

    Returns:
        dict: What was done (for the export metadata): format, opset, calibration method
        and page count, the nodes left out of the QDQ quantisation (the head) and whether
        the head was made an integer product with a float output (``integer_head``).

    Raises:
        ValueError: No calibration input.
    """
    import onnx
    from onnx import version_converter
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from kr import fileio
    inputs = list(inputs)
    if not inputs:
        raise ValueError('int8 quantisation needs at least one calibration page')
    with tempfile.TemporaryDirectory(prefix='kr-int8-') as tmp:
        converted = os.path.join(tmp, 'opset13.onnx')
        prepared = os.path.join(tmp, 'prepared.onnx')
        proto = version_converter.convert_version(onnx.load(float_path), QUANTIZED_OPSET)
        onnx.save(proto, converted)
        # symbolic shape inference is for transformer graphs; ours have plain dynamic axes
        quant_pre_process(converted, prepared, skip_symbolic_shape=True)
        prepared_proto = onnx.load(prepared)
        nhwc_depth_to_space(prepared_proto)
        keep_float = _output_node_names(prepared_proto)
        onnx.save(prepared_proto, prepared)
        quantized = os.path.join(tmp, 'quantized.onnx')
        q.quantize_static(prepared, quantized,
                          _PageReader(_first_input_name(prepared_proto), inputs),
                          quant_format=q.QuantFormat.QDQ, per_channel=True,
                          activation_type=q.QuantType.QUInt8,
                          weight_type=q.QuantType.QInt8, nodes_to_exclude=keep_float,
                          calibrate_method=q.CalibrationMethod.MinMax,
                          reduce_range=reduce_range)
        quantized_proto = onnx.load(quantized)
        weight_max = INT8_WEIGHT_MAX if reduce_range else INT8_FULL_WEIGHT_MAX
        integer = (integer_output_head and len(keep_float) == 1
                   and integer_head(quantized_proto, keep_float[0], weight_max))
        with fileio.atomic_path(out_path) as target:
            onnx.save(quantized_proto, target)
    return {'format': 'QDQ', 'weights': _weights(reduce_range), 'activations': 'uint8',
            'opset_version': QUANTIZED_OPSET, 'calibration': 'min-max',
            'calibration_pages': len(inputs), 'float_nodes': keep_float,
            'integer_head': bool(integer)}


def quantize_classifier(float_path: str, out_path: str, crops,
                        hard_sigmoid_arithmetic: bool = True, reduce_range: bool = True) -> dict:
    """Write the int8 quantisation of an exported classifier.

    As :func:`quantize_detector`: opset 13, batch norms folded, QDQ with int8 weights (one
    scale per output channel) and uint8 activations (min-max over the calibration crops).
    The last fully connected layer (the class logits, whose softmax picks the class and
    gives the class score that the class threshold is applied to) and the softmax stay
    float. ONNX Runtime (1.19) has no integer ``HardSigmoid``: the hard swishes dequantise
    and requantise their input.

    Args:
        float_path: ``classifier.onnx`` of :func:`kr.onnx.export_classifier`.
        out_path: The quantised model to write (whole or not at all).
        crops: ``(N, S, S, 3)`` uint8 calibration crops (:func:`calibration_crops`).
        hard_sigmoid_arithmetic: Write the hard sigmoids as ``Mul``, ``Add`` and ``Clip``.
        reduce_range: 7-bit weights, as :func:`quantize_detector`.

    Returns:
        dict: What was done (for the export metadata), as :func:`quantize_detector`.

    Raises:
        ValueError: No calibration crop.
    """
    import onnx
    from onnx import version_converter
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from kr import fileio
    crops = np.asarray(crops)
    if len(crops) == 0:
        raise ValueError('int8 quantisation of the classifier needs calibration crops')
    with tempfile.TemporaryDirectory(prefix='kr-int8-') as tmp:
        converted = os.path.join(tmp, 'opset13.onnx')
        prepared = os.path.join(tmp, 'prepared.onnx')
        onnx.save(version_converter.convert_version(onnx.load(float_path), QUANTIZED_OPSET),
                  converted)
        quant_pre_process(converted, prepared, skip_symbolic_shape=True)
        proto = onnx.load(prepared)
        if hard_sigmoid_arithmetic:
            arithmetic_hard_sigmoids(proto)
        _output_node_names(proto)  # names every node
        # the softmax and the layer whose logits it reads
        softmax = [n for n in proto.graph.node if n.op_type == 'Softmax']
        producers = _producers(proto.graph)
        keep_float = [n.name for n in softmax] + [
            producers[n.input[0]].name for n in softmax if n.input[0] in producers
            and producers[n.input[0]].op_type in ('Gemm', 'MatMul')]
        onnx.save(proto, prepared)
        batches = [normalize_image(crops[i:i + CALIBRATION_BATCH])
                   for i in range(0, len(crops), CALIBRATION_BATCH)]
        with fileio.atomic_path(out_path) as target:
            q.quantize_static(prepared, target, _PageReader(_first_input_name(proto), batches),
                              quant_format=q.QuantFormat.QDQ, per_channel=True,
                              activation_type=q.QuantType.QUInt8,
                              weight_type=q.QuantType.QInt8, nodes_to_exclude=keep_float,
                              calibrate_method=q.CalibrationMethod.MinMax,
                              reduce_range=reduce_range)
    return {'format': 'QDQ', 'weights': _weights(reduce_range), 'activations': 'uint8',
            'opset_version': QUANTIZED_OPSET, 'calibration': 'min-max',
            'calibration_crops': len(crops), 'float_nodes': keep_float}
