"""`edgeproof exps`: the experiment table fits 120 columns, headline metrics first, then the params
that differ (issue 21.2; the documented `dvc exp show --keep` view was 192 characters wide)."""

from __future__ import annotations

from pathlib import Path

from edgeproof.exptable import param_keys, render

REPO = Path(__file__).resolve().parents[2]


def _row(rev: str, exp: str | None = None, **values: object) -> dict:
    base = {"Experiment": exp, "rev": rev, "typ": "branch_commit" if exp else "baseline"}
    metrics = {"mAP50-95": 0.786569, "mAP50": 0.970797, "mAP75": 0.95, "fps": 181.8, "latency_p95_ms": 5.74}
    metrics |= {"gate_passed": "True", "release_variant": "int8", "model_mb": 2.9, "epochs": 35.0}
    metrics["measured_on"] = "cpu-ci: Intel Xeon Processor, 2 cores"
    params = {key: "x" for key in param_keys(REPO / "params.yaml")}
    return {**base, **metrics, **params, **values}


def test_the_table_fits_120_columns_with_headline_metrics_then_changed_params():
    keys = param_keys(REPO / "params.yaml")
    assert len(keys) > 100 and keys[0] == "data.source" and "profiles.cpu-ci.gate.min_fps" in keys
    # a dozen experiments, each changing some params, one with a long value and a failed gate
    rows = [_row("workspace"), _row("main")]
    rows += [_row("abc1234", f"exp-{i}", **{keys[i * 7]: f"value-{i}" * (1 + i % 3)}) for i in range(12)]
    rows.append(_row("def5678", "min-fps-200", **{"gate.min_fps": 200.0, "gate_passed": "False"}))
    lines = render(rows, keys)
    assert max(map(len, lines)) <= 120
    header = lines[0].split()
    assert header[:7] == ["Experiment", "mAP50-95", "mAP50", "fps", "p95_ms", "gate", "variant"]
    assert "data.source" in header  # changed params follow, in params.yaml order
    assert "train.batch" not in header  # an unchanged one is not a column
    assert any("min-fps-200" in line and "FAIL" in line for line in lines)
    assert any(line.startswith("not shown (over 120 columns): ") for line in lines)  # what did not fit is named
    assert "measured on cpu-ci: Intel Xeon Processor, 2 cores" in lines


def test_a_row_from_another_machine_gets_the_machine_as_a_column():
    rows = [_row("workspace", **{"measured_on": "cpu-ci: AMD EPYC, 2 cores", "fps": 124.6}), _row("main")]
    lines = render(rows, param_keys(REPO / "params.yaml"))
    assert "measured_on" in lines[0].split()
    assert "AMD EPYC" in lines[2] and "Intel Xeon" in lines[3]
    assert lines[-1] == "no param differs between these rows"


def test_real_dvc_experiments_render(tmp_path):
    """DVC's own rows (a tiny repo, one `dvc exp run -S`): the experiment and the changed param show."""
    import json
    import subprocess
    import sys

    from edgeproof.exptable import show

    def run(*cmd: str) -> None:
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, timeout=120)

    (tmp_path / "params.yaml").write_text("train:\n  lr0: 0.01\n  epochs: 35\n")
    headline = {"mAP50-95": 0.78, "fps": 150.0, "gate_passed": True, "measured_on": "cpu-ci: X, 2 cores"}
    (tmp_path / "write.py").write_text(
        f"import pathlib\npathlib.Path('headline.json').write_text({json.dumps(headline)!r})\n"
    )
    stage = {"cmd": f"{sys.executable} write.py", "params": ["train"], "metrics": [{"headline.json": {"cache": False}}]}
    (tmp_path / "dvc.yaml").write_text(json.dumps({"stages": {"gate": stage}}))
    run("git", "init", "-q")
    run("git", "config", "user.email", "t@example.com")
    run("git", "config", "user.name", "t")
    run(sys.executable, "-m", "dvc", "init", "-q")
    run(sys.executable, "-m", "dvc", "config", "core.analytics", "false")
    run(sys.executable, "-m", "dvc", "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "base")
    run(sys.executable, "-m", "dvc", "exp", "run", "-q", "-n", "lr-005", "-S", "train.lr0=0.005")
    lines = show(tmp_path, tmp_path / "params.yaml")
    assert lines[0].split() == ["Experiment", "mAP50-95", "fps", "gate", "train.lr0"], lines
    assert any(line.split()[:1] == ["lr-005"] and line.split()[-1] == "0.005" for line in lines), lines
    assert "measured on cpu-ci: X, 2 cores" in lines and max(map(len, lines)) <= 120
