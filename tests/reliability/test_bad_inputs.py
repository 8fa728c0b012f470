"""The table-driven bad-input suite: every case, fed to its entry point, is refused cleanly (an error or a
report entry naming the file or key), with every file that existed before byte-identical afterwards.

The same table feeds ``edgeproof reliability`` (reports/reliability.{json,md}).
"""

from __future__ import annotations

import json

import pytest

from edgeproof.cli import main as cli_main
from reliability.bundle_cases import RESULTS, _forged
from reliability.cases import Case
from reliability.report import BAD_INPUTS, render_markdown, summarize
from reliability.runner import run_case


def test_the_table_has_at_least_twenty_kinds():
    assert len({c.name for c in BAD_INPUTS}) == len(BAD_INPUTS) >= 20


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.name)
def test_bad_input_is_refused_cleanly(case, tmp_path):
    result = run_case(case, tmp_path)
    assert result["data_lost"] == 0, result["detail"]
    assert result["outcome"] == "refused", result["detail"]


def test_the_forged_device_results_pass_the_gate_before_they_are_forged(tmp_path):
    """The gate-forged-* cases' control: unedited, the same results pass, so the forgery alone makes them fail."""
    result = run_case(Case("honest", "unedited device results", _forged(lambda bundle, results: None, "-")), tmp_path)
    assert result["outcome"] == "accepted", result["detail"]
    assert json.loads((tmp_path / "honest" / "repo" / RESULTS / "gate.json").read_text())["verdict"] == "pass"


def test_report_shape_and_command(tmp_path, capsys):
    code = cli_main(["reliability", "--out", str(tmp_path), "--no-faults", "--cases", "coco-json-truncated"])
    assert code == 0
    report = json.loads((tmp_path / "reliability.json").read_text())
    assert {"faults_injected", "faults_survived", "bad_inputs_tried", "bad_inputs_refused_cleanly", "data_lost"} <= set(
        report
    )
    assert report["bad_inputs_tried"] == report["bad_inputs_refused_cleanly"] == 1 and report["data_lost"] == 0
    assert set(report["cases"][0]) == {"kind", "name", "outcome", "detail"}
    assert "train.json" in report["cases"][0]["detail"]
    assert "| bad_input | coco-json-truncated | refused |" in (tmp_path / "reliability.md").read_text()


def test_a_case_that_is_accepted_or_loses_data_counts_against_the_totals():
    cases = [
        {"kind": "bad_input", "name": "a", "outcome": "refused", "detail": "", "data_lost": 0},
        {"kind": "bad_input", "name": "b", "outcome": "accepted", "detail": "exit 0", "data_lost": 2},
        {"kind": "fault", "name": "c", "outcome": "failed", "detail": "", "data_lost": 0},
    ]
    report = summarize(cases)
    assert (report["bad_inputs_tried"], report["bad_inputs_refused_cleanly"]) == (2, 1)
    assert (report["faults_injected"], report["faults_survived"], report["data_lost"]) == (1, 0, 2)
    assert "**accepted**" in render_markdown(report)
