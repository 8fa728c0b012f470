"""Exact graph rewrites that make the FP32 model faster without changing what it computes."""

from __future__ import annotations

from typing import Any

import numpy as np


def _rank(model: Any, name: str) -> int | None:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        if vi.name == name and vi.type.tensor_type.HasField("shape"):
            return len(vi.type.tensor_type.shape.dim)
    return None


def softmax_last_axis(model: Any) -> int:
    """Rewrite every ``Softmax`` over a non-last axis as Transpose -> Softmax(last) -> Transpose, in place.

    YOLO's DFL takes a softmax over the 16 distance bins on axis 1 of ``(B, 16, 4, anchors)``: ONNX
    Runtime's CPU kernel is strided there (about a tenth of the model's time at 256 px), while a
    last-axis softmax is contiguous and the transposes merge into the neighbouring ones. Returns
    how many nodes were rewritten.
    """
    from onnx import helper

    graph = model.graph
    rewritten = 0
    for index, node in enumerate(list(graph.node)):
        if node.op_type != "Softmax":
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        rank = _rank(model, node.input[0])
        if rank is None or axis in (-1, rank - 1):
            continue
        axis %= rank
        perm = [d for d in range(rank) if d != axis] + [axis]
        inverse = sorted(range(rank), key=perm.__getitem__)
        src, dst, name = node.input[0], node.output[0], node.name or f"softmax_{index}"
        new = [
            helper.make_node("Transpose", [src], [f"{dst}_last_in"], perm=perm, name=f"{name}_to_last"),
            helper.make_node("Softmax", [f"{dst}_last_in"], [f"{dst}_last"], axis=rank - 1, name=f"{name}_last"),
            helper.make_node("Transpose", [f"{dst}_last"], [dst], perm=inverse, name=f"{name}_back"),
        ]
        position = list(graph.node).index(node)
        graph.node.remove(node)
        for offset, item in enumerate(new):
            graph.node.insert(position + offset, item)
        rewritten += 1
    return rewritten


#: The input scale that makes a uint8 pixel its own quantized value (what ``float32(pixel) / 255`` quantizes to).
PIXEL_SCALE = np.float32(1.0 / 255.0)


def _pixel_quantizer(model: Any, name: str) -> Any | None:
    """The input's ``QuantizeLinear`` when it is the input's only consumer and maps ``pixel / 255`` back onto
    ``pixel`` exactly (scale ``float32(1/255)``, uint8 zero point 0), else ``None``."""
    from onnx import numpy_helper

    users = [n for n in model.graph.node if name in n.input]
    if len(users) != 1 or users[0].op_type != "QuantizeLinear" or len(users[0].input) < 3:
        return None
    consts = {t.name: t for t in model.graph.initializer}
    scale, zero = (consts.get(i) for i in users[0].input[1:3])
    if scale is None or zero is None:
        return None
    scale, zero = numpy_helper.to_array(scale), numpy_helper.to_array(zero)
    exact = scale.shape == () and scale == PIXEL_SCALE and zero.dtype == np.uint8 and zero.shape == () and zero == 0
    return users[0] if exact else None


