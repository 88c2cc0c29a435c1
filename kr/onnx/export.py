"""ONNX export of the detector and the classifier, through ``onnx_chainer`` (shipped with
Chainer 7).

The graphs are traced with Chainer's own functions (:func:`kr.functions.stock_kernels`:
onnx_chainer converts Chainer's FunctionNodes, not our CPU kernels) in inference mode, then:

* the detector's batch, height and width are left dynamic (``N x 3 x H x W``, ``H`` and ``W``
  multiples of 32), so any page size runs: its transposed convolutions are written without
  the fixed ``output_shape`` onnx_chainer gives them;
* the classifier's batch is dynamic, its output is the softmax (what ``predict`` returns);
  the ``Expand`` of the squeeze-excite scaling gets a shape of 1 on the batch axis, which
  ONNX's broadcasting ``Mul`` after it widens again;
* the weights stay initializers only (onnx_chainer also lists them as graph inputs, which
  keeps ONNX Runtime from folding them into its optimised kernels).
"""

import os
import warnings

import numpy as np

from kr import fileio
from kr.classifier.registry import CLASSIFIERS
from kr.detector.registry import detector_family
from kr.functions import stock_kernels
from kr.onnx.optimize import drop_broadcasts
from kr.onnx.optimize import hard_sigmoids
from kr.onnx.optimize import subpixel_transposed_convolutions
from kr.runs import start_run
from kr.runs import versions

#: The newest opset onnx_chainer (Chainer 7.8.1) has converters and tests for.
OPSET_VERSION = 11
#: Files written by :func:`export_models`.
DETECTOR_FILE = 'detector.onnx'
#: The int8 detector written by :func:`export_models` when calibration pages are given.
INT8_DETECTOR_FILE = 'detector.int8.onnx'
#: The int8 classifier, written when the calibration pages come with their boxes.
INT8_CLASSIFIER_FILE = 'classifier.int8.onnx'
CLASSIFIER_FILE = 'classifier.onnx'
METADATA_FILE = 'onnx_models.json'
#: Graph input and output names.
DETECTOR_INPUT = 'image'
DETECTOR_OUTPUT = 'output'
CLASSIFIER_INPUT = 'crops'
CLASSIFIER_OUTPUT = 'prob'
#: Size of the detector's trace input (any multiple of 32 works; the graph does not keep it).
TRACE_SIZE = (64, 96)
#: Crops in the classifier's trace input (the graph's batch is dynamic).
TRACE_BATCH = 2
#: Version of the metadata JSON written by :func:`export_models`.
METADATA_VERSION = 1


def _deconvolution_converter(params):
    """``ConvTranspose`` without ``output_shape``, so that the graph takes any input size.

    onnx_chainer writes the traced output size; the size follows from the input here
    (``stride (h - 1) + k - 2 pad``, plus ``output_padding`` where Chainer's differs).
    """
    from onnx_chainer import onnx_helper
    func = params.func
    x_shape, w_shape = func.inputs[0].shape, func.inputs[1].shape
    kh, kw = w_shape[2:]
    dy, dx = getattr(func, 'dy', 1), getattr(func, 'dx', 1)
    out_pad = (func.outh - (func.sy * (x_shape[2] - 1) + dy * (kh - 1) + 1 - 2 * func.ph),
               func.outw - (func.sx * (x_shape[3] - 1) + dx * (kw - 1) + 1 - 2 * func.pw))
    attrs = dict(kernel_shape=(kh, kw), pads=(func.ph, func.pw, func.ph, func.pw),
                 strides=(func.sy, func.sx), group=func.groups)
    if (dy, dx) != (1, 1):
        attrs['dilations'] = (dy, dx)
    if any(out_pad):
        attrs['output_padding'] = out_pad
    return onnx_helper.make_node('ConvTranspose', params.input_names, params.output_names,
                                 **attrs),


