"""Faults injected into a running stage: the data stage killed (SIGKILL, SIGTERM) while it writes
``data/prepared`` (``train``, ``export`` and ``optimize`` interrupted are in :mod:`.faults_stages`,
``evaluate`` killed while writing its outputs in :mod:`.faults_eval`).
Survived means: the previous complete dataset is still there, whole, right after the kill, and the
next run finishes with exactly what an uninterrupted run gives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.data.builders import tree_state

from reliability.faults_stages import signal_when, start
from reliability.runner import PROJECT
from reliability.sandbox import write_params

_SYNTHETIC = {"n_train": 600, "n_val": 10, "image_size": 96}
_ARGV = ["--out", "data/prepared", "--metrics", "metrics/data.json"]  # the dvc.yaml command (concurrency case)


def _start(repo: Path) -> subprocess.Popen[bytes]:
    """The data stage exactly as dvc.yaml runs it, in its own process group."""
    return start(repo, "data")


def run_data_stage(repo: Path, seed: int) -> tuple[int, dict[str, Any]]:
    """Run the data stage to the end on a synthetic dataset; its exit code and ``data/prepared``'s state."""
    write_params(repo, {"seed": seed, "synthetic": _SYNTHETIC})
    proc = _start(repo)
    proc.communicate(timeout=600)
    return proc.returncode, tree_state(repo / "data" / "prepared")


def _kill_mid_write(repo: Path, sig: int, timeout: float = 120.0) -> bool:
    """Start the data stage and send ``sig`` once its temp folder holds some images; True if it was mid-write."""

    def mid_write() -> bool:
        temps = [p for p in (repo / "data").glob(".prepared.*") if p.is_dir()]
        return any(sum(1 for _ in (t / "images" / "train").glob("*")) >= 60 for t in temps if (t / "images").is_dir())

    return signal_when(_start(repo), sig, mid_write, timeout)


def data_stage_interrupted(workdir: Path, sig: int, reference: dict[str, Any]) -> dict[str, Any]:
    """One fault case: complete run (seed 0), interrupted run (seed 1), then the rerun (seed 1)."""
    name = f"{signal.Signals(sig).name.lower()}-data-stage"
    repo = workdir / name / "repo"
    repo.mkdir(parents=True)
    code, before = run_data_stage(repo, seed=0)
    if code != 0:
        return _result(name, "failed", f"the first, uninterrupted run exited {code}")
    write_params(repo, {"seed": 1, "synthetic": _SYNTHETIC})
    if not _kill_mid_write(repo, sig):
        return _result(name, "not_injected", "the stage finished before it could be interrupted")
    if tree_state(repo / "data" / "prepared") != before:
        return _result(name, "failed", "after the kill, data/prepared is not the previous complete dataset")
    code, after = run_data_stage(repo, seed=1)
    leftovers = [p.name for p in (repo / "data").glob(".prepared.*")]
    if leftovers:
        return _result(name, "failed", f"the killed run's temp trees are still there after the rerun: {leftovers}")
    if code != 0 or after != reference:
        return _result(
            name, "failed", f"the rerun exited {code}; identical to an uninterrupted run: {after == reference}"
        )
    detail = (
        f"{signal.Signals(sig).name} while writing data/prepared: the previous dataset stayed whole "
        f"({len(before)} files); the rerun removed the killed run's temp tree and equals an uninterrupted run "
        f"({len(after)} files, byte for byte)"
    )
    return _result(name, "survived", detail)


def _result(name: str, outcome: str, detail: str) -> dict[str, Any]:
    return {"kind": "fault", "name": name, "outcome": outcome, "detail": detail, "data_lost": 0}


def run_faults(workdir: Path) -> list[dict[str, Any]]:
    """Every fault case; the uninterrupted reference run is made once."""
    reference_repo = workdir / "reference" / "repo"
    reference_repo.mkdir(parents=True)
    code, reference = run_data_stage(reference_repo, seed=1)
    if code != 0:
        raise RuntimeError(f"the reference data stage run failed (exit {code})")
    from reliability.faults_eval import evaluate_interrupted
    from reliability.faults_stages import run_stage_faults

    results = [data_stage_interrupted(workdir, sig, reference) for sig in (signal.SIGKILL, signal.SIGTERM)]
    results += run_stage_faults(workdir / "stages")
    return [*results, evaluate_interrupted(workdir), second_repro_refused(workdir)]


def _dvc(repo: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT / "src"), str(PROJECT)])}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True, **kw)


def _dvc_repo(repo: Path) -> None:
    """A git + DVC repo whose one stage is edgeproof's data stage (a few seconds of work)."""
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc(repo, "init", "-q", check=True)
    _dvc(repo, "config", "core.analytics", "false", check=True)
    write_params(repo, {"seed": 0, "synthetic": _SYNTHETIC})
    cmd = "python -m stages.data " + " ".join(_ARGV)
    stage = ["-n", "data", "-p", "data", "-o", "data/prepared", "-M", "metrics/data.json", cmd]
    _dvc(repo, "stage", "add", "-q", *stage, check=True)


def second_repro_refused(workdir: Path) -> dict[str, Any]:
    """A second ``dvc repro`` in a workspace where one is running fails fast, and the first one finishes."""
    name = "second-dvc-repro"
    repo = workdir / name / "repo"
    _dvc_repo(repo)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT / "src"), str(PROJECT)])}
    cmd = [sys.executable, "-m", "dvc", "repro", "-q"]
    first = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not list((repo / "data").glob(".prepared.*")) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.02)
    start = time.monotonic()
    second = _dvc(repo, "repro", timeout=120)
    waited = time.monotonic() - start
    first_out = first.communicate(timeout=600)[0].decode()
    message = (second.stdout + second.stderr).strip().splitlines()
    lock_line = next((line for line in message if "lock" in line.lower()), "")
    if second.returncode == 0 or not lock_line:
        return _result(name, "failed", f"the second repro exited {second.returncode}: {message[-1:]}")
    if first.returncode != 0:
        return _result(name, "failed", f"the first repro failed after the second was refused: {first_out[-300:]}")
    lock_line = lock_line.replace(f"{repo}{os.sep}", "").strip()[:140]
    return _result(name, "survived", f"refused in {waited:.1f} s ({lock_line}); the first repro finished normally")
