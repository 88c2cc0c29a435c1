"""Static int8 quantisation of an exported detector (SPEC section 12, the one-second page).

``onnxruntime.quantization`` with calibration pages: the graph is converted to opset 13
(per-channel weight scales need it), pre-processed (its batch norms folded into the
convolutions, which quantisation would otherwise keep in float between two quantised
tensors), then quantised in the QDQ format: weights int8 with one scale per output channel,
activations uint8 with ranges from the calibration pages (min-max), which ONNX Runtime runs
as integer convolutions (VNNI / AMX where the CPU has them). The head convolution, whose
one output tensor holds the class logits, box sizes and offsets (ranges of very different
widths: one uint8 scale would blur the logits near the threshold), stays in float; it is
0.5% of a pass's multiply-adds.

Measured on the 2-core machine (SPEC section 12): the full-size detector's pass at 832 x 1344
runs in 0.39 s of CPU instead of 0.99 s (the sub-pixel float graph; 1.13 s before it).
"""

import os
import tempfile

import numpy as np

from kr.datasets.image import normalize_image
from kr.datasets.image import to_array
from kr.detector.transforms import resize_image

#: Opset of the quantised graph (per-channel QDQ needs 13).
QUANTIZED_OPSET = 13
#: Calibration pages used when none are asked for: more pages than this moved the demo
#: detector's activation ranges little (min-max over whole pages of one kind).
CALIBRATION_PAGES = 8


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


def calibration_pages(data_dir: str, n_pages: int = CALIBRATION_PAGES) -> list:
    """Calibration pages: ``n_pages`` of a data folder's training pages (train.csv), evenly
    spaced over it (the same pages every time).

    Args:
        data_dir: Kaggle-layout folder (train.csv, train_images).
        n_pages: How many (all of them if there are fewer).

    Returns:
        list of ``(H, W, 3)`` uint8 pages.

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
    return [to_array(dataset[int(i)]['image']) for i in picks]


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


def quantize_detector(float_path: str, out_path: str, inputs) -> dict:
    """Write the int8 quantisation of an exported detector.

    Args:
        float_path: ``detector.onnx`` of :func:`kr.onnx.export_detector`.
        out_path: The quantised model to write (whole or not at all).
        inputs: Calibration network inputs (:func:`calibration_inputs`), at least one.

    Returns:
        dict: What was done (for the export metadata): format, opset, calibration method
        and page count, the nodes left in float.

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
        keep_float = _output_node_names(prepared_proto)
        onnx.save(prepared_proto, prepared)
        with fileio.atomic_path(out_path) as target:
            q.quantize_static(prepared, target,
                              _PageReader(_first_input_name(prepared_proto), inputs),
                              quant_format=q.QuantFormat.QDQ, per_channel=True,
                              activation_type=q.QuantType.QUInt8,
                              weight_type=q.QuantType.QInt8, nodes_to_exclude=keep_float,
                              calibrate_method=q.CalibrationMethod.MinMax)
    return {'format': 'QDQ', 'weights': 'int8 per channel', 'activations': 'uint8',
            'opset_version': QUANTIZED_OPSET, 'calibration': 'min-max',
            'calibration_pages': len(inputs), 'float_nodes': keep_float}
