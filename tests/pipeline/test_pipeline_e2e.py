"""The real `dvc repro` on tiny params: every declared output, the contracts, caching and the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edgeproof.io import sha256_file
from edgeproof.training.parity_judge import figures as parity_figures
from tests.pipeline.repo_copy import dvc, make_repo, set_params

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = make_repo(tmp_path_factory.mktemp("e2e") / "repo")
    proc = dvc(root, "repro")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root


def _declared_outputs(root: Path) -> list[str]:
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    out = []
    for stage in stages.values():
        for key in ("outs", "metrics", "plots"):
            out += [next(iter(i)) if isinstance(i, dict) else i for i in stage.get(key, [])]
    return out


def test_every_declared_output_exists(repo):
    for out in _declared_outputs(repo):
        path = repo / out
        assert path.exists(), out
        assert path.is_dir() or path.stat().st_size > 0, out


def test_machine_contracts(repo):
    ev = json.loads((repo / "metrics/eval.json").read_text())
    bench = json.loads((repo / "metrics/bench.json").read_text())
    gate = json.loads((repo / "reports/gate.json").read_text())
    assert {"map50_95", "map50", "map75", "per_class"} <= set(ev)
    assert {"fps_e2e", "fps_model", "latency_ms", "model_sha256", "device"} <= set(bench)
    assert {"p50", "p95", "p99"} <= set(bench["latency_ms"])
    assert {"cpu_model", "cpu_cores", "onnxruntime", "os", "providers_used"} <= set(bench["device"])
    assert bench["device"]["providers_used"] == ["CPUExecutionProvider"]
    assert {"passed", "rules", "model_sha256"} <= set(gate)
    assert gate["passed"] is True
    # the sha256 chain: fp32 evaluated = benchmarked; the gated file is the build profile's release choice
    sha = sha256_file(repo / "models/optimized/fp32.onnx")
    assert ev["model_sha256"] == bench["model_sha256"] == sha
    release = json.loads((repo / "reports/release.json").read_text())
    chosen = release["profiles"][release["build_profile"]]
    assert chosen["variant"] == release["release_variant"]
    assert gate["model_sha256"] == chosen["sha256"] == sha256_file(repo / chosen["path"])
    rescored = next(r for r in gate["rules"] if r["name"] == "rescored")  # the gate scored the file itself
    assert rescored["status"] == "pass" and rescored["threshold"] == "equal", rescored
    identity = next(r for r in gate["rules"] if r["name"] == "val_identity")  # val is the data stage's
    assert identity["status"] == "pass", identity
    assert release["variants"]["fp16"]["evaluated"] is False  # no GPU provider on the test machine
    parity = json.loads((repo / "metrics/parity.json").read_text())
    assert parity["raw_outputs"]["passed"] is True
    export = json.loads((repo / "metrics/export.json").read_text())
    assert export["inputs"]["images"] == ["batch", 3, 64, 64]
    assert export["outputs"]["output0"][1] == 4 + 3


def test_gate_report_is_a_readable_table(repo):
    md = (repo / "reports/gate.md").read_text()
    assert "PASSED" in md and "| rule | metric | threshold | measured | result |" in md
    assert "## Variants measured on cpu-ci (this machine)" in md and "| released |" in md


def test_each_variant_memory_is_its_own(repo):
    """Measured in a fresh process per model: int8 holds less than fp32, and neither holds the release
    process's torch (~900 MB)."""
    variants = json.loads((repo / "reports/release.json").read_text())["variants"]
    fp32, int8 = variants["fp32"], variants["int8"]
    assert 30 < int8["peak_memory_mb"] < fp32["peak_memory_mb"] < 400
    assert int8["model_memory_mb"] < fp32["model_memory_mb"]
    bench = json.loads((repo / "metrics/variants/int8/bench.json").read_text())
    assert bench["memory"]["isolated"] is True and bench["memory"]["model_sha256"] == int8["sha256"]


