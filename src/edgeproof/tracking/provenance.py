"""Whether a run's numbers come from committed code and data: only a clean run registers a model or moves an alias.

Clean means both:

- **git**: no modified, staged or *untracked* file under the paths the pipeline reads (the ``deps``
  of ``dvc.yaml``'s stages and ``params.yaml``; the whole checkout without a ``dvc.yaml``), its own
  outputs (``dvc.lock``, ``metrics/``, ``reports/``, ``plots/``) aside. ``git status
  --untracked-files=no`` missed a dataset dropped under ``data/sources``.
- **DVC**: ``dvc status`` of the stages that produced the release (the recording stage's upstream,
  with the ``.dvc`` files they read) is empty: a DVC-tracked dataset changed without ``dvc add``, or
  a stage whose code changed after it ran, is not clean.
- **the files judged**: every file the record's verdict and figures come from (the model, its
  evaluation and benchmark, ``release.json``; ``judged``) is the pipeline's own: in a DVC project, an
  output of a stage whose status was checked above (so its hash is the one ``dvc.lock`` holds); outside
  a DVC project (no ``.dvc/`` folder or no ``dvc.yaml``: nothing to check outputs against), a file
  committed in git. A gate run by hand on an edited copy kept in ``/tmp`` (or any
  file no stage wrote) judged figures no commit holds, and had registered them as a clean ``champion``.

The recording stage runs inside ``dvc repro``/``dvc exp run``, which holds the repository lock, so
the DVC check calls DVC's unlocked status helper (read-only: it hashes files, using DVC's hash cache).
A check that cannot run (no git, DVC failing) leaves the run "unknown", which is not clean either.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from edgeproof.tracking.context import PIPELINE_OUTPUTS

log = logging.getLogger(__name__)

CLEAN = "clean"
_MAX_NAMED = 5


def _git(cwd: Path, *args: str) -> str | None:
    """Git's stdout as is (porcelain lines start with a space: not stripped), ``None`` on failure."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def pipeline_inputs(root: Path) -> list[str]:
    """The paths the pipeline reads (``dvc.yaml`` deps, params files and ``dvc.yaml`` itself), or
    ``["."]`` when there is no readable ``dvc.yaml``."""
    try:
        stages = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return ["."]
    paths = {"dvc.yaml", "params.yaml"}
    for body in stages.values() if isinstance(stages, dict) else []:
        for dep in (body or {}).get("deps") or []:
            if isinstance(dep, str):
                paths.add(dep)
        for entry in (body or {}).get("params") or []:
            if isinstance(entry, dict):
                paths.update(str(k) for k in entry)
    return sorted(paths)


def git_changes(cwd: Path, paths: Iterable[str]) -> list[str] | None:
    """Modified, staged and untracked (not ignored) files under ``paths``, the pipeline's outputs
    aside; ``None`` outside git."""
    excluded = [f":!{p}" for p in PIPELINE_OUTPUTS]
    out = _git(cwd, "status", "--porcelain", "--untracked-files=all", "--", *paths, *excluded)
    if out is None:
        return None
    return [f"{'untracked' if line[:2] == '??' else 'modified'}: {line[3:]}" for line in out.splitlines() if line]


