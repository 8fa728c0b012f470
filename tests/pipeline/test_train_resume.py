"""Interrupting training and running again resumes (or restarts cleanly) and never leaves a bad model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from edgeproof.training.checkpoint import load_checkpoint_dict
from tests.pipeline.repo_copy import env_for, make_repo, run

pytestmark = pytest.mark.pipeline

TRAIN = [
    sys.executable,
    "-m",
    "stages.train",
    "--data",
    "data/prepared",
    "--model",
    "models/best.pt",
    "--metrics",
    "metrics/train.json",
    "--curve",
    "plots/train/curve.csv",
]


def _epochs_done(state) -> int:
    csvs = list((state / "train").glob("*/results.csv"))
    return max((len(p.read_text().splitlines()) - 1 for p in csvs), default=0)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = make_repo(tmp_path_factory.mktemp("resume") / "repo", {"train": {"epochs": 4}})
    proc = run([sys.executable, "-m", "stages.data", "--out", "data/prepared", "--metrics", "metrics/data.json"], root)
    assert proc.returncode == 0, proc.stderr
    return root


def _kill_between_saves(proc: subprocess.Popen, state) -> dict:
    """SIGKILL the training at a moment its ``last.pt`` is whole, and return that checkpoint. ultralytics
    writes ``last.pt`` in place right after an epoch's row reaches results.csv, so a kill on that row could
    land mid-write (it did, in a full suite run: an empty file); a torn checkpoint is its own test below.
    The process group is stopped while the file is read, so it cannot change between the read and the kill."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "training finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGSTOP)
        try:
            ckpt = load_checkpoint_dict(next((state / "train").glob("*/weights/last.pt")), state)
        except (StopIteration, ValueError):  # not written yet, or caught mid-write: let it finish
            os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.3)
            continue
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return ckpt
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("no whole last.pt within 120 s of the second epoch")


def test_kill_mid_training_then_resume(repo):
    state = repo / ".edgeproof"
    proc = subprocess.Popen(
        TRAIN, cwd=repo, env=env_for(repo), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while _epochs_done(state) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "training finished before it could be interrupted"
    ckpt = _kill_between_saves(proc, state)
    assert not (repo / "models/best.pt").exists()  # no output from an unfinished run
    assert not (repo / "metrics/train.json").exists()
    # what is resumed is a full trainer checkpoint (optimizer state, epoch >= 0), and it loads restricted
    # (weights_only, ultralytics' allow-list): the stage resumes it with exactly that loader (issue 12.1)
    assert ckpt["optimizer"] is not None and ckpt["epoch"] >= 0

    done = run(TRAIN, repo)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((repo / "metrics/train.json").read_text())
    assert metrics["resumed"] is True
    assert metrics["epochs"] == 4
    epochs = [line.split(",")[0] for line in (repo / "plots/train/curve.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2", "3", "4"]
    assert (repo / "models/best.pt").stat().st_size > 1_000_000


def test_torn_checkpoint_restarts_from_scratch(repo):
    run_dir = next(p for p in (repo / ".edgeproof" / "train").iterdir() if (p / "weights").exists())
    (run_dir / "edgeproof_done.json").unlink()
    (run_dir / "weights" / "last.pt").write_bytes(b"\x80torn checkpoint")
    done = run(TRAIN, repo)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "unreadable" in done.stderr
    metrics = json.loads((repo / "metrics/train.json").read_text())
    assert metrics["resumed"] is False and metrics["epochs"] == 4


def test_kill_after_the_last_epoch_counts_as_finished(repo):
    """ultralytics rewrites last.pt with epoch -1 when the loop ends and refuses to resume it: a
    kill during the final validation must not leave a run that can never complete."""
    run_dir = next(p for p in (repo / ".edgeproof" / "train").iterdir() if (p / "weights").exists())
    (run_dir / "edgeproof_done.json").unlink()
    (repo / "models/best.pt").unlink()
    done = run(TRAIN, repo)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "had finished before the interruption" in done.stderr
    assert json.loads((repo / "metrics/train.json").read_text())["epochs"] == 4
    assert (repo / "models/best.pt").exists()


def test_finished_run_is_reused_not_retrained(repo):
    before = (repo / "models/best.pt").read_bytes()
    (repo / "models/best.pt").unlink()
    done = run(TRAIN, repo)
    assert done.returncode == 0
    assert "already finished; reusing it" in done.stderr
    assert (repo / "models/best.pt").read_bytes() == before
