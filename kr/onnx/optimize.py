"""Graph rewrites of an exported detector that ONNX Runtime runs faster (SPEC section 12, the
one-second page).

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
    import onnx
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
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model_proto)
    return rewritten
