"""Where and when a pipeline run happened: git state, branch or DVC experiment, run name, times,
and which registry alias a passing model earns (no MLflow import here)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


def champion_blockers(tags: dict[str, str], release_branches: Iterable[str]) -> list[str]:
    """Why a passing run cannot move the champion alias (empty: it can): it must be a clean
    (:mod:`~edgeproof.tracking.provenance`), non-experiment, non-pull-request run on a release branch."""
    blockers = []
    if tags.get("branch") not in set(release_branches):
        blockers.append(f"branch {tags.get('branch') or '(detached)'} is not a release branch")
    if tags.get("dvc_experiment"):
        blockers.append(f"DVC experiment {tags['dvc_experiment']}")
    if tags.get("pull_request") == "true":
        blockers.append("pull request")
    if tags.get("git_dirty") != "false":
        blockers.append(f"git workspace dirty: {tags.get('git_dirty', 'unknown')}")
    if tags.get("provenance") != "clean":
        blockers.append(f"provenance {tags.get('provenance') or 'unknown'}")
    return blockers


def alias_for(
    tags: dict[str, str], passed: bool, candidate: str, champion: str, release_branches: Iterable[str]
) -> str:
    """The alias a model earns: none when it failed; ``champion`` for a clean, committed,
    non-experiment, non-pull-request run on a release branch (:func:`champion_blockers`);
    ``candidate`` otherwise."""
    if not passed:
        return ""
    return candidate if champion_blockers(tags, release_branches) else champion


def _proc_start_ms(pid: int) -> int | None:
    """When process ``pid`` started (Linux ``/proc``: clock ticks after boot, plus the boot time)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        lines = Path("/proc/stat").read_text().splitlines()
        boot = next(int(line.split()[1]) for line in lines if line.startswith("btime"))
    except (OSError, IndexError, StopIteration, ValueError):
        return None
    return int((boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")) * 1000)  # field 22 of stat: starttime


def _is_dvc_run(argv: list[str]) -> bool:
    names = [Path(a).name for a in argv]
    return "dvc" in names and any(a in ("repro", "exp", "exec-run", "queue") for a in names[names.index("dvc") + 1 :])


def repro_started_ms(max_depth: int = 12) -> int | None:
    """When the ``dvc repro`` / ``dvc exp run`` (or queue worker) running this process began: the
    start time of the nearest ancestor process whose command line is one; ``None`` when there is
    none (the stage run by hand) or no ``/proc`` (not Linux)."""
    pid = os.getppid()
    for _ in range(max_depth):
        if pid <= 1:
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None
        if _is_dvc_run([a for a in argv if a]):
            return _proc_start_ms(pid)
        pid = parent
    return None


def newest_mtime_ms(path: Path) -> int | None:
    """The newest modification time of ``path`` or of any file under it (ms), ``None`` if missing."""
    if not path.exists():
        return None
    times = [path.stat().st_mtime] + ([p.stat().st_mtime for p in path.rglob("*")] if path.is_dir() else [])
    return int(max(times) * 1000)


def stage_seconds(stage_outs: dict[str, list[Path]], start_ms: int, end_ms: int, current: str) -> dict[str, float]:
    """Seconds each stage that ran in this repro took: stages whose newest output is newer than
    ``start_ms``, in the order they finished, each from the previous one's end (or ``start_ms``) to
    its own newest output; the recording stage ``current`` ends at ``end_ms``. DVC runs
    stages one at a time, so these add up to the run's duration; DVC records no stage times, so this
    is what the outputs' times say (a stage's last output may be written before its process ends)."""
    ends = {current: end_ms}
    for stage, outs in stage_outs.items():
        if stage == current:
            continue
        times = [t for t in (newest_mtime_ms(p) for p in outs) if t is not None]
        if times and max(times) >= start_ms:
            ends[stage] = min(max(times), end_ms)
    out, previous = {}, start_ms
    for stage, end in sorted(ends.items(), key=lambda item: item[1]):
        out[stage], previous = round((end - previous) / 1000, 3), end
    return out


def span_ms(paths: Iterable[Path | None], started_ms: int | None = None) -> dict[str, Any]:
    """``start_ms``/``end_ms`` of the run: from when the ``dvc repro``/``dvc exp run`` that produced
    it began (``started_ms``, see :func:`repro_started_ms`) to its newest output (the gate verdict).
    Without a DVC process (a stage run by hand), from the oldest of ``paths`` instead, which may
    cover time between two partial reruns: ``start_source`` says which."""
    times = [int(p.stat().st_mtime * 1000) for p in paths if p is not None and p.exists()]
    if not times:
        return {}
    end = max(times)
    if started_ms is not None and started_ms <= end:
        return {"start_ms": started_ms, "end_ms": end, "start_source": "dvc process"}
    return {"start_ms": min(times), "end_ms": end, "start_source": "oldest output"}
