"""Faults injected into ``train`` (mid-epoch), ``export`` and ``optimize``: SIGTERM or SIGKILL once the
stage is under way, then the run ``dvc repro`` would make next.

Each stage runs exactly as ``dvc.yaml`` states it (its ``cmd``; its ``outs``, ``metrics`` and ``plots``
are what it must produce), in a sandbox holding what the stages before it produced, with tiny params.
Before a stage runs its outputs are absent, as DVC leaves them. Survived means:

- right after the kill, every declared output is either absent or byte-identical to an uninterrupted
  run's (JSON: equal but for timings and the ``resumed`` flag): no half-written file sits where a later
  stage or ``dvc commit`` would take it for the output;
- the rerun exits 0 and its outputs equal the uninterrupted run's byte for byte (these stages are
  deterministic on one machine, a training run from scratch included), except for a training that
  *resumed* from ``last.pt``: that cannot be bit-identical (see :data:`TOLERANCE_NOTE`), so its curve
  must list every epoch once and stay within :data:`TOLERANCE`, and its ``best.pt`` must load.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from reliability.runner import PROJECT
from reliability.sandbox import write_params

STAGES = ("data", "train", "export", "optimize")
TINY = {
    "train": {"epochs": 4, "imgsz": 32, "batch": 8, "workers": 0, "close_mosaic": 1},
    "benchmark": {"warmup": 1, "runs": 3, "e2e_images": 2},
}
_SYNTHETIC = {"n_train": 48, "n_val": 8, "image_size": 64}
_UNSTABLE = {"train_seconds", "resumed", "time"}  # JSON keys / CSV columns: wall-clock time, or how it ran


def _stage(name: str) -> dict[str, Any]:
    return yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"][name]


def declared_outputs(name: str) -> list[str]:
    """Every path ``dvc.yaml`` declares as an output of stage ``name`` (outs, metrics, plots)."""
    spec = _stage(name)
    paths = []
    for key in ("outs", "metrics", "plots"):
        for entry in spec.get(key) or []:
            paths.append(entry if isinstance(entry, str) else next(iter(entry)))
    return paths


def model_arg(name: str) -> str:
    """The ``--model`` path in stage ``name``'s ``dvc.yaml`` command."""
    argv = shlex.split(_stage(name)["cmd"])
    return argv[argv.index("--model") + 1]


def _env(repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT / "src"), str(PROJECT)])
    env["EDGEPROOF_STATE_DIR"] = str(repo / ".edgeproof")
    env["HOME"] = str(repo / ".home")
    return env


def start(repo: Path, name: str) -> subprocess.Popen[bytes]:
    """Start stage ``name``'s ``dvc.yaml`` command in ``repo`` (this interpreter for ``python``)."""
    argv = shlex.split(_stage(name)["cmd"])
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    return subprocess.Popen(
        argv, cwd=repo, env=_env(repo), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def finish(repo: Path, name: str, timeout: float = 600) -> tuple[int, str]:
    """Run stage ``name`` to the end: (exit code, the tail of its log)."""
    proc = start(repo, name)
    err = proc.communicate(timeout=timeout)[1].decode(errors="replace")
    return proc.returncode, err[-800:]


def _files(repo: Path, rel: str) -> list[Path]:
    path = repo / rel
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.is_file() else []


def comparable_content(path: Path) -> str:
    """What a rerun must reproduce of one output: its sha256; JSON/CSV less wall-clock fields ("torn:" if bad)."""
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return "torn:" + hashlib.sha256(path.read_bytes()).hexdigest()
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in _UNSTABLE}
        return json.dumps(data, sort_keys=True)
    if path.suffix == ".csv":  # the training curve: every column but the wall-clock one
        rows = [line.split(",") for line in path.read_text(encoding="utf-8").splitlines()]
        keep = [i for i, name in enumerate(rows[0] if rows else []) if name.strip() not in _UNSTABLE]
        return "\n".join(",".join(row[i] for i in keep if i < len(row)) for row in rows)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outputs_state(repo: Path, name: str) -> dict[str, str]:
    """What stage ``name`` produced in ``repo``: sha256 per file (JSON: its content less timings)."""
    return {
        p.relative_to(repo).as_posix(): comparable_content(p)
        for rel in declared_outputs(name)
        for p in _files(repo, rel)
    }


