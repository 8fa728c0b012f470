"""Shared fixtures: a hand-built ONNX "detector" with a known output, so the runtime, evaluation
and benchmark paths are tested exactly, without training anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def make_fixed_detector(
    path: Path, raw: np.ndarray, imgsz: int, names: dict[int, str], batch: int | str = "batch"
) -> Path:
    """Write an ONNX model whose output is ``raw`` (shape ``(4 + nc, anchors)``) for every image.

    The graph still consumes its ``(batch, 3, imgsz, imgsz)`` input (mean * 0 + constant), so batch
    handling and ONNX Runtime execution are real.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = numpy_helper.from_array(raw[None].astype(np.float32), "fixed")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=0),  # (B,)
        helper.make_node("Unsqueeze", ["m", "axes"], ["m3"]),  # (B,1,1)
        helper.make_node("Mul", ["m3", "zero"], ["z"]),
        helper.make_node("Add", ["z", "fixed"], ["output0"]),
    ]
    inits = [
        const,
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
        numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
    ]
    graph = helper.make_graph(
        nodes,
        "fixed_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, imgsz, imgsz])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, raw.shape[0], raw.shape[1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"names": repr(names), "imgsz": repr([imgsz, imgsz]), "stride": "32"})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def fixed_detector_factory(tmp_path):
    """``factory(raw, imgsz=64, names={0: 'a'}, batch="batch")`` -> path of a fixed-output ONNX model."""
    counter = iter(range(1000))

    def factory(
        raw: np.ndarray, imgsz: int = 64, names: dict[int, str] | None = None, batch: int | str = "batch"
    ) -> Path:
        names = names or {i: f"class{i}" for i in range(raw.shape[0] - 4)}
        return make_fixed_detector(tmp_path / f"fixed{next(counter)}.onnx", raw, imgsz, names, batch)

    return factory
