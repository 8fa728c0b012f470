"""Only a clean, committed run can become champion (issue 18): git including untracked files under
what the pipeline reads, and ``dvc status`` of the stages that produced the release."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeproof.tracking.context import alias_for
from edgeproof.tracking.provenance import CLEAN, provenance

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
DVC = [sys.executable, "-m", "dvc"]
PIPELINE = """stages:
  prep:
    cmd: python -c "import shutil; shutil.copytree('data/sources', 'prepared')"
    deps:
      - data/sources
      - prep.py
    outs:
      - prepared
  gate:
    cmd: python record.py
    deps:
      - prepared
    outs:
      - verdict.txt:
          cache: false
"""
RECORD = """from pathlib import Path
from edgeproof.tracking.context import repro_started_ms
from edgeproof.tracking.provenance import provenance
Path("verdict.txt").write_text(provenance(Path("."), "gate", [Path("prepared/shapes/a.txt")]))
Path("started.txt").write_text(str(repro_started_ms()))
"""


def sh(cwd: Path, *cmd: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture
def project(tmp_path) -> Path:
    """A git + DVC project: a DVC-tracked dataset under data/sources, a prep stage, a recording stage."""
    sh(tmp_path, *GIT, "init", "-q", "-b", "main")
    sh(tmp_path, *DVC, "init", "-q")
    sh(tmp_path, *DVC, "config", "core.autostage", "false")
    (tmp_path / "data" / "sources" / "shapes").mkdir(parents=True)
    (tmp_path / "data" / "sources" / "shapes" / "a.txt").write_text("one\n")
    (tmp_path / "prep.py").write_text("# the prep stage's code\n")
    (tmp_path / "dvc.yaml").write_text(PIPELINE)
    (tmp_path / "record.py").write_text(RECORD)
    sh(tmp_path, *DVC, "add", "-q", "data/sources/shapes")
    sh(tmp_path, *DVC, "repro", "-q", "prep")
    (tmp_path / ".gitignore").write_text("verdict.txt\nstarted.txt\n")
    sh(tmp_path, *GIT, "add", "-A")
    sh(tmp_path, *GIT, "commit", "-qm", "x")
    return tmp_path


def test_a_committed_run_is_clean_also_inside_dvc_repro(project):
    assert provenance(project, "gate") == CLEAN
    before = time.time() * 1000
    sh(project, *DVC, "repro", "-q", "gate")  # DVC holds the repository lock while the stage checks
    assert (project / "verdict.txt").read_text() == CLEAN
    # issue 21: the stage knows when the `dvc repro` running it began (the run's start in MLflow)
    assert before - 1000 <= int((project / "started.txt").read_text()) <= before + 2000


def test_an_untracked_dataset_under_the_pipeline_s_inputs_is_not_clean(project):
    (project / "data" / "sources" / "extra").mkdir()
    (project / "data" / "sources" / "extra" / "b.txt").write_text("two\n")  # `--untracked-files=no` missed it
    verdict = provenance(project, "gate")
    assert verdict.startswith("not clean: ") and "untracked: data/sources/extra/b.txt" in verdict
    (project / "notes.txt").write_text("not read by the pipeline\n")
    (project / "data" / "sources" / "extra" / "b.txt").unlink()
    assert provenance(project, "gate") == CLEAN


def test_a_dvc_tracked_dataset_changed_without_dvc_add_is_not_clean(project):
    (project / "data" / "sources" / "shapes" / "a.txt").write_text("changed\n")
    verdict = provenance(project, "gate")
    assert verdict.startswith("not clean: ") and "data/sources/shapes.dvc" in verdict


def test_a_stage_whose_code_changed_after_it_ran_is_not_clean(project):
    (project / "prep.py").write_text("# changed and committed, not rerun\n")
    sh(project, *GIT, "commit", "-qam", "y")
    verdict = provenance(project, "gate")
    assert "dvc status: prep" in verdict and "prep.py" in verdict


def test_outside_git_is_unknown_and_never_released(tmp_path):
    verdict = provenance(tmp_path, "gate")
    assert verdict.startswith("unknown")
    tags = {"branch": "main", "git_dirty": "false", "dvc_experiment": "", "pull_request": "false"}
    assert alias_for({**tags, "provenance": verdict}, True, "candidate", "champion", ["main"]) == ""  # no alias
    assert alias_for({**tags, "provenance": CLEAN}, True, "candidate", "champion", ["main"]) == "champion"


def test_the_judged_files_must_be_outputs_of_the_pipeline_s_stages(project, tmp_path_factory):
    """A gate run by hand on an edited copy of eval.json kept in /tmp was `provenance: clean` and registered its
    figures as champion: git and `dvc status` were clean, as they never looked at the files judged (records11 #1)."""
    output = project / "prepared" / "shapes" / "a.txt"  # an output of the prep stage, as dvc.lock has it
    assert provenance(project, "gate", [output]) == CLEAN
    outside = tmp_path_factory.mktemp("elsewhere") / "eval.json"
    outside.write_text("{}")
    verdict = provenance(project, "gate", [output, outside])
    assert verdict == f"not clean: judged file outside the repository: {outside}"
    verdict = provenance(project, "gate", [project / "prep.py"])  # committed, but no stage wrote it
    assert verdict == "not clean: judged file is no output of the pipeline's stages: prep.py"
    output.write_text("edited\n")  # the output itself edited: its hash is not dvc.lock's
    assert "dvc status: prep" in provenance(project, "gate", [output])


def test_without_dvc_yaml_the_judged_files_must_be_committed(tmp_path, tmp_path_factory):
    sh(tmp_path, *GIT, "init", "-q", "-b", "main")
    (tmp_path / "eval.json").write_text("{}")
    (tmp_path / ".gitignore").write_text("ignored.json\n")
    sh(tmp_path, *GIT, "add", "-A")
    sh(tmp_path, *GIT, "commit", "-qm", "x")
    assert provenance(tmp_path, "gate", [tmp_path / "eval.json"]) == CLEAN
    (tmp_path / "ignored.json").write_text("{}")
    outside = tmp_path_factory.mktemp("elsewhere") / "bench.json"
    outside.write_text("{}")
    verdict = provenance(tmp_path, "gate", [tmp_path / "ignored.json", outside])
    assert verdict == (
        f"not clean: judged file outside the repository: {outside}; judged file not committed (ignored by git): "
        "ignored.json"
    )
