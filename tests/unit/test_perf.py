"""`edgeproof perf` pieces that need no ultralytics: FLOP counting, the target ratios, the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeproof.perf.floor import count_flops
from edgeproof.perf.report import _target_lines, render
from edgeproof.perf.targets import ratios, round_entries, spread, verdict


def test_conv_and_matmul_flops_are_counted_from_real_output_shapes(tmp_path):
    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    m = numpy_helper.from_array(np.zeros((16, 5), np.float32), "m")
    shape = numpy_helper.from_array(np.array([1, -1, 16], np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),  # (1, 8, 16, 16)
        helper.make_node("Reshape", ["c", "shape"], ["r"]),  # (1, 128, 16): dynamic to shape inference
        helper.make_node("MatMul", ["r", "m"], ["y"]),  # (1, 128, 5)
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w, m, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    conv = 2 * (8 * 3 * 3 * 3) * (16 * 16)
    matmul = 2 * (128 * 5) * 16
    assert count_flops(tmp_path / "m.onnx") == conv + matmul


def _entry(kind, variant, fps, p50, map50_95):
    return {
        "name": f"{kind} {variant}",
        "kind": kind,
        "variant": variant,
        "latency_model_ms_p50": p50,
        "latency_model_ms_p95": p50 * 1.2,
        "fps_e2e": fps,
        "map50_95": map50_95,
        "latency_vs_floor": round(p50 / 5.0, 3),
    }


def test_ratios_and_report_name_each_target():
    entries = [
        _entry("ultralytics", "pytorch", 70.0, 12.0, 0.79),
        _entry("ultralytics", "fp32", 140.0, 7.0, 0.79),
        _entry("edgeproof", "fp32", 180.0, 6.0, 0.78),
        _entry("edgeproof", "int8", 210.0, 4.5, 0.775),
        _entry("edgeproof-overlap", "fp32", 190.0, 6.0, 0.78),
        _entry("edgeproof-overlap-info", "fp32", 200.0, 6.5, 0.78),  # the other thread split: shown, not judged
        _entry("ultralytics-parallel", "fp32", 120.0, 14.0, 0.79),  # oversubscribed: below its own serial 140
        _entry("edgeproof-parallel", "int8", 330.0, 9.0, 0.775),  # against ultralytics' best: 140, not 120
    ]
    r = ratios(entries, "int8")
    assert r == pytest.approx(
        {
            "fp32_fps_vs_ultralytics_onnx": 180 / 140,
            "release_fps_vs_ultralytics_onnx": 1.5,
            "fp32_overlap_fps_vs_ultralytics_onnx_best": 190 / 140,
            "release_overlap_fps_vs_ultralytics_onnx_best": None,
            "fp32_parallel_fps_vs_ultralytics_onnx_best": None,  # no fp32 parallel entry
            "release_parallel_fps_vs_ultralytics_onnx_best": 330 / 140,
            "release_map_drop": 0.005,
            "fp32_latency_vs_floor": 1.2,
        },
        nan_ok=True,
    )
    doc = {
        "machine": "cpu",
        "image_size": 256,
        "compute_floor_ms": 5.0,
        "release_variant": "int8",
        "entries": entries,
        "details": {
            "gflop": 1.13,
            "matmul_gflop_per_s": {"best": 226.0, "measurements": [{"best": 226.0, "by_size": {"512": {}}}]},
            "rounds": 3,
            "images": 50,
            "frames_per_round": 100,
            "warmup": 10,
            "not_measured": [{"variant": "fp16", "reason": "no GPU provider"}],
            "ratios": r,
        },
    }
    md = render(doc)
    assert "| release variant end-to-end FPS / ultralytics ONNX predict | >= 2.0 | 1.500 | **missed** | — |" in md
    assert "| edgeproof fp32 model-only p50 / compute floor | <= 1.3 | 1.200 | met | — |" in md
    assert "not measured here: no GPU provider" in md
    assert "| the same, release variant in parallel | >= 2.0 | 2.357 | met | — |" in md
    assert "1.13 GFLOP / 226.0 GFLOP/s" in md and "sizes 512²" in md


def test_the_floor_uses_the_best_matmul_measurement_of_the_run():
    from edgeproof.perf.floor import compute_floor

    floor = compute_floor(1.2, [{"best": 100.0}, {"best": 200.0}, {"best": 150.0}])
    assert floor["compute_floor_ms"] == 6.0 and floor["matmul_gflop_per_s"]["best"] == 200.0


def test_the_report_shows_the_cache_resident_and_the_large_matrix_floor():
    from edgeproof.perf.floor import compute_floor

    peaks = [
        {"best": 300.0, "by_size": {"256": {"best": 250.0}, "1024": {"best": 300.0}}},
        {"best": 280.0, "by_size": {"256": {"best": 260.0}, "1024": {"best": 280.0}}},
    ]
    floor = compute_floor(1.3, peaks)
    assert [(r["n"], r["kind"], r["gflop_per_s"], r["floor_ms"]) for r in floor["floor_by_size"]] == [
        (256, "cache-resident", 260.0, 5.0),
        (1024, "large-matrix", 300.0, round(1.3 / 300 * 1e3, 3)),
    ]
    doc = {
        "machine": "cpu",
        "image_size": 256,
        "compute_floor_ms": floor["compute_floor_ms"],
        "release_variant": None,
        "entries": [_entry("edgeproof", "fp32", 180.0, 6.0, 0.78)],
        "details": {**floor, "rounds": 1, "images": 1, "frames_per_round": 1, "warmup": 0, "ratios": {}},
    }
    md = render(doc)
    assert "| 256² | cache-resident | 0.75 | 260.0 | 5.000 |" in md
    assert "| 1024² | large-matrix | 12.00 | 300.0 | 4.333 |" in md


def test_a_target_is_judged_round_by_round_and_noise_is_neither_met_nor_missed():
    """Each round's ratio pairs entries that ran back to back. ultralytics swings 100 -> 140 FPS between rounds
    here; edgeproof's fp32 stays 1.3x it in every round, so the ratio of the medians (150 / 125 = 1.2) would
    call it missed while every round meets it."""
    theirs, fp32, int8 = [100.0, 140.0, 110.0, 125.0], [130.0, 182.0, 143.0, 162.5], [190.0, 300.0, 240.0, 220.0]
    entries = [
        {**_entry("ultralytics", "fp32", 0, 7.0, 0.79), "rounds_fps_e2e": theirs},
        {
            **_entry("edgeproof", "fp32", 0, 6.0, 0.78),
            "rounds_fps_e2e": fp32,
            "rounds_latency_model_ms_p50": [6.0, 6.4, 7.0, 8.0],
        },
        {**_entry("edgeproof", "int8", 0, 4.5, 0.775), "rounds_fps_e2e": int8},
    ]
    by_round = spread([ratios(round_entries(entries, r, 5.0), "int8") for r in range(4)])
    fp32_ratio = by_round["fp32_fps_vs_ultralytics_onnx"]
    assert fp32_ratio["rounds"] == [1.3, 1.3, 1.3, 1.3] and verdict("fp32_fps_vs_ultralytics_onnx", fp32_ratio) == "met"
    release = by_round["release_fps_vs_ultralytics_onnx"]  # 1.9, 2.143, 2.182, 1.76
    assert verdict("release_fps_vs_ultralytics_onnx", release) == "within the noise"
    floor = by_round["fp32_latency_vs_floor"]  # 1.2, 1.28, 1.4, 1.6: three rounds in four above 1.25
    assert floor["rounds"] == [1.2, 1.28, 1.4, 1.6] and verdict("fp32_latency_vs_floor", floor) == "within the noise"
    assert (
        verdict(
            "fp32_latency_vs_floor",
            spread([{"fp32_latency_vs_floor": v} for v in (1.4, 1.5, 1.35, 1.2)])["fp32_latency_vs_floor"],
        )
        == "**missed**"
    )
    assert by_round["fp32_parallel_fps_vs_ultralytics_onnx_best"] is None
    # counted, not read off interpolated quartiles: 2 of 4 rounds and 5 of 7 are not three in four
    for rounds in ([1.2, 1.35, 1.4, 1.0], [1.0, 2.0, 1.0, 2.0], [1.0, 1.1, 1.3, 1.3, 1.3, 1.3, 1.3]):
        figures = spread([{"fp32_fps_vs_ultralytics_onnx": v} for v in rounds])["fp32_fps_vs_ultralytics_onnx"]
        assert verdict("fp32_fps_vs_ultralytics_onnx", figures) == "within the noise", rounds
    six_of_eight = spread([{"fp32_fps_vs_ultralytics_onnx": v} for v in [1.0, 1.1] + [1.3] * 6])
    assert verdict("fp32_fps_vs_ultralytics_onnx", six_of_eight["fp32_fps_vs_ultralytics_onnx"]) == "met"
    assert verdict("fp32_parallel_fps_vs_ultralytics_onnx_best", None) == "not measured"
    doc_details = {"ratios": ratios(entries, "int8"), "ratios_by_round": by_round}
    lines = "\n".join(_target_lines(doc_details))
    assert "| 1.300 (1.300-1.300) | met |" in lines


def test_ratios_are_compared_unrounded_and_shown_with_the_digits_that_tell_them_apart():
    """Finding 3: 124.96 / 100 FPS (1.2496) rounded to 1.25 before the comparison read "met"; a p50 1.3004x the
    floor rounded to 1.3 did too. Both miss; the report shows enough digits to say why."""
    entries = [
        _entry("ultralytics", "fp32", 100.0, 7.0, 0.79),
        {**_entry("edgeproof", "fp32", 124.96, 6.502, 0.78), "latency_vs_floor": 6.502 / 5.0},
    ]
    r = ratios(entries, "fp32")
    assert r["fp32_fps_vs_ultralytics_onnx"] < 1.25 and r["fp32_latency_vs_floor"] > 1.3
    rounds = [{**e, "rounds_fps_e2e": [e["fps_e2e"]] * 4, "rounds_latency_model_ms_p50": [6.502] * 4} for e in entries]
    by_round = spread([ratios(round_entries(rounds, i, 5.0), "fp32") for i in range(4)])
    assert verdict("fp32_fps_vs_ultralytics_onnx", by_round["fp32_fps_vs_ultralytics_onnx"]) == "**missed**"
    assert verdict("fp32_latency_vs_floor", by_round["fp32_latency_vs_floor"]) == "**missed**"
    lines = "\n".join(_target_lines({"ratios": r, "ratios_by_round": by_round}))
    assert "| >= 1.25 | 1.2496 | **missed** | 1.2496 (1.2496-1.2496) | **missed** |" in lines
    assert "| <= 1.3 | 1.3004 | **missed** |" in lines


def test_a_round_by_round_verdict_needs_four_rounds_and_counts_the_unmeasured_ones():
    """Finding 4: one round at 1.26 read "met" (``--rounds 1``), and so did one measured round of three (spread
    dropped the unmeasured ones from the count)."""
    key = "fp32_fps_vs_ultralytics_onnx"

    def judged(values):
        return verdict(key, spread([{key: v} for v in values])[key])

    assert judged([1.26]) == "not enough rounds"
    assert judged([1.26, 1.3, 1.4]) == "not enough rounds"
    assert judged([1.26, None, None]) == "not enough rounds"
    assert judged([1.26, 1.3, 1.4, 1.1]) == "met"  # three of four
    assert judged([1.26, 1.3, 1.4, None]) == "met"
    assert judged([1.26, 1.3, None, None]) == "within the noise"  # two measured rounds of four meet nothing more
    assert judged([1.26, None, None, None, None, None]) == "within the noise"
    assert judged([1.0, 1.1, 1.2, None]) == "**missed**"
    assert judged([1.0, 1.1, None, None]) == "within the noise"  # an unmeasured round is no miss either
    lines = "\n".join(_target_lines({"ratios": {key: 1.3}, "ratios_by_round": spread([{key: 1.3}])}))
    assert "| 1.300 (1.300-1.300) | not enough rounds |" in lines


def test_perf_md_shows_each_frames_end_to_end_latency_beside_throughput():
    """Finding 1: perf.md showed model-only p50/p95 and FPS only, so a parallel entry's "met" FPS ratio stood
    beside its model-alone p50 while each of its frames took longer than serially (14 ms against 9)."""
    entries = [
        {**_entry("ultralytics", "fp32", 100.0, 7.0, 0.79), "latency_ms_p50": 9.5, "latency_ms_p95": 11.0},
        {**_entry("edgeproof", "fp32", 105.0, 6.0, 0.78), "latency_ms_p50": 9.0, "latency_ms_p95": 10.5},
        {**_entry("edgeproof-parallel", "fp32", 140.0, 6.1, 0.78), "latency_ms_p50": 14.0, "latency_ms_p95": 16.25},
    ]
    doc = {
        "machine": "cpu",
        "image_size": 256,
        "compute_floor_ms": 5.0,
        "release_variant": "fp32",
        "entries": entries,
        "details": {
            "matmul_gflop_per_s": {"best": 226.0, "measurements": []},
            "gflop": 1.13,
            **{"rounds": 5, "images": 50, "frames_per_round": 100, "warmup": 10},
            "ratios": ratios(entries, "fp32"),
        },
    }
    md = render(doc)
    assert "| edgeproof-parallel fp32 | edgeproof-parallel | fp32 | 6.10 | 7.32 | 1.22x | 14.00 | 16.25 | 140.0 |" in md
    parallel = next(line for line in md.splitlines() if line.startswith("| fp32, a frame per core"))
    assert parallel.endswith("| 14.00 / 9.50 |")  # each frame's own p50, edgeproof / ultralytics' best
    assert "one frame at a time. `+overlap`" in md and "each frame's own latency" in md


def test_the_overlapped_pipeline_is_judged_at_the_split_named_in_advance_against_ultralytics_best(monkeypatch):
    """Finding 5: the overlap targets took the faster of two thread splits per round (edgeproof's best of two
    tries) and divided by ultralytics' serial predict even where its YOLO per core was faster."""
    from edgeproof.benchmark import BenchmarkParams
    from edgeproof.perf import pipelines
    from edgeproof.perf import run as perf_run

    monkeypatch.setattr(pipelines.core, "usable_cores", lambda: 2)
    files = {"fp32": Path("fp32.onnx"), "int8": Path("int8.onnx")}
    keys = list(pipelines.pipeline_entries(files, "int8", [Path("a.jpg")], BenchmarkParams(), None))
    assert keys == [
        "fp32+overlap/intra-default",  # benchmark.intra_op_threads: 0
        "fp32+overlap-info/intra-1",
        "fp32+parallel",
        "int8+overlap/intra-default",
        "int8+overlap-info/intra-1",
        "int8+parallel",
    ]
    named = BenchmarkParams(intra_op_threads=1)
    assert list(pipelines.pipeline_entries(files, None, [Path("a.jpg")], named, None)) == [
        "fp32+overlap/intra-1",
        "fp32+overlap-info/intra-default",
        "fp32+parallel",
    ]
    assert perf_run._kind("int8+overlap-info/intra-1", {}) == "edgeproof-overlap-info"
    assert perf_run._kind("int8+overlap/intra-default", {}) == "edgeproof-overlap"
    entries = [
        _entry("ultralytics", "fp32", 100.0, 7.0, 0.79),
        _entry("ultralytics-parallel", "fp32", 125.0, 9.0, 0.79),
        _entry("edgeproof-overlap", "fp32", 130.0, 6.0, 0.78),
        _entry("edgeproof-overlap-info", "fp32", 160.0, 6.0, 0.78),
    ]
    assert ratios(entries, "fp32")["fp32_overlap_fps_vs_ultralytics_onnx_best"] == 130 / 125


