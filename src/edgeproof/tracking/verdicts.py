"""The gate's verdict and each device's, as a tracking record keeps them (no MLflow import here)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VERDICT_FIELDS = ("passed", "verdict", "model_sha256", "failed")
"""What a record keeps of each gate report's verdict."""
BUILD_PROFILE = "build"
"""The verdict's profile name when neither the gate report, ``reports/release.json`` nor params names one."""
# what a gate run by hand (--model/--eval/--bench: the release stage's choice not checked) says in its record's
# provenance; tracking.context tells the blocker by it, so it has one home
HAND_RUN = "gated by hand (--model/--eval/--bench), not the release's choice (--release)"
OLDER_HAND_RUN = (
    "gated by hand by code from before 2026-12-07 (its verdict is keyed 'build', named by no release profile: "
    "no --release), which called it clean; today's gate registers no such run"
)
"""Why a record or version that says ``provenance: clean`` is not: the gate has refused a hand run
(``--model/--eval/--bench``) and judged files outside the pipeline's outputs since f389502/8fefaf2."""
RULES_FIELD = "provenance_rules"
PROVENANCE_RULES = "hand-run,judged-files"
"""What a record's (and its history entry's) :data:`RULES_FIELD` says its provenance word was checked against;
records from before it was written were not checked against both."""


def older_hand_run(provenance: Any, verdicts: Any, rules: Any) -> bool:
    """Whether a record (or a version's promotion record) saying ``provenance``, ``verdicts`` and ``rules``
    (its :data:`RULES_FIELD`) is a clean :data:`OLDER_HAND_RUN`: ``clean``, written before the rules were
    (no :data:`PROVENANCE_RULES`), with a build verdict keyed :data:`BUILD_PROFILE`. That key is the hand
    run's mark: a gate run with ``--release`` is keyed by ``release.json``'s ``build_profile``, also in
    older code (checked on stores of 2532349 and db832ea code), and a device's verdict never is."""
    if provenance != "clean" or rules == PROVENANCE_RULES or not isinstance(verdicts, Mapping):
        return False
    build = verdicts.get(BUILD_PROFILE)
    return build is not None and not (isinstance(build, Mapping) and build.get("device"))


VERDICTS = ("pass", "fail", "inconclusive", "invalid")
"""The words a verdict may say (``invalid``: a device report a record refused, :func:`verdicts`)."""


def verdict_problem(report: Mapping[str, Any]) -> str | None:
    """Why a gate report's ``passed`` and ``verdict`` cannot be taken (None: they can).

    The ``verdict`` decides, and a ``passed`` beside it must be the boolean ``verdict == "pass"`` (the
    string ``"false"`` is truthy, and ``passed: true`` beside ``verdict: fail`` is an edit). A report
    without ``verdict`` (a record made before it was kept) is judged by ``passed``, which must then be
    a boolean."""
    said, passed = report.get("verdict"), report.get("passed")
    if said is None:
        return None if isinstance(passed, bool) else f"passed {passed!r} is not true or false (and no verdict)"
    if said not in VERDICTS:
        return f"verdict {said!r} is none of {', '.join(VERDICTS[:3])}"
    if "passed" in report and passed is not (said == "pass"):
        return f"passed {passed!r} disagrees with verdict {said!r} (expected {str(said == 'pass').lower()})"
    return None


def _device_verdict(path: Path, report: Any) -> dict[str, Any] | None:
    """What a record keeps of a device's ``gate.json``: an invalid verdict (never a pass, the file and key
    named) when its ``passed`` and ``verdict`` disagree; ``None`` for a file that is no JSON object."""
    if not isinstance(report, Mapping):
        log.warning("ignoring the device verdict %s: expected a JSON object, found %s", path, type(report).__name__)
        return None
    kept = {"device": True, **{k: report.get(k) for k in VERDICT_FIELDS}}
    why = verdict_problem(report)
    if why is not None:
        log.warning("device verdict %s refused: %s; counted as not passed", path, why)
        kept.update(passed=False, verdict="invalid", failed=[f"{path.as_posix()}: {why}"])
    return kept


def verdicts(
    gate: Mapping[str, Any], release: Mapping[str, Any] | None, device_reports: Path | None, profile: str | None = None
) -> dict[str, Any]:
    """``{profile: {passed, verdict, model_sha256, failed}}``: this gate's verdict under the build profile
    (the gate report's, else ``release.json``'s, else ``profile``: params' ``release.build_profile``, whose
    thresholds the gate applied also when run by hand without ``release.json``),
    plus each device's ``<device_reports>/<profile>/gate.json`` present on disk (marked ``device``:
    only the model file it names is judged by it, none when it names none). ``verdict`` (``pass``,
    ``fail``, ``inconclusive``) is kept: ``passed`` false alone would show an inconclusive gate as failed.
    A device report whose ``passed`` is no boolean or disagrees with its ``verdict`` is kept as an
    ``invalid`` verdict naming the file and key (:func:`verdict_problem`): never a pass."""
    build = str(gate.get("profile") or (release or {}).get("build_profile") or profile or BUILD_PROFILE)
    out = {build: {"passed": bool(gate.get("passed")), "verdict": gate.get("verdict"),
                   "model_sha256": gate.get("model_sha256"), "failed": gate.get("failed", [])}}  # fmt: skip
    for path in sorted(device_reports.glob("*/gate.json")) if device_reports and device_reports.is_dir() else []:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("ignoring the device verdict %s: %s", path, exc)
            continue
        kept = _device_verdict(path, report)
        if kept is None:
            continue
        out[path.parent.name] = kept
        if not report.get("model_sha256"):
            why = ", ".join(report.get("failed") or []) or report.get("verdict")
            log.warning("device verdict %s names no model file (failed: %s): attributed to no model version", path, why)
    return out


def verdict_label(gate: Mapping[str, Any]) -> str:
    """The verdict as the runs table's ``verdict`` column shows it: ``✓ passed``, ``✗ FAILED: fps`` or
    ``⚠ INCONCLUSIVE: latency_p95`` (capitals and a mark, so a run that did not pass stands out without
    reading a 0 in ``gate_passed``, and one that judged nothing is not taken for a failed model)."""
    if gate.get("passed"):
        return "✓ passed"
    rules = ", ".join(str(f) for f in gate.get("failed") or []) or "no verdict"
    return f"⚠ INCONCLUSIVE: {rules}" if gate.get("verdict") == "inconclusive" else f"✗ FAILED: {rules}"


def thresholds(gate: Mapping[str, Any]) -> dict[str, str]:
    """``{rule: "<op> <threshold>"}`` as the gate report states them (whatever params key they came from)."""
    out = {}
    for rule in gate.get("rules") or []:
        if isinstance(rule, Mapping) and rule.get("name") and rule.get("op") != "==" and "threshold" in rule:
            out[str(rule["name"])] = f"{rule.get('op', '')} {rule['threshold']}".strip()
    return out
