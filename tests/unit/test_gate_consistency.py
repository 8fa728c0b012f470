"""The build gate's ``results_consistent``: a one-field edit that contradicts the rest of its file is invalid.

``fps_e2e: 999`` beside ``e2e.fps: 170.8``, a p95 in seconds or under its own p50, another machine's
``device`` or a ``map50`` the file's own cross-check and per-class rows contradict all passed the build
gate (and, after ``dvc commit``, reached champion as "clean"): review "records" 2. The committed
release's real files are the fixture, so today's outputs are shown to pass too.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from edgeproof.gate import check_gate, cross_check_problems
from edgeproof.profiles import DeviceGate

REPO = Path(__file__).resolve().parents[2]


def _release() -> dict:
    return json.loads((REPO / "reports" / "release.json").read_text())


def _released() -> tuple[str, str, dict, dict, str]:
    release = _release()
    variant = release["variants"][release["profiles"][release["build_profile"]]["variant"]]
    ev, bench = variant["eval_json"], variant["bench_json"]
    return ev, bench, json.loads((REPO / ev).read_text()), json.loads((REPO / bench).read_text()), variant["sha256"]


def _peers() -> dict:
    variants = _release()["variants"].values()
    return {v["bench_json"]: json.loads((REPO / v["bench_json"]).read_text()) for v in variants if "bench_json" in v}


def _judge(evaluation: dict, bench: dict) -> dict:
    ev, bench_path, _, _, sha = _released()
    report = check_gate(DeviceGate(), evaluation, bench, sha, sources=(ev, bench_path), peers=_peers())
    return next(r for r in report["rules"] if r["name"] == "results_consistent") | {"verdict": report["verdict"]}


def test_every_variant_of_the_committed_release_is_consistent():
    peers = _peers()
    for name, v in _release()["variants"].items():
        if "bench_json" not in v:
            continue
        evaluation, bench = (json.loads((REPO / v[k]).read_text()) for k in ("eval_json", "bench_json"))
        report = check_gate(
            DeviceGate(), evaluation, bench, v["sha256"], sources=(v["eval_json"], v["bench_json"]), peers=peers
        )
        rule = next(r for r in report["rules"] if r["name"] == "results_consistent")
        assert rule["status"] == "pass", (name, rule)
        assert cross_check_problems(evaluation) == [], name


def _set(data: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(data)
    *path, last = dotted.split(".")
    node = out
    for key in path:
        node = node[key]
    node[last] = value
    return out


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("fps_e2e", 999.0, "bench.json fps_e2e 999.0 differs from e2e.fps"),
        ("latency_ms.p95", 0.0592, "bench.json latency_ms.p95 0.0592 differs from e2e.p95"),  # seconds
        ("latency_ms.p95", 1.0, "bench.json latency_ms.p90"),  # under its own p90 (and p50)
        ("device.cpu_model", "Intel(R) Xeon(R) Platinum 8480+", "bench.json device.cpu_model Intel(R) Xeon"),
        ("device.cpu_cores", 64, "bench.json device.cpu_cores 64 differs from metrics/variants/"),
        ("e2e.fps", 999.0, "bench.json e2e.fps 999.0 differs from 1000 / e2e.mean"),
    ],
)
def test_a_one_field_bench_edit_is_invalid_naming_file_and_key(key, value, named):
    _, bench_path, evaluation, bench, _ = _released()
    rule = _judge(evaluation, _set(bench, key, value))
    assert rule["status"] == "invalid" and rule["verdict"] == "fail", rule
    assert f"{bench_path}{named.removeprefix('bench.json')}" in rule["reason"], rule["reason"]


def test_a_map50_the_file_contradicts_is_invalid_naming_file_and_key():
    ev, _, evaluation, bench, _ = _released()
    edited = _set(evaluation, "map50", 0.99)
    rule = _judge(edited, bench)
    assert rule["status"] == "invalid", rule
    assert f"{ev} map50 0.99 differs from the mean of per_class[].ap50 0.96" in rule["reason"], rule["reason"]
    assert any("ultralytics_map50 0.96" in p and "map50 0.9900" in p for p in cross_check_problems(edited))


def test_a_bench_without_its_end_to_end_run_is_inconclusive_not_a_pass():
    _, bench_path, evaluation, bench, _ = _released()
    bench = {k: v for k, v in bench.items() if k != "e2e"}
    rule = _judge(evaluation, bench)
    assert rule["status"] == "inconclusive" and f"{bench_path} has no e2e section" in rule["reason"]


def _ten_times_faster(bench: dict) -> dict:
    """review launder12 #6 (attack E): the e2e run divided by 10 with fps_e2e, e2e.fps and latency_ms made to
    match; rounds_fps_e2e and the model-only run left as measured."""
    out = copy.deepcopy(bench)
    for key in ("max", "mean", "min", "p50", "p90", "p95", "p99", "std"):
        out["e2e"][key] = round(out["e2e"][key] / 10, 4)
    out["e2e"]["fps"] = out["fps_e2e"] = round(1000 / out["e2e"]["mean"], 3)
    out["latency_ms"] = {k: out["e2e"][k] for k in out["latency_ms"]}
    return out


def test_a_speed_edit_its_own_rounds_and_model_pass_contradict_is_invalid_naming_file_and_key():
    _, bench_path, evaluation, bench, _ = _released()
    edited = _ten_times_faster(bench)
    rule = _judge(evaluation, edited)
    assert rule["status"] == "invalid" and rule["verdict"] == "fail", rule
    median = sorted(bench["rounds_fps_e2e"])[len(bench["rounds_fps_e2e"]) // 2]
    assert (
        f"{bench_path} fps_e2e {edited['fps_e2e']!r} differs from the median of rounds_fps_e2e {median!r}"
        in (rule["reason"])
    )
    model = bench["latency_model_ms"]["mean"]
    assert (
        f"{bench_path} e2e.mean {edited['e2e']['mean']!r} is under 1/3 of latency_model_ms.mean {model!r}"
        in (rule["reason"])
    )
    assert f"{bench_path} fps_e2e {edited['fps_e2e']!r} is over 3 x fps_model" in rule["reason"]


def test_a_best_round_the_release_record_did_not_see_is_invalid_naming_both():
    """review launder12 #6: release.json's fps_e2e_best_round (the max of the bench's rounds when measured)
    was held to nothing: the rounds edited x10 with fps_e2e kept their median passed beside it."""
    from edgeproof.gate_consistency import Released, consistency_rule

    ev, bench_path, evaluation, bench, _ = _released()
    release = _release()
    name = release["profiles"][release["build_profile"]]["variant"]
    record = release["variants"][name]
    released = Released("reports/release.json", name, record)
    assert record["fps_e2e_best_round"] == max(bench["rounds_fps_e2e"])
    assert consistency_rule(evaluation, bench, (ev, bench_path), _peers(), released)["status"] == "pass"
    edited = _ten_times_faster(bench)
    edited["rounds_fps_e2e"] = [round(r * 10, 3) for r in bench["rounds_fps_e2e"]]
    edited["fps_e2e"] = edited["e2e"]["fps"] = sorted(edited["rounds_fps_e2e"])[len(edited["rounds_fps_e2e"]) // 2]
    best = max(edited["rounds_fps_e2e"])
    rule = consistency_rule(evaluation, edited, (ev, bench_path), _peers(), released)
    assert rule["status"] == "invalid", rule
    assert (
        f"{bench_path} max of rounds_fps_e2e {best} differs from reports/release.json "
        f"variants.{name}.fps_e2e_best_round {record['fps_e2e_best_round']}"
    ) in rule["reason"], rule["reason"]
