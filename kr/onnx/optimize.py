"""Graph rewrites of the exported models that ONNX Runtime runs faster (SPEC section 12, the
one-second page): sub-pixel convolutions for the detector's transposed convolutions, and for
the classifier one ``HardSigmoid`` per hard sigmoid and no ``Expand`` before a broadcasting
``Mul`` (:func:`hard_sigmoids`, :func:`drop_broadcasts`).

ONNX Runtime's CPU ``ConvTranspose`` is a plain GEMM followed by col2im, without the blocked
(NCHWc) kernels, fused batch norm and fused ReLU that its ``Conv`` gets: in the full-size
Res18UnetCenterNet the three 4x4 stride-2 transposed convolutions of the U-Net decoder were
36% of a pass's time for 28% of its multiply-adds (measured with onnxruntime's profiler,
1.19, a 832 x 1344 input). :func:`subpixel_transposed_convolutions` writes each of them as
the four sub-pixel convolutions it is made of (Shi et al., "Real-Time Single Image and Video
Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network",
arXiv:1609.05158): output pixel ``(2m + a, 2n + b)`` of a 4x4 stride-2 pad-1 transposed
convolution only sees inputs ``m - 1 + a .. m + a`` by ``n - 1 + b .. n + b``, through the
kernel taps ``3 - a - 2t`` (``t`` = 0, 1 over those rows) and likewise for the columns. So it
is a 2x2 ``Conv`` per phase ``(a, b)`` with the pads ``(1 - a, 1 - b, a, b)``, the four
concatenated along the channels and interleaved by ``DepthToSpace`` (DCR). The same
multiply-adds, the same values up to float rounding; the batch normalisation that follows is
folded into the four convolutions and the ReLU after it moved in front of ``DepthToSpace``
(both act per channel, which ``DepthToSpace`` only moves), so ONNX Runtime fuses them.
"""

import numpy as np

#: The transposed convolution that :func:`subpixel_transposed_convolutions` rewrites: the
#: U-Net up-sampling of :class:`kr.detector.centernet.model.UpBlock`.
SUBPIXEL_KERNEL = 4
SUBPIXEL_STRIDE = 2
SUBPIXEL_PAD = 1


