"""The FP16 and INT8 variants of the FP32 release candidate.

FP16 converts weights and activations for the CUDA/TensorRT providers and keeps float32 inputs and
outputs, so the runtime feeds and reads every variant the same way. INT8 is ONNX Runtime's static
QDQ quantization, calibrated on a seeded sample of training images letterboxed exactly as the
runtime does it. The detection head's decode (DFL softmax, sigmoid, box arithmetic, concat) stays
in FP32 by default: quantizing it collapses YOLO's box and score outputs.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.runtime.preprocess import letterbox, load_image, to_input
from edgeproof.training.graph import PIXEL_SCALE
from edgeproof.training.params import Fp16Params, Int8Params

log = logging.getLogger(__name__)

_MODULE = re.compile(r"^/model\.(\d+)/")
_HEAD_CONV_BRANCH = re.compile(r"/cv[23]\.\d+/")  # the head's box (cv2) and class (cv3) convolution branches


def build_fp16(fp32: Path, out: Path, params: Fp16Params) -> None:
    """Write the FP16 variant of ``fp32`` to ``out`` (inputs/outputs float32 when ``keep_io_types``)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=params.keep_io_types)
    wrapped = OnnxModel(model)
    wrapped.topological_sort()  # the converter appends its input casts at the end of the node list
    del wrapped.model.graph.value_info[:]  # stale intermediate types (some ops stay fp32); re-inferred on load
    onnx.save(wrapped.model, str(out))


def head_nodes(node_names: Sequence[str], mode: str) -> list[str]:
    """Node names of the detection head (the last ``/model.N/`` module) to keep in FP32.

    ``head``: every node of the head; ``head_decode``: all but its convolution branches; ``none``: none.
    """
    if mode == "none":
        return []
    modules = [int(m.group(1)) for m in map(_MODULE.match, node_names) if m]
    if not modules:
        raise ValueError("no '/model.N/' node names: cannot locate the detection head (set exclude_head: none)")
    prefix = f"/model.{max(modules)}/"
    head = [n for n in node_names if n.startswith(prefix)]
    if mode == "head":
        return head
    return [n for n in head if not _HEAD_CONV_BRANCH.search(n)]


def calibration_sample(train_images: Sequence[Path], n: int, seed: int) -> list[Path]:
    """A seeded, order-independent sample of ``n`` training images (all when there are fewer)."""
    ordered = sorted(train_images)
    if not ordered:
        raise ValueError("INT8 calibration needs training images; the train split has none")
    picks = np.random.default_rng(seed).choice(len(ordered), size=min(n, len(ordered)), replace=False)
    return [ordered[i] for i in sorted(picks)]


class _Reader:
    """onnxruntime.quantization CalibrationDataReader over letterboxed images (one per batch)."""

    def __init__(self, input_name: str, images: Sequence[Path], size: tuple[int, int]) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            {input_name: to_input([letterbox(load_image(p), size)[0]])} for p in images
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _input(model: Any) -> tuple[str, tuple[int, int]]:
    inp = model.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    if len(dims) != 4 or not dims[2] or not dims[3]:
        raise ValueError(f"INT8 calibration needs a fixed input height/width, got input {inp.name} dims {dims}")
    return inp.name, (dims[2], dims[3])


def tensorrt_int8(params: Int8Params) -> Int8Params:
    """The ``int8_trt`` settings: ``optimize.int8``'s calibration and exclusions, with what TensorRT's explicit
    quantization requires: signed int8 activations and weights, per-channel weights (axis 0 of a Conv's
    weight, ONNX Runtime's default), and zero points of 0 (``symmetric=True`` in :func:`build_int8`)."""
    return params.model_copy(update={"activation_type": "int8", "weight_type": "int8", "per_channel": True})


def _excluded_nodes(names: Sequence[str], params: Int8Params) -> list[str]:
    """The nodes kept in FP32: the head's (``exclude_head``, :func:`head_nodes`) and ``exclude_nodes``, each of
    which must be in the model (a name that is not would silently quantize what it meant to keep)."""
    unknown = sorted(set(params.exclude_nodes) - set(names))
    if unknown:
        raise ValueError(f"optimize.int8.exclude_nodes: not in the model: {unknown[:5]}")
    return sorted(set(head_nodes(names, params.exclude_head)) | set(params.exclude_nodes))


def _extra_options(input_name: str, params: Int8Params, symmetric: bool) -> dict[str, Any]:
    """``quantize_static``'s ``extra_options``: zero points, bias quantization, and the input's pinned range."""
    # TensorRT takes int8 Q/DQ only: biases stay float (it fuses them itself) instead of int32 DQ
    extra: dict[str, Any] = {"ActivationSymmetric": symmetric, "WeightSymmetric": True, "QuantizeBias": not symmetric}
    if params.activation_type == "uint8" and not symmetric:
        # a calibrated input range can only be narrower than [0, 1], and then clips the brighter pixels of
        # other images; [0, 1] at 1/255 holds every pixel exactly, so the model can take them as they are
        pinned = {"scale": np.array(PIXEL_SCALE, np.float32), "zero_point": np.array(0, np.uint8)}
        extra["TensorQuantOverrides"] = {input_name: [pinned]}
    return extra


def build_int8(
    fp32: Path, out: Path, calibration: Sequence[Path], params: Int8Params, symmetric: bool = False
) -> dict[str, Any]:
    """Write the static QDQ INT8 variant of ``fp32`` to ``out``; return what was quantized and how.

    ``symmetric``: every zero point is 0 (activations and weights) and biases stay float (no int32 Q/DQ),
    as TensorRT requires of Q/DQ models.
    """
    import onnx
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    types = {"uint8": q.QuantType.QUInt8, "int8": q.QuantType.QInt8}
    methods = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
    with tempfile.TemporaryDirectory(prefix=".int8-", dir=out.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # symbolic shape inference cannot handle the dynamic batch axis (field notes)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        name, size = _input(model)
        names = [n.name for n in model.graph.node]
        excluded = _excluded_nodes(names, params)
        q.quantize_static(
            str(prepared),
            str(out),
            _Reader(name, calibration, size),
            quant_format=q.QuantFormat.QDQ,
            per_channel=params.per_channel,
            activation_type=types[params.activation_type],
            weight_type=types[params.weight_type],
            calibrate_method=getattr(q.CalibrationMethod, methods[params.method]),
            nodes_to_exclude=excluded,
            extra_options=_extra_options(name, params, symmetric),
        )
    log.info("INT8: %d calibration images, %d of %d nodes kept in FP32", len(calibration), len(excluded), len(names))
    return {
        "calibration_images": len(calibration),
        "nodes_excluded": len(excluded),
        "nodes": len(names),
        "symmetric_activations": symmetric,
    }


def tensorrt_qdq_problems(path: Path) -> list[str]:
    """Why TensorRT's explicit quantization would refuse ``path``'s Q/DQ nodes (empty: it can take them).

    TensorRT needs signed int8 with every zero point 0, and a Conv weight's scale per tensor or per
    output channel (axis 0).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 1}
    problems = []
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        zero = consts.get(node.input[2]) if len(node.input) > 2 else None
        if zero is None or zero.dtype != np.int8 or np.any(zero != 0):
            found = "none" if zero is None else f"{zero.dtype} {np.unique(zero)[:3].tolist()}"
            problems.append(f"{node.name}: zero point {found}, expected int8 0")
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        scale = consts.get(node.input[1])
        if node.output[0] in weights and scale is not None and scale.size > 1 and axis != 0:
            problems.append(f"{node.name}: per-channel weight scale on axis {axis}, expected 0")
    return problems