def test_mlflow_record_and_registration(repo):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("edgeproof")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["gate_passed"] == "true"
    release = json.loads((repo / "reports/release.json").read_text())
    assert run.data.tags["model_sha256"] == release["profiles"][release["build_profile"]]["sha256"]
    assert run.data.tags["git_commit"] != "unknown"
    assert {"mAP50", "fps", "gate_passed"} <= set(run.data.metrics)  # the headline (every other number is there too)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/eval.json", "reports/bench.json", "reports/reference"} <= artifacts
    # eval.* and reports/eval.json are the gated file's own, as in every run; the fp32 reference apart
    gated = release["variants"][release["profiles"][release["build_profile"]]["variant"]]
    figures = {name: json.loads((repo / path).read_text()) for name, path in
               (("eval", gated["eval_json"]), ("reference.eval", "metrics/eval.json"))}  # fmt: skip
    assert {k: run.data.metrics[f"{k}.map50_95"] for k in figures} == {k: v["map50_95"] for k, v in figures.items()}
    assert client.get_metric_history(run.info.run_id, "train_curve.map50")
    assert client.search_model_versions("name='edgeproof-detector'")


def test_no_files_written_outside_the_repo_but_relocatable_caches(repo):
    home = repo / ".home"
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()) if home.exists() else []
    assert all(p.startswith((".cache/", ".config/matplotlib")) for p in written), written


