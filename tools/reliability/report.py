"""``reports/reliability.{json,md}``: every bad input tried and fault injected, with totals."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeproof.io import write_json, write_text
from reliability.bundle_cases import BUNDLE_CASES
from reliability.cases import DATA_CASES, Case
from reliability.model_cases import MODEL_CASES
from reliability.runner import run_case

log = logging.getLogger(__name__)

BAD_INPUTS: list[Case] = [*DATA_CASES, *MODEL_CASES, *BUNDLE_CASES]
NOT_COVERED = [
    "SIGTERM during evaluate (SIGKILL is covered), and faults in benchmark, gate and bundle",
    "two queued experiments run with `dvc queue start -j 2`: tests/pipeline/test_queue.py runs them (both "
    "finish, one trains, the other waits and reuses the run), this report does not",
]


def summarize(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The report: totals in the issue's shape, then every case."""
    bad = [c for c in cases if c["kind"] == "bad_input"]
    faults = [c for c in cases if c["kind"] == "fault"]
    return {
        "faults_injected": sum(1 for c in faults if c["outcome"] != "not_injected"),
        "faults_survived": sum(1 for c in faults if c["outcome"] == "survived"),
        "bad_inputs_tried": len(bad),
        "bad_inputs_refused_cleanly": sum(1 for c in bad if c["outcome"] == "refused"),
        "data_lost": sum(c.get("data_lost", 0) for c in cases),
        "cases": [{k: c[k] for k in ("kind", "name", "outcome", "detail")} for c in cases],
        "not_covered": NOT_COVERED,
    }


def passed(report: dict[str, Any]) -> bool:
    """Every bad input refused cleanly, every injected fault survived, nothing lost."""
    return (
        report["bad_inputs_refused_cleanly"] == report["bad_inputs_tried"]
        and report["faults_survived"] == report["faults_injected"]
        and report["data_lost"] == 0
    )


def render_markdown(report: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = [
        "# Reliability report",
        "",
        f"- bad inputs refused cleanly: **{report['bad_inputs_refused_cleanly']} / {report['bad_inputs_tried']}**",
        f"- faults survived: **{report['faults_survived']} / {report['faults_injected']}**",
        f"- data lost: **{report['data_lost']}** (files of the user that changed or vanished)",
        "",
        "| kind | case | outcome | detail |",
        "|---|---|---|---|",
    ]
    for c in report["cases"]:
        mark = c["outcome"] if c["outcome"] in ("refused", "survived") else f"**{c['outcome']}**"
        detail = c["detail"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {c['kind']} | {c['name']} | {mark} | {detail} |")
    lines += ["", "Not covered by this report:", "", *(f"- {item}" for item in report["not_covered"])]
    return "\n".join(lines) + "\n"


def run_reliability(out_dir: Path, faults: bool = True, only: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the bad-input cases (``only``: by name) and, with ``faults``, the fault cases; write the reports."""
    cases = [c for c in BAD_INPUTS if not only or c.name in only]
    results = []
    with tempfile.TemporaryDirectory(prefix="edgeproof-reliability-") as tmp:
        for case in cases:
            results.append(run_case(case, Path(tmp)))
            log.info("%-28s %s", case.name, results[-1]["outcome"])
        if faults:
            from reliability.faults import run_faults

            results += run_faults(Path(tmp))
    report = summarize(results)
    write_json(out_dir / "reliability.json", report)
    write_text(out_dir / "reliability.md", render_markdown(report))
    return report
