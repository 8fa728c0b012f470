"""`edgeproof perf`'s "where the time goes": per operator type (ONNX Runtime's profiler) and per frame step."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeproof.perf.anatomy import frame_steps, op_breakdown, profile_model
from edgeproof.perf.anatomy_report import anatomy_lines
from edgeproof.perf.floor import count_flops
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.session import SessionSettings


def _event(op, dur, ts, sizes=(0, 0, 0)):
    args = dict(zip(("activation_size", "output_size", "parameter_size"), map(str, sizes), strict=True))
    return {"cat": "Node", "name": f"{op}_{ts}_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": op, **args}}


def test_the_breakdown_skips_the_first_runs_and_sums_per_type():
    events = []
    for run in range(4):
        ts = run * 1000
        events.append({"cat": "Session", "name": "model_run", "ts": ts})
        slow = 50 if run == 0 else 1  # the first run allocates: it must not count
        events += [_event("Conv", 300 * slow, ts + 1, (100_000, 200_000, 50_000)), _event("Conv", 300, ts + 2)]
        events += [_event("QuickGelu", 200, ts + 3, (400_000, 400_000, 0))]
    out = op_breakdown(events, skip=1)
    assert out["runs"] == 3 and out["profiled_ms_per_run"] == 0.8
    conv, gelu = out["ops"]["Conv"], out["ops"]["QuickGelu"]
    assert (conv["ms_per_run"], conv["share"], conv["nodes"], conv["mbytes"]) == (0.6, 0.75, 2, 0.35)
    assert (gelu["share"], gelu["nodes"], gelu["mbytes"]) == (0.25, 1, 0.8)
    assert list(out["ops"]) == ["Conv", "QuickGelu"]  # slowest first
    with pytest.raises(ValueError, match="need more than 4"):
        op_breakdown(events, skip=4)


def _conv_silu_detector(path, imgsz=64):
    """A tiny detector: a 1x1 conv to 4 box rows + 1 class row, SiLU, flattened to (batch, 5, anchors)."""
    w = numpy_helper.from_array(np.full((5, 3, 1, 1), 0.1, np.float32), "w")
    shape = numpy_helper.from_array(np.array([0, 5, -1], np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["c"]),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["a"]),
        helper.make_node("Reshape", ["a", "shape"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_silu",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, imgsz, imgsz])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5, imgsz * imgsz])],
        [w, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"names": "{0: 'a'}", "imgsz": f"[{imgsz}, {imgsz}]", "stride": "32"})
    onnx.save(model, str(path))
    return path


def test_a_real_profile_attributes_the_model_time_to_its_operators(tmp_path):
    model = _conv_silu_detector(tmp_path / "m.onnx")
    gflop = count_flops(model) / 1e9
    assert gflop == 2 * 5 * 3 * 64 * 64 / 1e9
    sample = np.random.default_rng(0).random((1, 3, 64, 64), np.float32)
    out = profile_model(model, sample, SessionSettings(), runs=20, gflop=gflop)
    ops = out["ops"]
    assert "Conv" in ops or "FusedConv" in ops
    assert sum(r["share"] for r in ops.values()) == pytest.approx(1.0, abs=1e-3)
    assert sum(r["ms"] for r in ops.values()) == pytest.approx(out["model_ms_p50"], rel=1e-2)
    assert 0 < out["conv_share"] < 1 and out["conv_gflop_per_s"] == round(gflop / out["conv_ms"] * 1e3, 1)
    assert out["runs"] == 20


def test_frame_steps_split_a_real_frame(tmp_path):
    from tests.device.builders import write_val

    model = _conv_silu_detector(tmp_path / "m.onnx")
    write_val(tmp_path, 3)
    images = sorted((tmp_path / "data/prepared/images/val").iterdir())
    out = frame_steps(Detector(model), images, frames=6)
    assert list(out["steps_ms"]) == ["decode", "letterbox_to_tensor", "model", "decode_nms"]
    assert all(v > 0 for v in out["steps_ms"].values()) and out["frames"] == 6
    assert out["outside_model_ms"] == pytest.approx(out["frame_ms"] - out["steps_ms"]["model"], abs=1e-3)
    assert list(out["alone_ms"]) == list(out["steps_ms"]) and all(v > 0 for v in out["alone_ms"].values())
    outside = [v for k, v in out["alone_ms"].items() if k != "model"]
    assert out["outside_model_alone_ms"] == pytest.approx(sum(outside), abs=1e-3)
    # the steps outside the model again, each right after a read past any L3 (no model in between)
    assert list(out["evicted_ms"]) == [s for s in out["steps_ms"] if s != "model"] and out["evicted_mib"] == 128
    assert all(v > 0 for v in out["evicted_ms"].values())
    assert out["outside_model_evicted_ms"] == pytest.approx(sum(out["evicted_ms"].values()), abs=1e-3)
    with pytest.raises(ValueError, match="at least one image"):
        frame_steps(Detector(model), [], frames=1)


def test_the_report_says_where_the_time_goes():
    ops = {f"Op{i}": {"ms": 1.0, "share": 0.1, "nodes": 2, "mbytes": 1.5} for i in range(7)}
    ops = {"Conv": {"ms": 3.0, "share": 0.3, "nodes": 70, "mbytes": 30.0}, **ops}
    doc = {
        "details": {"matmul_gflop_per_s": {"best": 200.0}},
        "anatomy": {
            "fp32": {
                "model": {"ops": ops, "model_ms_p50": 10.0, "conv_share": 0.3, "conv_gflop_per_s": 300.0},
                "frame": {
                    "steps_ms": {"decode": 0.5, "letterbox_to_tensor": 0.3, "model": 10.0, "decode_nms": 0.2},
                    "frame_ms": 11.0,
                    "outside_model_ms": 1.0,
                    "alone_ms": {"decode": 0.3, "letterbox_to_tensor": 0.1, "model": 9.0, "decode_nms": 0.1},
                    "outside_model_alone_ms": 0.5,
                },
            }
        },
    }
    doc["anatomy"]["fp32"]["model"]["file_mb"] = 10.1
    doc["details"]["memory_roof"] = {"l2_resident_gb_per_s": 90.0, "main_memory_gb_per_s": 20.0, "l2_bytes": 2**20}
    md = "\n".join(anatomy_lines(doc))
    assert "Convolutions 30.0 % of it, 300.0 G(FL)OP/s = 1.50x the floor's MatMul rate (200.0)" in md
    assert "| Conv | 3.000 | 30.0 % | 70 | 30.00 | 10.0 |" in md  # 30 MB in 3 ms: 10 GB/s
    assert "| 2 other types | 2.000 | 20.0 % | 4 |  |  |" in md  # past the six slowest types, summed
    assert "| in a frame (median ms) | 0.5 | 0.3 | 10 | 0.2 | 11 | 1 |" in md
    assert "| alone, warm caches | 0.3 | 0.1 | 9 | 0.1 |  | 0.5 |" in md
    assert "1.000 ms in a frame, 0.500 ms with each step alone; 0.500 ms of it is what the frame's other" in md
    assert "(the model file is 10.10 MB, the L2 1.00 MiB)" in md
    assert "after a" not in md  # a document without the eviction figures has no such row or sentence
    frame = doc["anatomy"]["fp32"]["frame"]
    frame.update(evicted_ms={"decode": 0.45, "letterbox_to_tensor": 0.15, "decode_nms": 0.2}, evicted_mib=128)
    frame["outside_model_evicted_ms"] = 0.8
    md = "\n".join(anatomy_lines(doc))
    assert "| after a 128 MiB read, no model | 0.45 | 0.15 |  | 0.2 |  | 0.8 |" in md
    # the model costs the other steps 1.0 - 0.5 ms; the read alone brings back 0.8 - 0.5 of it
    assert "reading 128 MiB instead of running the model they take 0.800 ms: evicting the caches alone " in md
    assert "costs them 0.300 ms, 60 % of what the model costs them." in md
    frame["outside_model_evicted_ms"] = 0.45  # faster than alone: no negative cost is printed
    md = "\n".join(anatomy_lines(doc))
    assert (
        "reading 128 MiB instead they take 0.450 ms: no cost shows." in md
        and "-" not in md.split("MiB instead")[1][:60]
    )
    assert "90.0 GB/s for arrays filling half the L2, 20.0 GB/s from main memory" in md
    frame = doc["anatomy"]["fp32"]["frame"]
    frame["outside_model_alone_ms"] = 1.2  # slower alone than in a frame: no negative cache cost is printed
    assert "no cost of the caches shows" in "\n".join(anatomy_lines(doc))
    del frame["outside_model_alone_ms"], doc["details"]["memory_roof"]["main_memory_gb_per_s"]
    md = "\n".join(anatomy_lines(doc))  # a partial document renders, its missing figures as dashes
    assert "| alone, warm caches | 0.3 | 0.1 | 9 | 0.1 |  | — |" in md and "— GB/s from main memory" in md
    assert anatomy_lines({"details": {}}) == []


def test_the_memory_roof_reads_the_l2_size_and_measures_copies(tmp_path):
    from edgeproof.perf.floor import copy_gb_per_s, l2_bytes

    for index, (level, size) in enumerate([("1", "32K"), ("2", "1024K"), ("3", "32768K")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(level + "\n")
        (folder / "size").write_text(size + "\n")
    assert l2_bytes(tmp_path) == 2**20
    assert l2_bytes(tmp_path / "absent") is None
    assert copy_gb_per_s(64 * 1024, runs=3) > 0
