"""int8 SiLU in stock ONNX Runtime ops (issue 22): what each way of writing it costs per frame.

    python benchmarks/int8_silu.py --model models/optimized/int8.onnx

ONNX Runtime fuses each quantized SiLU of the QDQ model (``DQ -> Sigmoid -> Q``, ``DQ -> Mul -> Q``)
into two uint8 passes, ``QLinearSigmoid`` and ``QLinearMul``. SiLU of a uint8 value is a function of
that byte alone, so one 256-entry table would do it in one pass; this script times the ways to write
that with the ops a stock ``onnxruntime(-gpu)`` ships, on the model's own SiLU tensors (shape, scale
and zero point of every one, batch 1):

* ``two_pass``: ``QLinearSigmoid`` + ``QLinearMul``, what the release runs today;
* ``table``: ``Cast(int32)`` + ``Gather`` from a 256-entry uint8 table (the only stock per-byte
  lookup with an arbitrary table);
* ``float``: ``DequantizeLinear`` + ``com.microsoft.QuickGelu(alpha=1)`` + ``QuantizeLinear``.

All of the model's SiLU tensors sit side by side in one model per way, so one ``run`` is one frame's
SiLUs. For each way: the median over ``--rounds`` interleaved rounds of the per-round medians, its
ratio to ``two_pass`` round by round, and how far its bytes are from ``two_pass`` (in quantization
steps). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

_OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]


def silu_tensors(model: onnx.ModelProto) -> list[dict[str, Any]]:
    """Shape and quantization of each SiLU's input and output in a QDQ model, batch 1."""
    graph = model.graph
    graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(model).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.value_info}
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = []
    for sig in (n for n in graph.node if n.op_type == "Sigmoid"):
        dq_in = producer[sig.input[0]]
        q_sig = consumers[sig.output[0]][0]
        after = [m for d in consumers.get(q_sig.output[0], []) for m in consumers.get(d.output[0], [])]
        mul = next((m for m in after if m.op_type == "Mul"), None)
        if mul is None:  # the head's class scores, not a SiLU
            continue
        q_out = consumers[mul.output[0]][0]
        found.append(
            {
                "shape": shapes[dq_in.input[0]],
                "x": (float(inits[dq_in.input[1]]), int(inits[dq_in.input[2]])),
                "sig": (float(inits[q_sig.input[1]]), int(inits[q_sig.input[2]])),
                "y": (float(inits[q_out.input[1]]), int(inits[q_out.input[2]])),
            }
        )
    return found


def _qparams(t: dict[str, Any], p: str) -> dict[str, np.ndarray]:
    out = {}
    for key in ("x", "sig", "y"):
        out[p + key + "_s"] = np.array(t[key][0], np.float32)
        out[p + key + "_z"] = np.array(t[key][1], np.uint8)
    return out


def _one(t: dict[str, Any], p: str, how: str) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray]]:
    """One SiLU tensor written ``how``, its names prefixed by ``p``: nodes and initializers."""
    ms = "com.microsoft"
    x, y, q = p + "x", p + "y", _qparams(t, p)
    qx, qs, qy = [p + "x_s", p + "x_z"], [p + "sig_s", p + "sig_z"], [p + "y_s", p + "y_z"]
    if how == "two_pass":
        return [
            helper.make_node("QLinearSigmoid", [x, *qx, *qs], [p + "s"], domain=ms),
            helper.make_node("QLinearMul", [x, *qx, p + "s", *qs, *qy], [y], domain=ms),
        ], q
    if how == "float":
        return [
            helper.make_node("DequantizeLinear", [x, *qx], [p + "f"]),
            helper.make_node("QuickGelu", [p + "f"], [p + "g"], domain=ms, alpha=1.0),
            helper.make_node("QuantizeLinear", [p + "g", *qy], [y]),
        ], {k: v for k, v in q.items() if "sig" not in k}
    xs = (np.arange(256, dtype=np.float32) - t["x"][1]) * np.float32(t["x"][0])
    table = np.clip(np.rint(xs / (1.0 + np.exp(-xs)) / t["y"][0]) + t["y"][1], 0, 255).astype(np.uint8)
    return [
        helper.make_node("Cast", [x], [p + "i"], to=TensorProto.INT32),
        helper.make_node("Gather", [p + "t", p + "i"], [y]),
    ], {p + "t": table}


def variant(tensors: list[dict[str, Any]], how: str) -> bytes:
    """All of the model's SiLU tensors written ``how``, side by side in one model."""
    nodes, inits, ins, outs = [], {}, [], []
    for i, t in enumerate(tensors):
        p = f"t{i}_"
        n, q = _one(t, p, how)
        nodes += n
        inits.update(q)
        ins.append(helper.make_tensor_value_info(p + "x", TensorProto.UINT8, t["shape"]))
        outs.append(helper.make_tensor_value_info(p + "y", TensorProto.UINT8, t["shape"]))
    graph = helper.make_graph(nodes, "silu", ins, outs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=_OPSETS).SerializeToString()


def _median_ms(run: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _spread(ratios: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(ratios), 3), "min": round(min(ratios), 3), "max": round(max(ratios), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/optimized/int8.onnx"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.log_severity_level = 3
    tensors = silu_tensors(onnx.load(str(args.model)))
    rng = np.random.default_rng(0)
    feed = {f"t{i}_x": rng.integers(0, 256, t["shape"], dtype=np.uint8) for i, t in enumerate(tensors)}
    names = ["two_pass", "table", "float"]
    sessions = {k: ort.InferenceSession(variant(tensors, k), opts, providers=["CPUExecutionProvider"]) for k in names}
    outs = {k: s.run(None, feed) for k, s in sessions.items()}
    steps = {
        k: max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(v, outs["two_pass"], strict=True))
        for k, v in outs.items()
    }
    totals: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(args.rounds):
        for k in names:
            totals[k].append(_median_ms(lambda s=sessions[k]: s.run(None, feed), args.repeat))
    result = {
        "model": str(args.model),
        "silu_tensors": len(tensors),
        "elements": int(sum(x.size for x in feed.values())),
        "threads": args.threads,
        "onnxruntime": ort.__version__,
        "ms_per_frame": {k: round(statistics.median(v), 3) for k, v in totals.items()},
        "per_round_vs_two_pass": {
            k: _spread([a / b for a, b in zip(v, totals["two_pass"], strict=True)]) for k, v in totals.items()
        },
        "max_steps_from_two_pass": steps,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
