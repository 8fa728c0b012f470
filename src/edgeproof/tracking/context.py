"""Where and when a pipeline run happened: git state, branch or DVC experiment, run name, times,
and which registry alias a passing model earns (no MLflow import here)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edgeproof.stage_clock import process_start_ms as process_start_ms
from edgeproof.stage_clock import repro_started_ms as repro_started_ms
from edgeproof.tracking.verdicts import HAND_RUN, OLDER_HAND_RUN

log = logging.getLogger(__name__)

PIPELINE_OUTPUTS = ("dvc.lock", "metrics", "reports", "plots")
# set by CI for a pull request (GitHub: head branch) / for any job (GitHub: branch or tag)
_PR_BRANCH_ENV = ("GITHUB_HEAD_REF",)
_BRANCH_ENV = ("GITHUB_REF_NAME", "CI_COMMIT_REF_NAME")


def _git(cwd: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_info(cwd: Path) -> dict[str, str]:
    """Commit and dirty flag of the repo at ``cwd`` ("unknown" outside git)."""
    commit = _git(cwd, "rev-parse", "HEAD")
    # the pipeline's own outputs change on every run; "dirty" means the code or params differ
    status = _git(
        cwd, "status", "--porcelain", "--untracked-files=no", "--", ".", *(f":!{p}" for p in PIPELINE_OUTPUTS)
    )
    return {"git_commit": commit or "unknown", "git_dirty": "unknown" if status is None else str(bool(status)).lower()}


def run_origin(cwd: Path) -> dict[str, str]:
    """``branch`` (CI's branch, else git's; "" when detached), ``pull_request`` ("true"/"false")
    and ``dvc_experiment`` (``$DVC_EXP_NAME``, set by ``dvc exp run``; "" otherwise)."""
    pr_branch = next((os.environ[k] for k in _PR_BRANCH_ENV if os.environ.get(k)), "")
    branch = pr_branch or next((os.environ[k] for k in _BRANCH_ENV if os.environ.get(k)), "")
    if not branch:
        head = _git(cwd, "rev-parse", "--abbrev-ref", "HEAD")
        branch = "" if head in (None, "HEAD") else head
    return {
        "branch": branch,
        "pull_request": str(bool(pr_branch)).lower(),
        "dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
    }


def run_name(tags: dict[str, str], variant: str, record_id: str) -> str:
    """What the run is: ``<DVC experiment or branch>@<short commit>[+dirty]-<variant>``; a dirty
    workspace (code or params not committed) also gets the record's short content id."""
    label = tags.get("dvc_experiment") or tags.get("branch") or "detached"
    commit = tags.get("git_commit", "unknown")[:7]
    dirty = tags.get("git_dirty") == "true"
    name = f"{label}@{commit}{'+dirty' if dirty else ''}-{variant}"
    return f"{name}-{record_id[:6]}" if dirty else name


def uncommitted(tags: Mapping[str, str]) -> list[str]:
    """Why the run's inputs are not known to be committed (empty: they are): a dirty git workspace, or a
    provenance other than clean (:mod:`~edgeproof.tracking.provenance`: untracked inputs, ``dvc status``).
    Such a run is logged, but registers no model version and moves no alias: a release record must
    name a commit its figures come from."""
    blockers = []
    if tags.get("git_dirty") != "false":
        blockers.append(f"git workspace dirty: {tags.get('git_dirty', 'unknown')}")
    if tags.get("provenance") != "clean":
        blockers.append(f"provenance {tags.get('provenance') or 'unknown'}")
    return blockers


# what keeps a run from registering -> what would make a run register: (the reason's head, the advice). A hand
# run registers nothing whatever is committed, so "commit them" is advice for uncommitted inputs only.
_OLDER_HAND_RUN = (
    "an older hand-gated record",
    "an older record of a hand run never registers, whatever is committed now; a run of the gate stage with "
    "--release reports/release.json, as dvc.yaml runs it (`dvc repro gate`), does (docs/experiments.md)",
)
_HAND_RUN = (
    "a hand-gated run",
    "a hand run (--model/--eval/--bench) never registers, whatever is committed: run the gate stage with "
    "--release reports/release.json, as dvc.yaml does (`dvc repro gate`), on committed inputs (docs/experiments.md)",
)
_UNCOMMITTED = (
    "inputs not committed",
    "only a run of committed inputs does: commit them and run the gate stage again (docs/experiments.md)",
)


def _blocker_kind(tags: Mapping[str, str]) -> tuple[str, str]:
    """Which of the reasons above keeps the run from registering: a hand run's provenance says so first."""
    said = tags.get("provenance") or ""
    if said.startswith("not clean: " + OLDER_HAND_RUN):  # record_check's hold on an older record
        return _OLDER_HAND_RUN
    if said.startswith("not clean: " + HAND_RUN):  # release/gating's not_chosen, put first by provenance()
        return _HAND_RUN
    return _UNCOMMITTED


def registers(tags: Mapping[str, str], passed: object) -> bool:
    """Whether the run registers its file: a committed run (:func:`uncommitted`) that passed creates its
    file's version (once per sha256) or, the file registered already, moves the alias it earned
    (:func:`alias_for`) onto that version. Any other run's verdict only joins the history of its file's
    version: it registers nothing, so it is never said to, nor tagged ``registered_model_version``."""
    return passed is True and not uncommitted(tags)