def _broadcast_converter(dynamic_axes):
    """``Expand`` whose target shape has 1 on ``dynamic_axes``.

    ``Expand`` broadcasts both ways, so an input that already has the (dynamic) batch size
    keeps it; our models only broadcast in front of an elementwise operation, which ONNX
    broadcasts itself, so a 1 left by ``Expand`` is widened there.
    """
    def convert(params):
        from onnx_chainer import onnx_helper
        shape = [1 if axis in dynamic_axes else d for axis, d in enumerate(params.func._shape)]
        name = params.context.add_const(np.asarray(shape, dtype=np.int64), 'shape')
        return onnx_helper.make_node('Expand', list(params.input_names) + [name],
                                     params.output_names),
    return convert


def _trace(model, x, input_name: str, output_name: str, dynamic_axes, opset_version: int):
    """Run onnx_chainer on ``model(x)`` with Chainer's own functions; returns ModelProto."""
    import onnx_chainer
    if model.xp is not np:
        raise ValueError('export a model on the CPU: call model.to_cpu() first')
    converters = {'Deconvolution2DFunction': _deconvolution_converter,
                  'BroadcastTo': _broadcast_converter(dynamic_axes)}
    with stock_kernels(), warnings.catch_warnings():
        # external_converters is flagged experimental (ours are the two above), and
        # onnx_chainer uses helpers onnx 1.16 deprecates.
        warnings.simplefilter('ignore', FutureWarning)
        warnings.simplefilter('ignore', UserWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        return onnx_chainer.export(model, x, filename=None, opset_version=opset_version,
                                   input_names=[input_name], output_names=[output_name],
                                   train=False, external_converters=converters)


def _set_dims(value_info, dims: dict) -> None:
    """Give the axes of a graph input/output symbolic names (``{axis: name}``)."""
    shape = value_info.type.tensor_type.shape
    for axis, name in dims.items():
        shape.dim[axis].dim_param = name


def _finish(model_proto, input_dims: dict, output_dims: dict):
    """Drop the initializers from the graph inputs, name the dynamic axes, check the model."""
    import onnx
    graph = model_proto.graph
    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    # Shapes traced at one size would contradict the dynamic axes.
    del graph.value_info[:]
    assert len(graph.input) == 1 and len(graph.output) == 1
    _set_dims(graph.input[0], input_dims)
    _set_dims(graph.output[0], output_dims)
    onnx.checker.check_model(model_proto)
    return model_proto


def _append_softmax(model_proto, output_name: str):
    """Replace the graph's logits output by its softmax over the classes, named ``output_name``."""
    import onnx
    graph = model_proto.graph
    logits = graph.output[0]
    node = onnx.helper.make_node('Softmax', [logits.name], [output_name], axis=1,
                                 name='Softmax_probabilities')
    graph.node.append(node)
    prob = onnx.ValueInfoProto()
    prob.CopyFrom(logits)
    prob.name = output_name
    del graph.output[:]
    graph.output.append(prob)
    return model_proto


def _save(model_proto, path: str) -> None:
    with fileio.atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(model_proto.SerializeToString())


def _export(model, x, path: str, input_name: str, output_name: str, input_dims: dict,
            output_dims: dict, opset_version: int, softmax: bool = False,
            subpixel: bool = False):
    """Trace ``model(x)`` with the axes of ``input_dims`` dynamic, finish and save the graph
    (the detector with its transposed convolutions rewritten as sub-pixel convolutions when
    ``subpixel``, the classifier with its broadcasts dropped and its hard sigmoids fused:
    :mod:`kr.onnx.optimize`)."""
    traced_output = 'logits' if softmax else output_name
    proto = _trace(model, x, input_name, traced_output, tuple(input_dims), opset_version)
    if softmax:
        proto = _append_softmax(proto, output_name)
    proto = _finish(proto, input_dims, output_dims)
    if subpixel:
        subpixel_transposed_convolutions(proto)
    else:
        drop_broadcasts(proto)
        hard_sigmoids(proto)
    _save(proto, path)
    return proto


def export_detector(model, path: str, opset_version: int = OPSET_VERSION):
    """Export a detector of a :data:`kr.detector.DETECTORS` family to ONNX.

    Graph: input :data:`DETECTOR_INPUT` ``(N, 3, H, W)`` float32 images normalised by
    ``kr.datasets.normalize_image``, ``H`` and ``W`` any multiples of the family's
    ``size_multiple``; output :data:`DETECTOR_OUTPUT`, the raw network output of
    ``model.forward`` (CenterNet: ``(N, n_fg_class + 4, H / 4, W / 4)``, decoded by
    ``kr.detector.centernet.decode``). Its 4x4 stride-2 transposed convolutions are written
    as sub-pixel convolutions (:mod:`kr.onnx.optimize`: the same values up to float
    rounding, faster in ONNX Runtime).

    Args:
        model: The detector (on the CPU).
        path: ``.onnx`` file to write.
        opset_version: ONNX opset.

    Returns:
        ``onnx.ModelProto`` that was written.

    Raises:
        ValueError: A detector of no family, or of a family without an ONNX export
            (:attr:`kr.detector.DetectorFamily.no_onnx` says why).
    """
    family = detector_family(model)  # a known family, or a clear error before tracing
    if family.no_onnx:
        raise ValueError('no ONNX export for {} detectors: {}; use the chainer backend'.format(
            family.name, family.no_onnx))
    x = np.zeros((1, 3) + TRACE_SIZE, dtype=np.float32)
    return _export(model, x, path, DETECTOR_INPUT, DETECTOR_OUTPUT, {0: 'N', 2: 'H', 3: 'W'},
                   {0: 'N', 2: 'h', 3: 'w'}, opset_version, subpixel=True)


def export_classifier(model, path: str, opset_version: int = OPSET_VERSION):
    """Export a character classifier (any of ``kr.classifier.CLASSIFIERS``) to ONNX.

    Graph: input :data:`CLASSIFIER_INPUT` ``(N, 3, S, S)`` float32 normalised crops with
    ``S = model.input_size``; output :data:`CLASSIFIER_OUTPUT` ``(N, n_classes)`` float32
    softmax probabilities (what ``model.predict`` returns); ``N`` is dynamic. Its
    squeeze-excite ``Expand`` nodes are dropped (``Mul`` broadcasts) and its hard sigmoids
    written as ``HardSigmoid`` (:mod:`kr.onnx.optimize`; 20% less CPU for the 99 crops of
    benchmarks/page_speed.py with MobileNetV3-Large). Arguments and return value as
    :func:`export_detector`, for a classifier on the CPU.
    """
    size = model.input_size
    x = np.zeros((TRACE_BATCH, 3, size, size), dtype=np.float32)
    return _export(model, x, path, CLASSIFIER_INPUT, CLASSIFIER_OUTPUT, {0: 'N'}, {0: 'N'},
                   opset_version, softmax=True)


def _n_outputs(proto) -> int:
    """Size of the last axis of the graph's output."""
    return int(proto.graph.output[0].type.tensor_type.shape.dim[-1].dim_value)


def classifier_name(model) -> str:
    """The ``kr.classifier.CLASSIFIERS`` key of a classifier's class (``None`` if unknown)."""
    for name, cls in CLASSIFIERS.items():
        if type(model) is cls:
            return name
    return None


def export_models(detector, classifier, out_dir: str, opset_version: int = OPSET_VERSION,
                  run_record: dict = None, int8_calibration=None) -> dict:
    """Export both models and the metadata the ONNX Runtime backend needs.

    Writes ``<out_dir>/detector.onnx``, ``<out_dir>/classifier.onnx`` and
    ``<out_dir>/onnx_models.json`` (read by :func:`kr.onnx.load_onnx_models`): the file names
    and graph input/output names, the detector's family (the :data:`kr.detector.DETECTORS`
    key the runtime dispatches on), ``n_fg_class``, ``width``, thresholds, output stride,
    size multiple and standard shorter side, and the classifier's
    architecture, ``n_classes``, ``width`` and ``input_size``.

    With ``int8_calibration`` the detector is also quantised to int8
    (:func:`kr.onnx.quantize.quantize_detector`, calibrated on those pages at the
    detector's standard size) into ``<out_dir>/detector.int8.onnx``, which the metadata
    then names as the detector to run (the float one stays, as ``float_file``). Pages given
    with their character boxes also quantise the classifier
    (:func:`kr.onnx.quantize.quantize_classifier`, calibrated on crops of those boxes) into
    ``<out_dir>/classifier.int8.onnx``, named the same way.

    Args:
        detector: :class:`~kr.detector.Res18UnetCenterNet` on the CPU.
        classifier: A classifier of ``kr.classifier`` on the CPU.
        out_dir: Output folder (created).
        opset_version: ONNX opset.
        run_record: Written as ``out_dir/args.json`` first.
        int8_calibration: Pages (``(H, W, 3)`` uint8 or PIL) to calibrate an int8 detector
            with, e.g. :func:`kr.onnx.quantize.calibration_pages` of the training data; or
            ``(page, (R, 4) xyxy boxes)`` pairs (``calibration_pages(..., boxes=True)``) to
            calibrate an int8 detector and an int8 classifier.

    Returns:
        dict: The metadata written.

    Raises:
        ValueError: ``int8_calibration`` without pages, or for a detector family without
            ``network_size``.
    """
    import onnx
    family = detector_family(detector)
    if int8_calibration is not None:
        int8_calibration = list(int8_calibration)
        if not int8_calibration:
            raise ValueError('int8 quantisation needs at least one calibration page')
        if not hasattr(detector, 'network_size'):
            raise ValueError('int8 quantisation is for detectors that tell their network '
                             'input size (network_size); the {} family does not'.format(
                                 family.name))
    with_boxes = int8_calibration is not None and all(
        isinstance(item, tuple) for item in int8_calibration)
    start_run(out_dir, run_record)
    export_detector(detector, os.path.join(out_dir, DETECTOR_FILE), opset_version)
    quantization = cls_quantization = None
    if int8_calibration is not None:
        from kr.onnx.quantize import calibration_inputs
        from kr.onnx.quantize import quantize_detector
        pages = [item[0] for item in int8_calibration] if with_boxes else int8_calibration
        quantization = quantize_detector(os.path.join(out_dir, DETECTOR_FILE),
                                         os.path.join(out_dir, INT8_DETECTOR_FILE),
                                         calibration_inputs(detector, pages))
    cls_proto = export_classifier(classifier, os.path.join(out_dir, CLASSIFIER_FILE),
                                  opset_version)
    if with_boxes:
        from kr.onnx.quantize import calibration_crops
        from kr.onnx.quantize import quantize_classifier
        cls_quantization = quantize_classifier(
            os.path.join(out_dir, CLASSIFIER_FILE), os.path.join(out_dir, INT8_CLASSIFIER_FILE),
            calibration_crops(int8_calibration, int(classifier.input_size)))
    meta = {
        'format_version': METADATA_VERSION,
        'opset_version': opset_version,
        'detector': {
            'file': DETECTOR_FILE if quantization is None else INT8_DETECTOR_FILE,
            'float_file': DETECTOR_FILE,
            'quantization': quantization,
            'family': family.name,
            'input': DETECTOR_INPUT,
            'output': DETECTOR_OUTPUT,
            'n_fg_class': int(detector.n_fg_class),
            'width': float(detector.width),
            'score_threshold': float(detector.score_threshold),
            'nms_threshold': float(detector.nms_threshold),
            'stride': int(detector.stride),
            'size_multiple': int(detector.size_multiple),
            'min_side': int(detector.min_side),
        },
        'classifier': {
            'file': CLASSIFIER_FILE if cls_quantization is None else INT8_CLASSIFIER_FILE,
            'float_file': CLASSIFIER_FILE,
            'quantization': cls_quantization,
            'input': CLASSIFIER_INPUT,
            'output': CLASSIFIER_OUTPUT,
            'model': classifier_name(classifier),
            'n_classes': _n_outputs(cls_proto),
            'width': getattr(classifier, 'width', None),
            'input_size': int(classifier.input_size),
        },
        'versions': dict(versions(), onnx=onnx.__version__),
    }
    fileio.write_json(os.path.join(out_dir, METADATA_FILE), meta)
    return meta
