"""Two queued experiments run in parallel (`dvc queue start -j 2`) both finish, train once, touch no user file.

Both share the training fingerprint (they differ in a gate threshold), so both queue workers want the
same run folder at once: one trains while the other waits on the run's lock, then reuses it.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.data.builders import tree_state
from tests.pipeline.repo_copy import dvc, make_repo

pytestmark = pytest.mark.pipeline


def _user_files(root):
    return {"params.yaml": (root / "params.yaml").read_bytes(), **tree_state(root / "data" / "sources")}


def _wait_for_queue(root, timeout: float = 1200.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = dvc(root, "queue", "status").stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        time.sleep(5)
    raise AssertionError(f"the queue did not finish in {timeout} s:\n{status}")


def test_two_queued_experiments_with_one_fingerprint(tmp_path):
    root = make_repo(tmp_path / "repo")
    before = _user_files(root)
    for fps in ("1.5", "2.0"):
        proc = dvc(root, "exp", "run", "--queue", "-S", f"profiles.cpu-ci.gate.min_fps={fps}")
        assert proc.returncode == 0, proc.stderr[-2000:]
    try:
        assert dvc(root, "queue", "start", "-j", "2").returncode == 0
        status = _wait_for_queue(root)
    finally:
        dvc(root, "queue", "stop", "--kill")
    assert status.count("Success") == 2, status  # each ran the whole pipeline, gate included
    tasks = [line.split()[0] for line in status.splitlines() if "Success" in line]
    logs = [dvc(root, "queue", "logs", task).stdout for task in tasks]
    reused = [log for log in logs if "already finished; reusing it" in log]
    assert len(reused) == 1, [log[-2000:] for log in logs]  # one trained, the other waited, then reused
    finished = list((root / ".edgeproof" / "train").glob("*/edgeproof_done.json"))
    assert len(finished) == 1, finished  # one training for both experiments
    summary = json.loads(finished[0].read_text())
    assert summary["resumed"] is False
    assert _user_files(root) == before