def reference_repo(root: Path) -> Path:
    """Run every stage of :data:`STAGES` uninterrupted in ``root`` (tiny params); raise if one fails."""
    root.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    params.pop("data", None)
    params.update({k: {**params.get(k, {}), **v} for k, v in TINY.items()})
    params["track"] = {**params.get("track", {}), "enabled": False}
    write_params(root, {"seed": 0, "synthetic": _SYNTHETIC}, **{k: v for k, v in params.items() if k != "track"})
    for name in STAGES:
        code, tail = finish(root, name)
        if code != 0:
            raise RuntimeError(f"the uninterrupted {name} stage failed (exit {code}): {tail}")
    return root


def _copy_before(reference: Path, dest: Path, name: str) -> None:
    """``dest``: the reference sandbox as it was before ``name`` ran (its outputs and training state gone)."""
    shutil.copytree(reference, dest, symlinks=True, ignore=shutil.ignore_patterns(".edgeproof", ".home"))
    for later in STAGES[STAGES.index(name) :]:
        for rel in declared_outputs(later):
            path = dest / rel
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _epochs_done(repo: Path) -> int:
    csvs = list((repo / ".edgeproof" / "train").glob("*/results.csv"))
    return max((len(p.read_text().splitlines()) - 1 for p in csvs), default=0)


def _new_file(repo: Path, before: set[Path]) -> Callable[[], bool]:
    """True once the stage has written a file anywhere in the sandbox outside its state folder."""

    def check() -> bool:
        for path in repo.rglob("*"):
            if path.is_file() and path not in before and ".edgeproof" not in path.parts and ".home" not in path.parts:
                return True
        return False

    return check


def _after(condition: Callable[[], bool], delay: float) -> Callable[[], bool]:
    """True ``delay`` seconds after ``condition()`` first was."""
    since: list[float] = []

    def check() -> bool:
        if not since and condition():
            since.append(time.monotonic())
        return bool(since) and time.monotonic() - since[0] >= delay

    return check