def _attributes(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _is_subpixel(node, initializers: dict) -> bool:
    """Whether ``node`` is a ConvTranspose that :func:`subpixel_transposed_convolutions`
    rewrites: kernel 4, stride 2, pad 1, one group, no dilation or output padding, weights
    (and bias) stored in the graph."""
    if node.op_type != 'ConvTranspose' or node.input[1] not in initializers:
        return False
    if len(node.input) > 2 and node.input[2] and node.input[2] not in initializers:
        return False
    a = _attributes(node)
    k, s, p = SUBPIXEL_KERNEL, SUBPIXEL_STRIDE, SUBPIXEL_PAD
    return (list(a.get('kernel_shape', [])) == [k, k] and list(a.get('strides', [])) == [s, s]
            and list(a.get('pads', [])) == [p] * 4 and a.get('group', 1) == 1
            and list(a.get('dilations', [1, 1])) == [1, 1]
            and not any(a.get('output_padding', [])) and 'output_shape' not in a
            and a.get('auto_pad', b'NOTSET') in (b'NOTSET', 'NOTSET'))


def subpixel_kernels(weight: np.ndarray):
    """The four 2x2 convolution kernels of a 4x4 stride-2 pad-1 transposed convolution.

    Args:
        weight: ``(C_in, C_out, 4, 4)`` transposed-convolution weights (ONNX and Chainer
            layout).

    Returns:
        dict ``{(a, b): (C_out, C_in, 2, 2) kernel}`` for the output phases ``a`` (row) and
        ``b`` (column) in ``{0, 1}``; phase ``(a, b)``'s convolution takes the pads
        ``(1 - a, 1 - b, a, b)`` (top, left, bottom, right).
    """
    weight = np.asarray(weight)
    kernels = {}
    for a in (0, 1):
        for b in (0, 1):
            rows = [3 - a - 2 * t for t in (0, 1)]
            cols = [3 - b - 2 * t for t in (0, 1)]
            k = weight[:, :, rows][:, :, :, cols]           # (C_in, C_out, 2, 2)
            kernels[a, b] = np.ascontiguousarray(k.transpose(1, 0, 2, 3))
    return kernels


def _sole_consumer(name: str, consumers: dict, op_type: str, outputs: set):
    """The only node that reads ``name``, if it is an ``op_type`` and ``name`` is not a graph
    output; else ``None``."""
    nodes = consumers.get(name, [])
    if len(nodes) == 1 and nodes[0].op_type == op_type and name not in outputs:
        return nodes[0]
    return None


def _fold_batch_norm(bn, initializers: dict, weight, bias):
    """Weights and bias of a transposed convolution with the inference-mode batch norm
    ``bn`` after it folded in (``None`` when ``bn``'s parameters are not all stored)."""
    from onnx import numpy_helper
    if any(name not in initializers for name in bn.input[1:5]):
        return None
    gamma, beta, mean, var = (numpy_helper.to_array(initializers[name]).astype(np.float64)
                              for name in bn.input[1:5])
    eps = float(_attributes(bn).get('epsilon', 1e-5))
    scale = gamma / np.sqrt(var + eps)
    return (weight * scale[None, :, None, None],
            (bias.astype(np.float64) - mean) * scale + beta)


def _install(model_proto, nodes, added, prune: bool = False) -> None:
    """Give the graph ``nodes`` as its node list and the ``added`` initializers, then check it.

    ``prune``: drop the initializers no node reads any more (the weights a rewrite replaced).
    """
    import onnx
    graph = model_proto.graph
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    if prune:
        used = {name for node in graph.node for name in node.input}
        kept = [t for t in graph.initializer if t.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    onnx.checker.check_model(model_proto)


def subpixel_transposed_convolutions(model_proto):
    """Rewrite every 4x4 stride-2 pad-1 ``ConvTranspose`` as four 2x2 convolutions and a
    ``DepthToSpace`` (see the module docstring), in place.

    A batch normalisation that alone reads the transposed convolution is folded into the
    convolutions, and a ReLU that alone reads that is applied to each of them. Other nodes
    are left as they are.

    Args:
        model_proto: ``onnx.ModelProto`` (opset 11 or later).

    Returns:
        int: The number of transposed convolutions rewritten.
    """
    from onnx import helper
    from onnx import numpy_helper
    graph = model_proto.graph
    initializers = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    nodes, dropped, added, rewritten = [], set(), [], 0
    for node in graph.node:
        if id(node) in dropped:
            continue
        if not _is_subpixel(node, initializers):
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float64)
        c_out = weight.shape[1]
        bias = (numpy_helper.to_array(initializers[node.input[2]])
                if len(node.input) > 2 and node.input[2] else np.zeros(c_out, np.float32))
        out = node.output[0]
        bn = _sole_consumer(out, consumers, 'BatchNormalization', outputs)
        relu = None
        folded = None if bn is None else _fold_batch_norm(bn, initializers, weight, bias)
        if folded is not None:
            weight, bias = folded
            dropped.add(id(bn))
            out = bn.output[0]
            relu = _sole_consumer(out, consumers, 'Relu', outputs)
            if relu is not None:
                dropped.add(id(relu))
                out = relu.output[0]
        base = node.name or node.output[0]
        phases = []
        for (a, b), kernel in subpixel_kernels(weight).items():
            prefix = '{}_subpixel{}{}'.format(base, a, b)
            added.append(numpy_helper.from_array(kernel.astype(np.float32), prefix + '_W'))
            added.append(numpy_helper.from_array(np.asarray(bias, np.float32), prefix + '_b'))
            y = prefix + ('_conv' if relu is not None else '')
            nodes.append(helper.make_node('Conv', [node.input[0], prefix + '_W', prefix + '_b'],
                                          [y], name=prefix, kernel_shape=[2, 2],
                                          pads=[1 - a, 1 - b, a, b]))
            if relu is not None:
                nodes.append(helper.make_node('Relu', [y], [prefix], name=prefix + '_relu'))
            phases.append(prefix)
        concat = base + '_subpixel'
        nodes.append(helper.make_node('Concat', phases, [concat], name=concat, axis=1))
        nodes.append(helper.make_node('DepthToSpace', [concat], [out], name=base + '_shuffle',
                                      blocksize=SUBPIXEL_STRIDE, mode='DCR'))
        rewritten += 1
    if not rewritten:
        return 0
    _install(model_proto, nodes, added, prune=True)
    return rewritten


#: Hard sigmoid as Chainer's MobileNetV3 writes it (``clipped_relu(x + 3, 6) / 6``) and as
#: one ONNX ``HardSigmoid`` (``clip(alpha x + beta, 0, 1)``).
HARD_SIGMOID_SHIFT, HARD_SIGMOID_CLIP = 3.0, 6.0
HARD_SIGMOID_ALPHA, HARD_SIGMOID_BETA = 1 / 6, 0.5


def _constants(graph) -> dict:
    """``{name: array}`` of the initializers and ``Constant`` node outputs."""
    from onnx import numpy_helper
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == 'Constant':
            a = _attributes(node)
            if 'value' in a:
                values[node.output[0]] = numpy_helper.to_array(a['value'])
    return values


def _consumers(graph) -> dict:
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def _scalar(values: dict, name: str, expected: float) -> bool:
    value = values.get(name)
    return value is not None and value.size == 1 and np.isclose(float(value), expected,
                                                                rtol=1e-6, atol=0)


def _drop_unused(graph) -> None:
    """Remove ``Constant`` nodes and initializers that nothing reads any more."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [n for n in graph.node if n.op_type != 'Constant' or n.output[0] in used]
    del graph.node[:]
    graph.node.extend(kept)
    inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def hard_sigmoids(model_proto) -> int:
    """Write each ``Add(x, 3) -> Clip(0, 6) -> Mul(1/6)`` chain (Chainer's hard sigmoid, also
    inside its hard swish) as one ``HardSigmoid``, in place: one elementwise pass over the
    tensor instead of three (the same values up to float rounding: ``x / 6 + 0.5`` instead
    of ``(x + 3) / 6``). Returns the number of chains rewritten."""
    import onnx
    from onnx import helper
    graph = model_proto.graph
    values, consumers = _constants(graph), _consumers(graph)
    outputs = {o.name for o in graph.output}
    replace, dropped = {}, set()
    for add in graph.node:
        if add.op_type != 'Add' or len(add.input) != 2:
            continue
        x, shift = ((add.input[0], add.input[1]) if add.input[1] in values
                    else (add.input[1], add.input[0]))
        if not _scalar(values, shift, HARD_SIGMOID_SHIFT):
            continue
        clip = _sole_consumer(add.output[0], consumers, 'Clip', outputs)
        if clip is None or len(clip.input) != 3 or clip.input[0] != add.output[0] or not (
                _scalar(values, clip.input[1], 0.0)
                and _scalar(values, clip.input[2], HARD_SIGMOID_CLIP)):
            continue
        mul = _sole_consumer(clip.output[0], consumers, 'Mul', outputs)
        if mul is None:
            continue
        scale = mul.input[1] if mul.input[0] == clip.output[0] else mul.input[0]
        if not _scalar(values, scale, 1 / HARD_SIGMOID_CLIP):
            continue
        replace[id(add)] = helper.make_node(
            'HardSigmoid', [x], [mul.output[0]], name=(mul.name or mul.output[0]) + '_hard',
            alpha=HARD_SIGMOID_ALPHA, beta=HARD_SIGMOID_BETA)
        dropped.update((id(clip), id(mul)))
    if not replace:
        return 0
    nodes = [replace.get(id(n), n) for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused(graph)
    onnx.checker.check_model(model_proto)
    return len(replace)


#: Elementwise operators that broadcast their inputs (ONNX multidirectional broadcasting).
BROADCASTING_OPS = ('Add', 'Sub', 'Mul', 'Div')


def drop_broadcasts(model_proto) -> int:
    """Remove each ``Expand`` that only feeds broadcasting elementwise operators whose other
    input already has the expanded shape (the squeeze-excite scaling: ``(N, C, 1, 1)``
    expanded to ``(N, C, H, W)`` before a ``Mul`` that broadcasts by itself), in place: the
    same values, without writing the expanded tensor. Shapes come from ONNX shape
    inference; an ``Expand`` whose shapes it cannot tell is kept. Returns the number removed.
    """
    import onnx
    graph = model_proto.graph
    values, consumers = _constants(graph), _consumers(graph)
    inferred = onnx.shape_inference.infer_shapes(model_proto).graph
    shapes = {}
    for info in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField('dim_value') else d.dim_param
                             for d in dims]
    outputs = {o.name for o in graph.output}
    rename, dropped = {}, set()
    for node in graph.node:
        if node.op_type != 'Expand' or node.input[1] not in values:
            continue
        target = [int(v) for v in np.asarray(values[node.input[1]]).reshape(-1)]
        readers = consumers.get(node.output[0], [])
        if node.output[0] in outputs or not readers:
            continue
        ok = True
        for reader in readers:
            others = [name for name in reader.input if name != node.output[0]]
            if reader.op_type not in BROADCASTING_OPS or len(others) != 1:
                ok = False
                break
            other = shapes.get(others[0])
            # the other input covers the target on every axis (1 on the target's axes
            # means Expand kept the input's own size there)
            if other is None or len(other) != len(target) or any(
                    t != 1 and o != t for t, o in zip(target, other)):
                ok = False
                break
        source = shapes.get(node.input[0])
        if not ok or source is None or len(source) != len(target):
            continue
        rename[node.output[0]] = node.input[0]
        dropped.add(id(node))
    if not dropped:
        return 0
    nodes = [n for n in graph.node if id(n) not in dropped]
    for node in nodes:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused(graph)
    onnx.checker.check_model(model_proto)
    return len(dropped)


#: Permutations between the NCHW layout of the graphs and the NHWC one of ONNX Runtime's
#: int8 kernels.
NCHW_TO_NHWC, NHWC_TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def _channels(model_proto) -> dict:
    """``{tensor name: channel count}`` of the 4-D tensors whose channel axis (1) ONNX shape
    inference can tell."""
    import onnx
    inferred = onnx.shape_inference.infer_shapes(model_proto).graph
    channels = {}
    for info in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
        dims = info.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField('dim_value'):
            channels[info.name] = int(dims[1].dim_value)
    return channels


def nhwc_depth_to_space(model_proto) -> int:
    """Write each ``DepthToSpace`` (DCR, block 2) as data movements that an int8 graph runs
    in uint8 and in ONNX Runtime's NHWC layout, in place.

    ONNX Runtime (1.19) has no uint8 ``DepthToSpace`` and runs its int8 convolutions in NHWC:
    in the quantised detector each sub-pixel interleave was a Transpose to NCHW, a
    dequantisation, a float ``DepthToSpace``, a quantisation and a Transpose back (17% of a
    pass's time with the transposes of the skip concatenations, measured with its
    profiler). The same interleave in NHWC is a split and a concatenation: of ``(N, H, W,
    4C)`` with channels ``(a, b, c)`` (DCR), the two halves ``a = 0, 1`` are rows ``2h`` and
    ``2h + 1`` of the output, each ``(N, H, W, 2C)`` already ``(N, H, 2W, C)`` in memory; their
    concatenation along the width is the output ``(N, 2H, 2W, C)`` in memory, which a
    ``Reshape`` (``[0, -1, 0, C]``: static, so any page size runs) names so. Written as
    ``Transpose(NCHW -> NHWC) -> Split -> Concat -> Reshape -> Transpose(NHWC -> NCHW)``,
    whose outer transposes cancel those ONNX Runtime puts around its NHWC int8 operators,
    and whose middle ones ``onnxruntime.quantization`` runs on the quantised tensor. The
    same values exactly (only moves). A ``DepthToSpace`` whose input channels shape
    inference cannot tell is kept.

    Args:
        model_proto: ``onnx.ModelProto`` (opset 13 or later: ``Split`` with its sizes as an
            input).

    Returns:
        int: The number of ``DepthToSpace`` nodes rewritten.
    """
    from onnx import helper
    from onnx import numpy_helper
    graph = model_proto.graph
    channels = _channels(model_proto)
    nodes, added, rewritten = [], [], 0
    for node in graph.node:
        a = _attributes(node)
        mode = a.get('mode', b'DCR')
        c4 = channels.get(node.input[0]) if node.op_type == 'DepthToSpace' else None
        if (c4 is None or a.get('blocksize') != SUBPIXEL_STRIDE or mode not in (b'DCR', 'DCR')
                or c4 % 4):
            nodes.append(node)
            continue
        c = c4 // 4
        p = (node.name or node.output[0]) + '_nhwc'
        added.append(numpy_helper.from_array(np.array([2 * c, 2 * c], np.int64), p + '_halves'))
        added.append(numpy_helper.from_array(np.array([0, -1, 0, c], np.int64), p + '_shape'))
        nodes.extend([
            helper.make_node('Transpose', [node.input[0]], [p + '_in'], name=p + '_in',
                             perm=list(NCHW_TO_NHWC)),
            helper.make_node('Split', [p + '_in', p + '_halves'], [p + '_row0', p + '_row1'],
                             name=p + '_split', axis=3),
            helper.make_node('Concat', [p + '_row0', p + '_row1'], [p + '_rows'],
                             name=p + '_rows', axis=2),
            helper.make_node('Reshape', [p + '_rows', p + '_shape'], [p + '_out'],
                             name=p + '_reshape'),
            helper.make_node('Transpose', [p + '_out'], [node.output[0]], name=p + '_out',
                             perm=list(NHWC_TO_NCHW)),
        ])
        rewritten += 1
    if not rewritten:
        return 0
    _install(model_proto, nodes, added)
    return rewritten


def arithmetic_hard_sigmoids(model_proto) -> int:
    """Write each ``HardSigmoid`` (``clip(alpha x + beta, 0, 1)``) as ``Mul``, ``Add`` and
    ``Clip``, in place: the inverse of :func:`hard_sigmoids`, for the int8 classifier.
    ONNX Runtime (1.19) has no integer ``HardSigmoid``, so a quantised graph dequantised its
    input and requantised its output at every hard swish; it runs ``Mul`` and ``Add`` on
    uint8 tensors and folds the ``Clip`` into the quantisation range. Returns the number
    rewritten.

    Args:
        model_proto: ``onnx.ModelProto`` (opset 11 or later: ``Clip`` with inputs).
    """
    import onnx
    from onnx import helper
    from onnx import numpy_helper
    graph = model_proto.graph
    nodes, added, rewritten = [], {}, 0
    for node in graph.node:
        if node.op_type != 'HardSigmoid':
            nodes.append(node)
            continue
        a = _attributes(node)
        alpha, beta = float(a.get('alpha', 0.2)), float(a.get('beta', 0.5))  # ONNX's defaults
        names = []
        for value in (alpha, beta, 0.0, 1.0):
            name = 'hard_sigmoid_const_{!r}'.format(value)
            added[name] = numpy_helper.from_array(np.array(value, np.float32), name)
            names.append(name)
        p = (node.name or node.output[0]) + '_arith'
        nodes.extend([
            helper.make_node('Mul', [node.input[0], names[0]], [p + '_scaled'], name=p + '_mul'),
            helper.make_node('Add', [p + '_scaled', names[1]], [p + '_shifted'],
                             name=p + '_add'),
            helper.make_node('Clip', [p + '_shifted', names[2], names[3]], [node.output[0]],
                             name=p + '_clip'),
        ])
        rewritten += 1
    if not rewritten:
        return 0
    del graph.node[:]
    graph.node.extend(nodes)
    known = {t.name for t in graph.initializer}
    graph.initializer.extend(t for name, t in added.items() if name not in known)
    onnx.checker.check_model(model_proto)
    return rewritten
