"""onnxsim simplification + ONNX Runtime offline graph optimization, parity-checked."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.io import atomic_path
from edgeproof.runtime.session import create_session
from edgeproof.training.export import describe_onnx

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
    """Write the optimized FP32 release candidate of ``src`` to ``out``; fail on output drift."""
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
        onnx.save(model, str(stage1))
        stage2 = Path(tmp) / "optimized.onnx"
        create_session(stage1, ["CPUExecutionProvider"], level, optimized_model_path=stage2)
        optimized = onnx.load(str(stage2))
        onnx.helper.set_model_props(optimized, {**props, "edgeproof_graph_optimization": level})
        onnx.checker.check_model(optimized)
        with atomic_path(out, suffix=".onnx") as tmp_out:
            onnx.save(optimized, str(tmp_out))
    diff = _max_abs_diff(src, out)
    if diff > PARITY_ATOL:
        out.unlink()
        raise RuntimeError(f"{out}: optimized model drifts from {src} by {diff:.3g} (> {PARITY_ATOL})")
    return {
        **describe_onnx(out),
        "nodes_before": len(onnx.load(str(src), load_external_data=False).graph.node),
        "parity_max_abs_diff": diff,
        "simplified": simplify,
        "graph_optimization": level,
    }
