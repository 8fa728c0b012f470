"""release.json's variant records: mAP drop against fp32, not-judged variants, and reuse of fp32's evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.benchmark import BenchmarkParams
from edgeproof.evaluation.params import EvaluateParams
from edgeproof.io import sha256_file
from edgeproof.release import measure
from edgeproof.runtime.deploy import DeploySettings

PARITY = {
    "detections": {
        "variants": {
            "fp32": {"measured": True, "passed": True, "matched_share": 1.0},
            "int8": {"measured": True, "passed": False, "matched_share": 0.5},
            "fp16": {"measured": False, "passed": None, "reason": "needs a GPU provider"},
        }
    }
}


def _bench(fps):
    return {"fps_e2e": fps, "latency_ms": {"p95": 9.0}, "latency_model_ms": {"p50": 5.0}}


def test_the_drop_is_recorded_to_the_digits_the_maps_have_so_the_budget_sees_it_whole():
    """measure12 review: map_drop was rounded to 4 decimals, so a drop of 0.015049 was recorded as 0.015 and
    accepted under a 0.015 budget (the build gate has no drop rule of its own to catch it)."""
    measured = measure.Measured(
        evals={"fp32": {"map50_95": 0.77266, "map50": 0.96}, "int8": {"map50_95": 0.757611, "map50": 0.95}},
        benches={"fp32": _bench(150.0), "int8": _bench(250.0)},
    )
    facts = {n: {"path": f"models/optimized/{n}.onnx", "sha256": n * 16} for n in ("fp32", "int8")}
    paths = {n: (Path(f"metrics/variants/{n}/eval.json"), Path(f"metrics/variants/{n}/bench.json")) for n in facts}
    recs = measure.public(measure.records(facts, PARITY, measured, paths))
    assert recs["int8"]["map_drop"] == 0.015049 and recs["int8"]["map_drop"] > 0.015


def test_records_carry_the_drop_parity_and_reasons():
    measured = measure.Measured(
        evals={"fp32": {"map50_95": 0.79, "map50": 0.96}, "int8": {"map50_95": 0.77, "map50": 0.95}},
        benches={"fp32": _bench(150.0), "int8": _bench(250.0)},
        not_judged={"fp16": "needs a GPU provider"},
    )
    facts = {n: {"path": f"models/optimized/{n}.onnx", "sha256": n * 16} for n in ("fp32", "fp16", "int8")}
    paths = {n: (Path(f"metrics/variants/{n}/eval.json"), Path(f"metrics/variants/{n}/bench.json")) for n in facts}
    recs = measure.public(measure.records(facts, PARITY, measured, paths))
    assert recs["int8"]["map_drop"] == 0.02 and recs["fp32"]["map_drop"] == 0.0
    assert recs["int8"]["parity_passed"] is False and recs["int8"]["fps_e2e"] == 250.0
    assert recs["fp16"] == {
        "path": "models/optimized/fp16.onnx",
        "sha256": "fp16" * 16,
        "parity_passed": None,
        "parity_matched_share": None,
        "parity_measured": False,
        "parity_reason": "needs a GPU provider",
        "evaluated": False,
        "reason": "needs a GPU provider",
    }
    assert "eval" not in recs["fp32"] and recs["fp32"]["eval_json"] == "metrics/variants/fp32/eval.json"


def test_records_copy_the_figures_the_gate_compares_them_with_unchanged():
    """The gate's results_consistent holds the gated eval.json and bench.json to their record's copies by
    exact equality (gate_consistency.RELEASE_COPIES, and the evaluation's counts): the copies are unrounded."""
    from edgeproof.gate_consistency import RELEASE_COPIES
    from edgeproof.verdict.eval_size import size_record
    from edgeproof.verdict.rules import get_path

    rows = [{"category_id": 1, "name": "a", "ap": 0.7712345678, "n_gt": 12}]
    ev = {"map50_95": 0.7712345678, "map50": 0.9612345678, "n_images": 20, "n_gt": 12, "per_class": rows}
    ev["n_background_images"] = 3
    bench = {**_bench(187.23456789), "latency_ms": {"p95": 6.1712345}}
    measured = measure.Measured(evals={"int8": ev}, benches={"int8": bench})
    paths = {"int8": (Path("metrics/variants/int8/eval.json"), Path("metrics/variants/int8/bench.json"))}
    facts = {"int8": {"path": "models/optimized/int8.onnx", "sha256": "i" * 64}}
    rec = measure.public(measure.records(facts, {}, measured, paths))["int8"]
    docs = {"eval": ev, "bench": bench}
    copies = {key: get_path(docs[role], path) for key, (role, path) in RELEASE_COPIES.items()}
    assert {key: rec[key] for key in RELEASE_COPIES} == copies
    assert {key: rec[key] for key in size_record(ev)} == size_record(ev)


def test_fp32_evaluation_is_reused_only_for_the_same_file(fixed_detector_factory, monkeypatch):
    raw = np.zeros((5, 4), np.float32)
    fp32 = fixed_detector_factory(raw)
    calls = []
    monkeypatch.setattr(measure, "evaluate_onnx", lambda path, *_a, **_kw: calls.append(path) or _Eval())
    monkeypatch.setattr(measure, "run_benchmark", lambda path, *_a, **_kw: _bench(100.0))
    args = (PARITY, Path("data"), [], EvaluateParams(), BenchmarkParams(), DeploySettings(), 1)
    same = measure.measure({"fp32": fp32}, *args, reference_eval={"model_sha256": sha256_file(fp32), "map50_95": 0.7})
    assert calls == [] and same.evals["fp32"]["map50_95"] == 0.7
    measure.measure({"fp32": fp32}, *args, reference_eval={"model_sha256": "0" * 64})
    assert calls == [fp32]


def test_the_release_rounds_turn_the_variants_order(fixed_detector_factory, monkeypatch):
    """Diff review finding 3: only `edgeproof perf` turned the order; the release stage, which picks the released
    variant, timed fp32 first in every round. Each variant keeps its own rounds, in round order."""
    files = {name: fixed_detector_factory(np.zeros((5, 4), np.float32)) for name in ("fp32", "int8")}
    names = {path: name for name, path in files.items()}
    ran: list[str] = []
    fps = {"fp32": iter([10.0, 11.0, 12.0, 13.0]), "int8": iter([20.0, 21.0, 22.0, 23.0])}

    def bench(path, *_a, **_kw):
        ran.append(names[path])
        return _bench(next(fps[names[path]]))

    monkeypatch.setattr(measure, "evaluate_onnx", lambda *_a, **_kw: _Eval())
    monkeypatch.setattr(measure, "run_benchmark", bench)
    apart = {"memory": {"peak_memory_mb": 1.0, "memory": {}}, "e2e_parallel": {"measured": False}}
    monkeypatch.setattr(measure, "measured_apart", lambda *_a: apart)
    parity = {"detections": {"variants": {n: {"measured": True, "passed": True} for n in files}}}
    args = (parity, Path("data"), [], EvaluateParams(), BenchmarkParams(), DeploySettings(), 4)
    out = measure.measure(files, *args)
    assert ran == ["fp32", "int8", "int8", "fp32", "fp32", "int8", "int8", "fp32"]
    assert out.benches["fp32"]["rounds_fps_e2e"] == [10.0, 11.0, 12.0, 13.0]
    assert out.benches["int8"]["rounds_fps_e2e"] == [20.0, 21.0, 22.0, 23.0]


class _Eval:
    metrics = {"map50_95": 0.6}  # noqa: RUF012
