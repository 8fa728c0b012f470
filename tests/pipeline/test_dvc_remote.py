"""The team path with a real DVC remote (issue 17.5): CI pulls the trained model, it never retrains.

Training is not bit-identical across machines, so a build job that retrains ships weights nobody
evaluated. Here one clone runs the pipeline on tiny params, commits what DVC projects commit
(dvc.lock and the ``cache: false`` reports) and ``dvc push``es to a local-directory remote. A fresh
``git clone`` then runs ``ci/build.sh`` exactly as the hosted build job does (``dvc pull``, then
``dvc repro bundle``): no stage runs, train least of all, and the bundle's model is byte for byte
the one the first clone released.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline.repo_copy import dvc, env_for, make_repo

pytestmark = pytest.mark.pipeline
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def _git(root: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    base = tmp_path_factory.mktemp("remote")
    first = make_repo(base / "first")
    remote = base / "dvc-remote"
    assert dvc(first, "remote", "add", "-d", "team", str(remote)).returncode == 0
    proc = dvc(first, "repro", "bundle")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _git(first, "add", "-A")
    _git(first, "commit", "-qm", "pipeline outputs")
    proc = dvc(first, "push")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    second = base / "second"
    subprocess.run(["git", "clone", "-q", str(first), str(second)], check=True)
    assert not (second / "models" / "best.pt").exists()  # weights travel through the remote, not git
    env = env_for(second)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env["EDGEPROOF_SKIP_SETUP"] = "1"
    build = subprocess.run(["bash", "ci/build.sh"], cwd=second, env=env, capture_output=True, text=True, timeout=900)
    return {"first": first, "second": second, "remote": remote, "build": build}


def test_the_fresh_clone_trains_nothing_and_ships_the_released_model(team):
    build = team["build"]
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-4000:]
    assert "Running stage" not in log, log[-4000:]  # dvc repro ran no stage: everything came from the remote
    assert (team["second"] / "models" / "best.pt").exists()
    release = json.loads((team["first"] / "reports" / "release.json").read_text())
    manifest = json.loads((team["second"] / "release" / "bundle" / "manifest.json").read_text())
    for profile, chosen in release["profiles"].items():
        assert manifest["profiles"][profile]["sha256"] == chosen["sha256"], profile
    shipped = json.loads((team["second"] / "ci-out" / "release.json").read_text())
    assert shipped == release  # the gate job's release record is this build's


def test_without_the_remote_the_clone_would_have_to_train(team, tmp_path):
    """The control: the same clone with an empty remote reruns train, so the check above can fail."""
    clone = tmp_path / "third"
    subprocess.run(["git", "clone", "-q", str(team["first"]), str(clone)], check=True)
    assert dvc(clone, "remote", "modify", "team", "url", str(tmp_path / "empty")).returncode == 0
    proc = dvc(clone, "status", "train")
    assert proc.returncode == 0 and "deleted" in proc.stdout and "models/best.pt" in proc.stdout, proc.stdout


def test_a_headline_that_is_not_this_builds_is_left_out_of_the_prs_metrics_diff(team):
    """The build stops at the bundle, so the committed metrics/headline.json is whatever was committed (here the
    first clone never ran the gate): `dvc status gate` says so, and the diff the PR comment quotes leaves it out."""
    second = team["second"]
    assert dvc(second, "status", "gate", "-q").returncode != 0
    env = {**env_for(second), "EDGEPROOF_SKIP_SETUP": "1", "EDGEPROOF_DIFF_BASE": "HEAD"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    build = subprocess.run(["bash", "ci/build.sh"], cwd=second, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, (build.stdout + build.stderr)[-4000:]
    rows = (second / "ci-out" / "metrics-diff.md").read_text().splitlines()
    headline = [r for r in rows if r.startswith("| metrics/headline.json")]
    assert headline == ["| metrics/headline.json | left out: dvc status gate says it does not match this build | | | |"]