def not_registered_reason(tags: Mapping[str, str]) -> str:
    """Why the run registers no version of its file and moves no alias (empty: its inputs are committed,
    :func:`uncommitted`), as its ``not_registered_because`` tag says it: headed ``a hand-gated run`` (or ``an
    older hand-gated record``) where committing would not make it register, else ``inputs not committed``."""
    blockers = uncommitted(tags)
    return (_blocker_kind(tags)[0] + ": " + "; ".join(blockers))[:5000] if blockers else ""


def not_registered_advice(reason: str) -> str:
    """What would make a run register, for a :func:`not_registered_reason` (the sender's warning says it)."""
    return next((advice for head, advice in (_OLDER_HAND_RUN, _HAND_RUN) if reason.startswith(head)), _UNCOMMITTED[1])


def champion_blockers(tags: Mapping[str, str], release_branches: Iterable[str]) -> list[str]:
    """Why a passing run cannot move the champion alias (empty: it can): it must be a committed
    (:func:`uncommitted`), non-experiment, non-pull-request run on a release branch."""
    blockers = []
    if tags.get("branch") not in set(release_branches):
        blockers.append(f"branch {tags.get('branch') or '(detached)'} is not a release branch")
    if tags.get("dvc_experiment"):
        blockers.append(f"DVC experiment {tags['dvc_experiment']}")
    if tags.get("pull_request") == "true":
        blockers.append("pull request")
    return blockers + uncommitted(tags)


def alias_for(
    tags: Mapping[str, str], passed: bool, candidate: str, champion: str, release_branches: Iterable[str]
) -> str:
    """The alias a model earns: none when it failed or its inputs are not committed (:func:`uncommitted`);
    ``champion`` for a non-experiment, non-pull-request run on a release branch (:func:`champion_blockers`);
    ``candidate`` otherwise."""
    if not passed or uncommitted(tags):
        return ""
    return candidate if champion_blockers(tags, release_branches) else champion


def alias_notes(
    tags: Mapping[str, str], passed: bool, alias: str, candidate: str, release_branches: Iterable[str]
) -> dict[str, str]:
    """Run tags saying why a passing run earned less than ``champion``: ``not_registered_because`` (its
    inputs are not committed: no version registered, no alias moved), ``not_champion_because`` (``candidate``)."""
    if passed and uncommitted(tags):
        return {"not_registered_because": not_registered_reason(tags)}
    if alias == candidate:
        return {"not_champion_because": "; ".join(champion_blockers(tags, release_branches))[:5000]}
    return {}


def stage_seconds(
    notes: Path | None, start_ms: int, end_ms: int, current: str, current_start_ms: int | None
) -> dict[str, float]:
    """Seconds each stage process of this repro took, as it noted (``notes``: the repro's folder, see
    :func:`~edgeproof.stage_clock.note_stage_time`), in the order they ran; the recording stage
    ``current`` from its process start to ``end_ms``. A stage whose outputs DVC restored ran no
    process and is not listed (the outputs' new times had made a 15-minute training's
    ``time_s.train`` 3 s). DVC's own time between stages is in none: they add up to at most the
    run's duration."""
    spans = {}
    for path in sorted(notes.glob("*.json")) if notes is not None and notes.is_dir() else []:
        try:
            note = json.loads(path.read_text())
            begin, end = int(note["start_ms"]), int(note["end_ms"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if path.stem != current and start_ms <= begin <= end <= end_ms:
            spans[path.stem] = (begin, end)
    if current_start_ms is not None and start_ms <= current_start_ms <= end_ms:
        spans[current] = (current_start_ms, end_ms)
    ordered = sorted(spans.items(), key=lambda item: item[1])
    return {stage: round((end - begin) / 1000, 3) for stage, (begin, end) in ordered}


def span_ms(paths: Iterable[Path | None], started_ms: int | None = None, now_ms: int | None = None) -> dict[str, Any]:
    """``start_ms``/``end_ms`` of the run: from when the ``dvc repro``/``dvc exp run`` that produced
    it began (``started_ms``, see :func:`repro_started_ms`) to its newest output (the gate verdict).
    Without a DVC process (a stage run by hand), from the oldest of ``paths`` instead, which may
    cover time between two partial reruns: ``start_source`` says which.

    No time is later than ``now_ms`` (this process's clock, by default): a file whose mtime lies ahead
    of it (a clock stepped back, files copied with the times of a machine running ahead) counts as
    written now, with a warning naming it. Its future end had the record refused as edited, then
    taking ``champion`` back from newer records once the clock caught up."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    stamped = [(int(p.stat().st_mtime * 1000), p) for p in paths if p is not None and p.exists()]
    if not stamped:
        return {}
    for ms, path in stamped:
        if ms > now:
            log.warning("%s: modified %.1f s later than now by this machine's clock; the run's times count it as "
                        "written now", path, (ms - now) / 1000)  # fmt: skip
    times = [min(ms, now) for ms, _ in stamped]
    end = max(times)
    if started_ms is not None and started_ms <= end:
        return {"start_ms": started_ms, "end_ms": end, "start_source": "dvc process"}
    return {"start_ms": min(times), "end_ms": end, "start_source": "oldest output"}