def dvc_changes(root: Path, stage: str) -> tuple[list[str], list[Path] | None]:
    """What ``dvc status`` reports for the stages upstream of ``stage`` (``stage`` itself and
    downstream ones left out: they are running or have not run yet), and the outputs of those stages
    (whose hashes therefore match ``dvc.lock`` when nothing is reported; ``None`` without ``dvc.yaml``).
    ``[], None`` without a DVC project."""
    if not (root / ".dvc").is_dir():
        return [], None
    from dvc.repo import Repo
    from dvc.stage import Stage

    # Stage.status asserts the repository lock, which the running `dvc repro` holds: its undecorated
    # body reads the same (lock-free, read-only but for DVC's hash cache)
    unlocked = Stage.status.__wrapped__
    status: dict[str, Any] = {}
    outs: list[Path] = []
    with Repo(str(root)) as repo:
        stages = [s for s in repo.index.stages if getattr(s, "name", None) == stage and s.path_in_repo == "dvc.yaml"]
        pairs = repo.stage.collect_granular(f"{root / 'dvc.yaml'}:{stage}", with_deps=True) if stages else []
        for item, info in pairs or [(s, None) for s in repo.index.stages]:
            if item in stages:
                continue  # the recording stage itself is running now
            name = item.name if item.path_in_repo == "dvc.yaml" else item.path_in_repo
            outs += [_path(out.fs_path) for out in item.outs]
            for change in unlocked(item, check_updates=False, filter_info=info).values():
                status[name] = change
    reasons = [f"dvc status: {name} {_summary(changes)}" for name, changes in sorted(status.items())]
    return reasons, outs if (root / "dvc.yaml").is_file() else None


def _path(path: str | Path) -> Path:
    """``path`` absolute, its folder's symlinks resolved but not its own (a DVC output may be a link into
    the cache): comparable with the git top level, which git gives with symlinks resolved."""
    absolute = Path(path).absolute()
    return absolute.parent.resolve() / absolute.name


def unproduced(root: Path, judged: Iterable[Path], outs: list[Path] | None) -> list[str]:
    """Why files the record judged are not the pipeline's own (empty: they all are): outside the checkout,
    no output of a checked stage (``outs``), or, without a DVC pipeline (``outs`` None), not committed."""
    files = {_path(p): p for p in judged if p.is_file()}
    reasons = [f"judged file outside the repository: {p}" for f, p in files.items() if not f.is_relative_to(root)]
    inside = [f for f in files if f.is_relative_to(root)]
    if outs is not None:
        return reasons + [
            f"judged file is no output of the pipeline's stages: {f.relative_to(root)}"
            for f in inside
            if not any(f == out or f.is_relative_to(out) for out in outs)
        ]
    relative = [str(f.relative_to(root)) for f in inside]
    out = _git(root, "status", "--porcelain", "--ignored", "--untracked-files=all", "--", *relative) if inside else ""
    words = {"??": "untracked", "!!": "ignored by git"}
    for line in (out or "").splitlines():
        reasons.append(f"judged file not committed ({words.get(line[:2], 'modified')}): {line[3:]}")
    return reasons + (["judged files: git status failed"] if out is None else [])


def _summary(changes: Any) -> str:
    words = []
    for change in changes if isinstance(changes, list) else [changes]:
        if isinstance(change, dict):
            for kind, what in change.items():
                words.append(
                    f"{kind} {', '.join(f'{k} {v}' for k, v in what.items())}" if isinstance(what, dict) else kind
                )
        else:
            words.append(str(change))
    return "; ".join(words) or "changed"


def provenance(cwd: Path, stage: str, judged: Iterable[Path] = (), not_chosen: str | None = None) -> str:
    """``"clean"``, or why not: ``"not clean: untracked: data/sources/x.png; ..."`` / ``"unknown: ..."``.
    ``judged``: the files the record's verdict and figures come from (:func:`unproduced`); ``not_chosen``:
    why the gated file is not the pipeline's release choice (a reason of its own, whatever git and DVC say)."""
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top is None:
        return "unknown: not a git checkout"
    root = _path(top.strip())
    reasons = [not_chosen] if not_chosen else []
    reasons += git_changes(root, pipeline_inputs(root)) or []
    try:
        changed, outs = dvc_changes(root, stage)
    except Exception as exc:  # a broken DVC project must not pass as clean, nor stop the record
        log.warning("dvc status could not be checked: %s: %s", type(exc).__name__, exc)
        return f"unknown: dvc status failed ({type(exc).__name__})"
    reasons += changed + unproduced(root, judged, outs)
    if not reasons:
        return CLEAN
    more = f"; and {len(reasons) - _MAX_NAMED} more" if len(reasons) > _MAX_NAMED else ""
    return "not clean: " + "; ".join(reasons[:_MAX_NAMED]) + more