def signal_when(proc: subprocess.Popen[bytes], sig: int, ready: Callable[[], bool], timeout: float = 300) -> bool:
    """Send ``sig`` to ``proc``'s process group (see :func:`start`) once ``ready()``; True if it was still
    running then. A process that finishes or times out first is reaped (killed on time-out): False."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            os.killpg(proc.pid, sig)
            proc.communicate(timeout=120)
            return True
        time.sleep(0.005)
    proc.kill()
    proc.communicate()
    return False


def _interrupt(repo: Path, name: str, sig: int, ready: Callable[[], bool], timeout: float = 300) -> bool:
    """Start ``name`` and send ``sig`` to its process group once ``ready()``; True if it was still running."""
    return signal_when(start(repo, name), sig, ready, timeout)


def stage_interrupted(workdir: Path, reference: Path, name: str, sig: int) -> dict[str, Any]:
    """One fault case: ``name`` interrupted by ``sig`` once under way, checked, then rerun and compared."""
    case = f"{signal.Signals(sig).name.lower()}-{name}"
    repo = workdir / case
    _copy_before(reference, repo, name)
    expected = outputs_state(reference, name)
    if name == "train":  # mid-epoch: a moment after epoch 1's checkpoint (an epoch takes ~0.7 s here)
        when = "in epoch 2 of 4"
        ready = _after(
            lambda: _epochs_done(repo) >= 1 and any((repo / ".edgeproof").glob("train/*/weights/last.pt")), 0.2
        )
    else:
        when = "after it began writing files"
        ready = _new_file(repo, {p for p in repo.rglob("*") if p.is_file()})
    if not _interrupt(repo, name, sig, ready):
        return _result(case, "not_injected", f"{name} finished before it could be interrupted")
    after_kill = outputs_state(repo, name)
    torn = sorted(rel for rel, state in after_kill.items() if expected.get(rel) != state)
    if torn:
        return _result(case, "failed", f"after the kill, outputs that are not the finished ones: {torn}")
    code, tail = finish(repo, name)
    if code != 0:
        return _result(case, "failed", f"the rerun exited {code}: {tail}")
    rerun = outputs_state(repo, name)
    resumed = name == "train" and json.loads((repo / "metrics" / "train.json").read_text(encoding="utf-8"))["resumed"]
    problems = resumed_problems(reference, repo) if resumed else _differ(rerun, expected)
    if problems:
        return _result(case, "failed", f"the rerun's outputs differ from an uninterrupted run's: {problems}")
    same = (
        f"resumed from last.pt; outputs within tolerance of an uninterrupted run's ({TOLERANCE_NOTE})"
        if resumed
        else f"{'restarted (no resumable checkpoint) and ' if name == 'train' else ''}gave {len(rerun)} output "
        "files equal to an uninterrupted run's byte for byte (JSON and the curve: wall-clock times aside)"
    )
    detail = (
        f"{signal.Signals(sig).name} {when}: {len(after_kill)} of {len(expected)} declared output files present "
        f"after the kill, none partial; the rerun {same}{_leftovers(reference, repo)}"
    )
    return _result(case, "survived", detail)


def _differ(got: dict[str, str], want: dict[str, str]) -> list[str]:
    return sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))


TOLERANCE = {"map": 0.05, "loss_rel": 0.10}
TOLERANCE_NOTE = (
    "resumed training is not bit-identical: ultralytics' last.pt keeps the EMA weights in place of the trained "
    "ones, the optimizer state in fp16 and no random state; checked: every epoch once, best.pt a loadable "
    "checkpoint, mAP within 0.05 and losses within 10% per epoch"
)


def _curve(path: Path) -> list[dict[str, float]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    head = [h.strip() for h in lines[0].split(",")]
    return [{h: float(v) for h, v in zip(head, line.split(","), strict=True)} for line in lines[1:]]


def curve_problems(want: list[dict[str, float]], got: list[dict[str, float]]) -> list[str]:
    """Where training curve ``got`` leaves :data:`TOLERANCE` of ``want`` (every epoch once, mAP, losses)."""
    problems = []
    if [r["epoch"] for r in got] != [r["epoch"] for r in want]:
        problems.append(f"epochs {[r['epoch'] for r in got]} instead of {[r['epoch'] for r in want]}")
    for a, b in zip(got, want, strict=False):
        for key in sorted(a.keys() & b.keys()):
            if "loss" in key:
                limit = TOLERANCE["loss_rel"] * abs(b[key]) + 1e-4
            elif key.startswith("map"):
                limit = TOLERANCE["map"]
            else:
                continue
            if abs(a[key] - b[key]) > limit:
                problems.append(f"epoch {int(a['epoch'])} {key} {a[key]} vs {b[key]}")
    return problems


def resumed_problems(reference: Path, repo: Path) -> list[str]:
    """How a resumed training's outputs fall outside :data:`TOLERANCE` of the uninterrupted run's."""
    problems = curve_problems(_curve(reference / "plots/train/curve.csv"), _curve(repo / "plots/train/curve.csv"))
    check = "from edgeproof.training.checkpoint import load_checkpoint_dict as f; import sys; f(sys.argv[1])"
    proc = subprocess.run(
        [sys.executable, "-c", check, "models/best.pt"], cwd=repo, env=_env(repo), capture_output=True, text=True
    )
    if proc.returncode != 0:
        problems.append(f"models/best.pt does not load: {proc.stderr[-300:]}")
    return problems


def _leftovers(reference: Path, repo: Path) -> str:
    """Hidden temp entries the killed run left (never outputs: no declared path, and a rerun ignores them)."""
    ours = {p.relative_to(repo) for p in repo.rglob(".*") if ".edgeproof" not in p.parts and ".home" not in p.parts}
    theirs = {p.relative_to(reference) for p in reference.rglob(".*")}
    left = sorted(str(p) for p in ours - theirs if not any(q in ours - theirs for q in p.parents))
    return f"; temp entries left by the killed process, outside every output: {left}" if left else ""


def _result(name: str, outcome: str, detail: str) -> dict[str, Any]:
    return {"kind": "fault", "name": name, "outcome": outcome, "detail": detail, "data_lost": 0}


def run_stage_faults(workdir: Path, stages: tuple[str, ...] = ("train", "export", "optimize")) -> list[dict[str, Any]]:
    """SIGTERM and SIGKILL for each of ``stages``; the uninterrupted reference pipeline is run once."""
    reference = reference_repo(workdir / "stage-faults-reference")
    return [
        stage_interrupted(workdir, reference, name, sig) for name in stages for sig in (signal.SIGTERM, signal.SIGKILL)
    ]
