"""The release candidates: FP32 (onnxsim + ONNX Runtime offline optimization), FP16 and INT8.

Check first, then publish. Every variant is built in a temporary folder next to the output, checked
(``onnx.checker``, loads in ONNX Runtime, sha256) and parity-checked against the PyTorch model;
only then does the folder replace the output folder in one rename. An interrupt or a failed check
at any point leaves the previous output (or none), never an unchecked model.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.folders import atomic_dir
from edgeproof.profiles import VARIANTS
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.session import create_session
from edgeproof.training.export import describe_onnx
from edgeproof.training.graph import softmax_last_axis, uint8_nhwc_input
from edgeproof.training.params import OptimizeParams
from edgeproof.training.parity import Reference, check_parity
from edgeproof.training.parity_judge import fp16_judgeable
from edgeproof.training.variants import (
    build_fp16,
    build_int8,
    calibration_sample,
    tensorrt_int8,
    tensorrt_qdq_problems,
)

log = logging.getLogger(__name__)

PARITY_ATOL = 1e-3  # model outputs are pixel coordinates and probabilities: fp32 reordering noise only


def _max_abs_diff(reference: Path, candidate: Path, seed: int = 0) -> float:
    """Largest absolute output difference of two models on the same seeded input batch."""
    ref = create_session(reference, ["CPUExecutionProvider"], "disable")
    cand = create_session(candidate, ["CPUExecutionProvider"], "disable")
    inp = ref.get_inputs()[0]
    shape = [d if isinstance(d, int) else 2 for d in inp.shape]
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    a = ref.run(None, {inp.name: x})[0]
    b = cand.run(None, {cand.get_inputs()[0].name: x})[0]
    return float(np.abs(a - b).max())


def optimize_onnx(src: Path, out: Path, simplify: bool, level: str) -> dict[str, Any]:
    """Write the optimized FP32 model of ``src`` to ``out`` (unpublished); fail on output drift."""
    import onnx

    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".optimize-") as tmp:
        stage1 = Path(tmp) / "simplified.onnx"
        if simplify:
            import onnxsim

            model, ok = onnxsim.simplify(model)
            if not ok:
                raise RuntimeError(f"{src}: onnxsim could not validate the simplified model")
        rewritten = softmax_last_axis(model)
        onnx.save(model, str(stage1))
        stage2 = Path(tmp) / "optimized.onnx"
        create_session(stage1, ["CPUExecutionProvider"], level, optimized_model_path=stage2)
        optimized = onnx.load(str(stage2))
        onnx.helper.set_model_props(optimized, {**props, "edgeproof_graph_optimization": level})
        onnx.save(optimized, str(out))
    diff = _max_abs_diff(src, out)
    if diff > PARITY_ATOL:
        raise RuntimeError(f"{out.name}: optimized model drifts from {src} by {diff:.3g} (> {PARITY_ATOL})")
    return {
        "nodes_before": len(onnx.load(str(src), load_external_data=False).graph.node),
        "parity_max_abs_diff": diff,
        "simplified": simplify,
        "softmax_rewritten_to_last_axis": rewritten,
        "graph_optimization": level,
    }


def _tag(path: Path, variant: str) -> None:
    """Record the variant in the file's metadata (what a device reports it runs)."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    onnx.helper.set_model_props(model, {**props, "edgeproof_variant": variant})
    onnx.save(model, str(path))


def _give_input_form(path: Path, input_form: str) -> str | None:
    """Put the input form's exact graph edit in front of the model; how it was done (``float_nchw``: none)."""
    import onnx

    if input_form != "uint8_nhwc":
        return None
    model = onnx.load(str(path))
    how = uint8_nhwc_input(model)
    onnx.save(model, str(path))
    return how


def check_variant(path: Path) -> dict[str, Any]:
    """``onnx.checker``, a session on the CPU provider, and the file's facts (sha256, size, I/O)."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    create_session(path, ["CPUExecutionProvider"], "disable")
    return {**describe_onnx(path), "checker": "passed", "loads_in_onnxruntime": True}


@dataclass(frozen=True)
class Inputs:
    """What the variants are built and judged from."""

    exported: Path  # models/model.onnx
    reference: Reference  # the trained PyTorch model's raw outputs
    train_images: Sequence[Path]  # INT8 calibration pool
    val_images: Sequence[Path]  # parity sample pool (the first ``parity.images`` are used)


def _build(name: str, folder: Path, inputs: Inputs, params: OptimizeParams) -> dict[str, Any]:
    out = folder / f"{name}.onnx"
    if name == "fp32":
        return optimize_onnx(inputs.exported, out, params.simplify, params.graph_optimization)
    if name == "fp16":
        build_fp16(folder / "fp32.onnx", out, params.fp16)
        return {"keep_io_types": params.fp16.keep_io_types}
    sample = calibration_sample(inputs.train_images, params.int8.calibration_images, params.int8.seed)
    int8 = params.int8 if name == "int8" else tensorrt_int8(params.int8)
    built = build_int8(folder / "fp32.onnx", out, sample, int8, symmetric=name != "int8")
    problems = tensorrt_qdq_problems(out)
    if name == "int8_trt" and problems:
        raise RuntimeError(f"{out.name}: TensorRT cannot take its Q/DQ nodes: {'; '.join(problems[:3])}")
    return {**int8.model_dump(), **built, "tensorrt_qdq": not problems}


def build_variants(
    inputs: Inputs, out_dir: Path, params: OptimizeParams, deploy: DeploySettings
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build, check and parity-check ``params.variants`` into ``out_dir``; publish only if all checks pass.

    Returns the optimize facts (per variant: sha256, size, I/O, how it was built) and the parity
    document. Raises (publishing nothing) when a variant fails its checks or fp32's raw outputs
    differ from PyTorch's.
    """
    facts: dict[str, Any] = {}
    with atomic_dir(out_dir) as folder:
        names = sorted(params.variants, key=VARIANTS.index)  # fp16/int8/int8_trt derive from fp32 (float input)
        built = {}
        for name in names:  # tagged as built (the others derive from the tagged fp32: same bytes as before)
            built[name] = _build(name, folder, inputs, params)
            _tag(folder / f"{name}.onnx", name)
        for name in names:  # the input form last: every variant was built from the float-input fp32
            form = params.input_form(name)
            how = _give_input_form(folder / f"{name}.onnx", form)
            facts[name] = {**check_variant(folder / f"{name}.onnx"), **built[name], "input": form, "input_edit": how}
            log.info("%s: %s (%d bytes) checked", name, facts[name]["sha256"][:12], facts[name]["size_bytes"])
        files = {name: folder / f"{name}.onnx" for name in facts}
        reason = fp16_judgeable()
        parity = check_parity(
            inputs.reference,
            files,
            list(inputs.val_images)[: params.parity.images],
            params.parity,
            deploy,
            not_measured={"fp16": reason} if reason else None,
        )
    for name, entry in facts.items():
        entry["path"] = (out_dir / f"{name}.onnx").as_posix()
    return facts, parity
