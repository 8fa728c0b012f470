"""Concat -> 1x1 Conv as partial convolutions summed (issue 22): what it saves fp32 on this CPU.

    python benchmarks/concat_split.py --model models/optimized/fp32.onnx --rounds 16

YOLOv5's C3 blocks and SPPF end in ``Concat(a, b, ...) -> Conv 1x1``. The same convolution can be written
without the concatenation: ``Conv(a, W[:, :ca]) + Conv(b, W[:, ca:]) + ...`` (the bias once), and ONNX
Runtime's CPU provider fuses each ``Add`` into the convolution that follows it (its NCHWc convolution takes
a sum input), so the concatenated copy disappears. The sums run in another order, so the outputs are
not bit-identical. This script rewrites every such concatenation with a single consumer, checks the model,
and times both files model-only (batch 1, a random input, the default session) in interleaved rounds
whose order alternates. Prints one JSON object: the largest output difference, the median ms of each and
the split's ratio to the original round by round. The rewritten file is written to ``--out`` if given.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from edgeproof.runtime.timing import time_calls


def _splittable(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, onnx.NodeProto]]:
    """(Concat, Conv) pairs: a channel concatenation whose only consumer is a 1x1 convolution."""
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node)
    inits = {t.name for t in model.graph.initializer}
    pairs = []
    for node in model.graph.node:
        axis = [a.i for a in node.attribute if a.name == "axis"]
        after = consumers[node.output[0]]
        if node.op_type != "Concat" or axis != [1] or len(after) != 1 or after[0].op_type != "Conv":
            continue
        conv = after[0]
        if conv.input[1] in inits and all(name not in inits for name in node.input):
            pairs.append((node, conv))
    return pairs


def _channels(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model).graph
    values = [*inferred.value_info, *inferred.input]
    return {v.name: v.type.tensor_type.shape.dim[1].dim_value for v in values if len(v.type.tensor_type.shape.dim) > 1}


def _partial_convs(
    concat: onnx.NodeProto, conv: onnx.NodeProto, weights: dict[str, np.ndarray], channels: dict[str, int]
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The nodes and initializers that replace ``concat`` and ``conv``: one conv per input, summed."""
    w = weights[conv.input[1]]
    nodes, inits, start, total = [], [], 0, None
    for k, name in enumerate(concat.input):
        ch = channels[name]
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w[:, start : start + ch]), f"{conv.name}/w{k}"))
        inputs = [name, f"{conv.name}/w{k}"] + (list(conv.input[2:]) if k == 0 else [])
        part = helper.make_node("Conv", inputs, [f"{conv.name}/part{k}"], name=f"{conv.name}/part{k}")
        part.attribute.extend(conv.attribute)
        nodes.append(part)
        if total is not None:
            out = conv.output[0] if k == len(concat.input) - 1 else f"{conv.name}/sum{k}"
            nodes.append(helper.make_node("Add", [total, part.output[0]], [out], name=f"{conv.name}/add{k}"))
            total = out
        else:
            total = part.output[0]
        start += ch
    if start != w.shape[1] or w.shape[2:] != (1, 1):
        raise ValueError(f"{conv.name}: weights {w.shape} do not match the concatenated {start} channels")
    return nodes, inits


def split_concats(model: onnx.ModelProto) -> int:
    """Rewrite ``model`` in place (see the module docstring); how many concatenations went."""
    pairs = _splittable(model)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    channels = _channels(model)
    replaced = {conv.name: _partial_convs(concat, conv, weights, channels) for concat, conv in pairs}
    dropped = {concat.name for concat, _ in pairs}
    nodes = []
    for node in model.graph.node:
        if node.name in replaced:
            nodes += replaced[node.name][0]
        elif node.name not in dropped:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(t for _, inits in replaced.values() for t in inits)
    onnx.checker.check_model(model)
    return len(pairs)


def _median_ms(session: ort.InferenceSession, feed: dict[str, np.ndarray], runs: int) -> float:
    return statistics.median(time_calls(lambda _i: session.run(None, feed), 5, runs))


def random_feed(session: ort.InferenceSession) -> dict[str, np.ndarray]:
    """One seeded random batch-1 input of the session's type: pixels for a uint8 input, [0, 1) floats otherwise."""
    inp = session.get_inputs()[0]
    rng = np.random.default_rng(0)
    if inp.type == "tensor(uint8)":
        return {inp.name: rng.integers(0, 256, (1, *inp.shape[1:]), dtype=np.uint8)}
    return {inp.name: rng.random((1, *inp.shape[1:]), dtype=np.float32)}


def compare(original: bytes, edited: bytes, rounds: int, runs: int, name: str = "split") -> dict[str, Any]:
    """Outputs and model-only times of both files on one random input, rounds interleaved (order alternating);
    ``name`` names the edited file in the result."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sessions = {
        k: ort.InferenceSession(b, options, providers=["CPUExecutionProvider"])
        for k, b in (("original", original), (name, edited))
    }
    feed = random_feed(sessions["original"])
    outs = {k: s.run(None, feed)[0] for k, s in sessions.items()}
    ms: dict[str, list[float]] = {k: [] for k in sessions}
    for r in range(rounds):
        for k in sorted(sessions, reverse=bool(r % 2)):
            ms[k].append(_median_ms(sessions[k], feed, runs))
    ratios = sorted(s / o for o, s in zip(ms["original"], ms[name], strict=True))
    return {
        "max_abs_diff": float(np.abs(outs["original"] - outs[name]).max()),
        "model_ms_p50": {k: round(statistics.median(v), 3) for k, v in ms.items()},
        f"{name}_vs_original_by_round": {
            "median": round(statistics.median(ratios), 3),
            "quartiles": [round(float(q), 3) for q in np.percentile(ratios, [25, 75])],
            "rounds_faster": sum(r < 1 for r in ratios),
            "rounds": len(ratios),
        },
    }


def edit_and_compare(
    doc: str, default_model: str, edit: Callable[[onnx.ModelProto], int], count_key: str, name: str = "split"
) -> None:
    """The command line of the graph-edit benchmarks: ``--model`` edited in place by ``edit`` (which
    returns how many places it changed, reported as ``count_key``), checked, optionally written to
    ``--out``, and compared with the original (:func:`compare`, the edited file named ``name``)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path(default_model))
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    original = args.model.read_bytes()
    model = onnx.load_from_string(original)
    count = edit(model)
    onnx.checker.check_model(model)
    edited = model.SerializeToString()
    if args.out:
        args.out.write_bytes(edited)
    result = {"model": str(args.model), count_key: count, **compare(original, edited, args.rounds, args.runs, name)}
    print(json.dumps(result, indent=2))


def main() -> None:
    edit_and_compare(__doc__, "models/optimized/fp32.onnx", split_concats, "concats_split")


if __name__ == "__main__":
    main()