def test_flops_are_counted_on_a_model_that_takes_uint8_pixels(tmp_path):
    """Finding 7: count_flops fed float32 zeros, so a model built with ``optimize.input: uint8_nhwc`` failed
    with ONNX Runtime's INVALID_ARGUMENT naming no file; a non-image input is refused naming the file."""
    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1]),  # (1, 8, 16, 16)
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 32, 32, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "u8.onnx"))
    assert count_flops(tmp_path / "u8.onnx") == 2 * (8 * 3 * 3 * 3) * (16 * 16)
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT32
    model.graph.node[0].attribute[0].i = TensorProto.FLOAT
    onnx.save(model, str(tmp_path / "i32.onnx"))
    with pytest.raises(ValueError, match=r"i32\.onnx: input 'x'"):
        count_flops(tmp_path / "i32.onnx")


def test_the_footer_says_what_the_map_column_is_scored_on():
    """Finding 8: the footer said "pycocotools on the val split at the evaluation thresholds for every entry",
    while mAP is scored over every val image at conf 0.001, not on the timed frames at the deploy conf, and the
    two sides differ in preprocessing and in labels per box."""
    details = {
        "matmul_gflop_per_s": {"best": 226.0, "measurements": []},
        **{"gflop": 1.13, "rounds": 5, "images": 50, "frames_per_round": 100, "warmup": 10, "ratios": {}},
        "map_scoring": {"conf": 0.001, "iou": 0.7, "max_det": 300, "multi_label": True, "images": 500},
    }
    doc = {"machine": "cpu", "image_size": 256, "compute_floor_ms": 5.0, "release_variant": None, "entries": []}
    md = render({**doc, "details": details})
    assert "for every entry" not in md
    assert "all 500 val images at the evaluation's scoring thresholds (conf 0.001, NMS IoU 0.7, max_det 300)" in md
    assert "not over the timed frames (the first 50 val images at the deploy operating point)" in md
    assert "(multi_label true)" in md and "its NMS keeps one class per box" in md