def uint8_nhwc_input(model: Any) -> str:
    """Make the model take the letterboxed image itself, in place: a ``uint8 (B, H, W, 3)`` input feeding
    what the old ``float (B, 3, H, W)`` input fed. Returns how:

    - ``"pixels_are_quantized"``: the input's only consumer quantized ``pixel / 255`` with scale 1/255 and
      zero point 0 (an INT8 model whose input range is pinned to [0, 1]), which gives back the pixel itself;
      that ``QuantizeLinear`` is replaced by a uint8 Transpose, so no float input is ever made;
    - ``"converted"``: Transpose -> Cast(float) -> Div(255) as the first nodes (exactly the runtime's float
      conversion, which divides in float32).
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    old = graph.input[0]
    dims = old.type.tensor_type.shape.dim
    shape = [d.dim_param or d.dim_value for d in dims]
    if len(shape) != 4 or shape[1] != 3:
        raise ValueError(f"expected a (batch, 3, height, width) input, got {old.name} {shape}")
    name = old.name
    quantizer = _pixel_quantizer(model, name)
    to_nchw = f"{name}_to_nchw"
    if quantizer is not None:
        prefix = [helper.make_node("Transpose", [name], [quantizer.output[0]], perm=[0, 3, 1, 2], name=to_nchw)]
        graph.node.remove(quantizer)
        how = "pixels_are_quantized"
    else:
        inner = f"{name}_float_nchw"
        for node in graph.node:
            node.input[:] = [inner if i == name else i for i in node.input]
        graph.initializer.append(numpy_helper.from_array(np.array(255.0, np.float32), f"{name}_255"))
        prefix = [
            helper.make_node("Transpose", [name], [f"{name}_nchw"], perm=[0, 3, 1, 2], name=to_nchw),
            helper.make_node("Cast", [f"{name}_nchw"], [f"{name}_cast"], to=TensorProto.FLOAT, name=f"{name}_cast"),
            helper.make_node("Div", [f"{name}_cast", f"{name}_255"], [inner], name=f"{name}_scale"),
        ]
        how = "converted"
    for offset, node in enumerate(prefix):
        graph.node.insert(offset, node)
    new = helper.make_tensor_value_info(name, TensorProto.UINT8, [shape[0], shape[2], shape[3], 3])
    graph.input.remove(old)
    graph.input.insert(0, new)
    return how


def float_nchw_input(model: Any) -> bool:
    """Undo :func:`uint8_nhwc_input` in place: the ``float (B, 3, H, W)`` input in [0, 1] again, for readers
    that feed only that form (ultralytics' validator). ``False`` when the model already takes float input.

    The pixel prefix is replaced by what it stood for: the input's ``QuantizeLinear`` (with the scale and zero
    point its ``DequantizeLinear`` reads) or nothing (a float model), so the result is the model as built.
    """
    from onnx import TensorProto, helper

    graph = model.graph
    old = graph.input[0]
    if old.type.tensor_type.elem_type != TensorProto.UINT8:
        return False
    name = old.name
    first = graph.node[0]
    if first.op_type != "Transpose" or list(first.input) != [name]:
        raise ValueError(f"input {name!r} is uint8 but its first node is not the pixel prefix's Transpose")
    users = [n for n in graph.node if first.output[0] in n.input]
    if users and all(n.op_type == "DequantizeLinear" and n.input[1:3] == users[0].input[1:3] for n in users):
        graph.node.remove(first)  # pixels_are_quantized: the QuantizeLinear it replaced comes back
        q = helper.make_node("QuantizeLinear", [name, *users[0].input[1:3]], [first.output[0]], name=f"{name}_q")
        graph.node.insert(0, q)
    elif (
        [n.op_type for n in users] == ["Cast"]
        and [n.op_type for n in graph.node[1:3]] == ["Cast", "Div"]
        and graph.node[2].input[0] == graph.node[1].output[0]
    ):
        cast, div = graph.node[1], graph.node[2]  # converted: Transpose -> Cast -> Div(255)
        for node in (first, cast, div):
            graph.node.remove(node)
        for node in graph.node:
            node.input[:] = [name if i == div.output[0] else i for i in node.input]
        unused = {i for i in div.input[1:]} - {i for n in graph.node for i in n.input}
        for init in [t for t in graph.initializer if t.name in unused]:
            graph.initializer.remove(init)
    else:
        raise ValueError(f"input {name!r} is uint8 but is not followed by the pixel prefix uint8_nhwc_input writes")
    b, h, w, _c = [d.dim_param or d.dim_value for d in old.type.tensor_type.shape.dim]
    graph.input.remove(old)
    graph.input.insert(0, helper.make_tensor_value_info(name, TensorProto.FLOAT, [b, 3, h, w]))
    return True