def test_second_repro_runs_nothing_and_threshold_change_reruns_only_what_judges(repo):
    proc = dvc(repo, "repro")
    assert proc.returncode == 0
    assert "Running stage" not in proc.stdout
    set_params(repo, {"profiles": {"cpu-ci": {"gate": {"max_latency_p95_ms": 99.0}}}})
    proc = dvc(repo, "repro")
    assert proc.returncode == 0, proc.stderr[-2000:]
    ran = [line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")]
    # the thresholds' one home is the build profile: the release choice judges with them (and re-measures
    # the variants, being one stage with the measurement), the bundle ships them, the gate applies them;
    # the charts follow release.json. Nothing upstream of the variants' measurement reruns.
    assert ran == ["release", "plots", "gate", "bundle"]


def test_failing_gate_fails_the_pipeline_and_names_the_rule(repo):
    set_params(repo, {"profiles": {"cpu-ci": {"gate": {"min_fps": 1.0e9}}}})
    proc = dvc(repo, "repro")
    assert proc.returncode != 0
    assert "gate rule fps failed" in proc.stderr + proc.stdout
    gate = json.loads((repo / "reports/gate.json").read_text())
    assert gate["passed"] is False and gate["failed"] == ["fps"]
    assert "**FAIL**" in (repo / "reports/gate.md").read_text()
    set_params(repo, {"profiles": {"cpu-ci": {"gate": {"min_fps": 1.0}}}})


def _launder(repo: Path, delta: float) -> dict[Path, str]:
    """Raise the released variant's mAP by ``delta`` in its eval.json (per-class rows and cross-check
    figures alike) and in release.json's copies: every file agrees with every other. The originals."""
    release_path = repo / "reports/release.json"
    release = json.loads(release_path.read_text())
    variant = release["release_variant"]
    eval_path = repo / release["variants"][variant]["eval_json"]
    before = {path: path.read_text() for path in (release_path, eval_path)}
    ev = json.loads(before[eval_path])
    for key in ("map50", "map50_95"):
        ev[key] += delta
        release["variants"][variant][key] += delta
    for row in ev["per_class"]:
        row["ap"] += delta
        row["ap50"] += delta
    for key in ("pycocotools", "independent", "ultralytics", "ultralytics_map50"):
        if isinstance(ev["cross_check"].get(key), float):
            ev["cross_check"][key] += delta
    eval_path.write_text(json.dumps(ev))
    release_path.write_text(json.dumps(release))
    return before


def test_an_evaluation_edited_alike_everywhere_is_caught_by_the_gates_own_scoring(repo):
    """Records review (session 11): a variant's eval.json edited together with release.json's copies, then
    gated as `dvc commit` would leave it, was a clean pass. The gate now scores the file on val itself."""
    delta = 0.05
    before = _launder(repo, delta)
    try:
        proc = dvc(repo, "repro", "-s", "-f", "gate")
        assert proc.returncode != 0, proc.stdout[-2000:]
        gate = json.loads((repo / "reports/gate.json").read_text())
        assert gate["verdict"] == "fail" and gate["failed"] == ["rescored"], gate["failed"]
        rule = next(r for r in gate["rules"] if r["name"] == "rescored")
        assert rule["status"] == "invalid", rule
        assert "map50 " in rule["reason"] and "differs from the gate's own scoring" in rule["reason"]
        assert next(r for r in gate["rules"] if r["name"] == "results_consistent")["status"] == "pass"
    finally:
        for path, text in before.items():
            path.write_text(text)
        assert dvc(repo, "repro", "-s", "-f", "gate").returncode == 0


def _gate_fails_on(repo: Path, edit, rule_name: str) -> dict:
    """``edit`` the files (it returns their originals), gate as `dvc commit` would leave them: ``rule_name``
    is the one rule that fails; the originals are put back and the gate passes again. That rule's result."""
    before = edit(repo)
    try:
        proc = dvc(repo, "repro", "-s", "-f", "gate")
        assert proc.returncode != 0, proc.stdout[-2000:]
        gate = json.loads((repo / "reports/gate.json").read_text())
        assert gate["verdict"] == "fail" and gate["failed"] == [rule_name], gate["failed"]
        return next(r for r in gate["rules"] if r["name"] == rule_name)
    finally:
        for path, text in before.items():
            path.write_text(text)
        assert dvc(repo, "repro", "-s", "-f", "gate").returncode == 0


def _raise_map75(repo: Path) -> dict[Path, str]:
    """launder12 #4: map75 and every class's ap75 raised alike (results_consistent's mean holds)."""
    release = json.loads((repo / "reports/release.json").read_text())
    eval_path = repo / release["variants"][release["release_variant"]]["eval_json"]
    before = {eval_path: eval_path.read_text()}
    ev = json.loads(before[eval_path])
    for row in ev["per_class"]:
        row["ap75"] = min(1.0, row["ap75"] + 0.08)
    ev["map75"] = round(sum(r["ap75"] for r in ev["per_class"]) / len(ev["per_class"]), 6)
    eval_path.write_text(json.dumps(ev))
    return before


def test_a_map75_edited_alike_is_caught_by_the_gates_own_scoring(repo):
    rule = _gate_fails_on(repo, _raise_map75, "rescored")
    assert rule["status"] == "invalid" and "map75 " in rule["reason"], rule


def _release_broken_parity(repo: Path) -> dict[Path, str]:
    """launder12 #2: release.json edited to release another measured int8 variant for the build profile, agreeing
    with itself, that variant marked as having broken parity in parity.json (its counts: no box matched) and
    release.json alike (as if optimize had measured it so; the gate judges the counts, not the flag)."""
    release_path, parity_path = repo / "reports/release.json", repo / "metrics/parity.json"
    before = {path: path.read_text() for path in (release_path, parity_path)}
    release, parity = json.loads(before[release_path]), json.loads(before[parity_path])
    variant = next(n for n, v in release["variants"].items() if n.startswith("int8") and v.get("evaluated"))
    record = release["variants"][variant]
    release["profiles"][release["build_profile"]].update(
        variant=variant, path=record["path"], sha256=record["sha256"], reason="edited"
    )
    release["release_variant"] = variant
    measured = parity["detections"]["variants"][variant]
    # counts enough to judge (tiny models find few boxes), none matched: broken parity, as optimize would write it
    measured["classes"] = {c: parity_figures(10, 10, 0) for c in measured["classes"] or ["0"]}
    measured.update(parity_figures(10 * len(measured["classes"]), 10 * len(measured["classes"]), 0))
    measured.update(passed=False, measured=True)
    record["parity_passed"] = False
    release_path.write_text(json.dumps(release))
    parity_path.write_text(json.dumps(parity))
    return before


def test_a_release_choice_the_release_stage_would_reject_fails_the_gate(repo):
    before = _release_broken_parity(repo)
    try:
        proc = dvc(repo, "repro", "-s", "-f", "gate")
        assert proc.returncode != 0, proc.stdout[-2000:]
        gate = json.loads((repo / "reports/gate.json").read_text())
        rule = next(r for r in gate["rules"] if r["name"] == "release_choice")
        assert gate["verdict"] == "fail" and rule["status"] == "fail" and "breaks parity" in rule["reason"], rule
        assert next(r for r in gate["rules"] if r["name"] == "rescored")["status"] == "pass"  # an honest eval
    finally:
        for path, text in before.items():
            path.write_text(text)
        assert dvc(repo, "repro", "-s", "-f", "gate").returncode == 0


def test_bad_params_fail_with_the_key_named(repo):
    set_params(repo, {"train": {"epochs": 0}})
    try:
        proc = dvc(repo, "repro")
        assert proc.returncode != 0
        assert "train.epochs" in proc.stderr + proc.stdout
    finally:
        set_params(repo, {"train": {"epochs": 1}})
