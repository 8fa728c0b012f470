"""A recorded pipeline run, replayed through the real ``gate`` stage into MLflow, without training.

The repo's committed pipeline state (params.yaml, dvc.yaml, dvc.lock, metrics/, reports/, plots/
text files: the outputs of the last full ``dvc repro``) is copied into a fresh git repo. The ONNX
release candidate (DVC-cached, not in git) is replaced by a tiny fixed-output ONNX model, and the
recorded sha256 by its sha256, so the sha256 chain the gate checks holds; the replay repo has no
``.dvc/`` (no DVC cache to check outputs against), so the model is committed in git with the rest, as
provenance then requires of every file the gate judges. Stage outputs get
modification times in stage order (the data stage's 8 minutes before the gate, as a real run's
training takes), then the gate stage runs exactly as ``dvc.yaml`` spells its command.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from edgeproof.io import sha256_file
from tests.conftest import make_fixed_detector
from tests.services.servers import REPO

GIT = ["git", "-c", "user.name=edgeproof-test", "-c", "user.email=test@edgeproof.invalid"]


@dataclass
class Recorded:
    """The replayed repo, its model's sha256, and the gate stage's command line from dvc.yaml."""

    path: Path
    sha: str
    gate_cmd: list[str]

    def git(self, *args: str) -> None:
        """Run git in the repo."""
        subprocess.run([*GIT, *args], cwd=self.path, check=True, capture_output=True)

    def run_gate(self, env: dict[str, str] | None = None, repro_s: float = 0.0) -> subprocess.CompletedProcess:
        """Run the gate stage (and so its MLflow record) as DVC would, in the repo: as the child of a
        process whose command line reads ``dvc repro`` (a shell standing in for DVC), started
        ``repro_s`` seconds before the stage (the stages before it)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GITHUB_", "DVC_EXP"))}
        full = {**base, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", **(env or {})}
        cmd = [sys.executable if part == "python" else part for part in self.gate_cmd]
        shell = ["sh", "-c", f'shift; sleep {repro_s}; "$@"', "dvc", "repro", *cmd]  # $0 dvc, $1 repro
        return subprocess.run(shell, cwd=self.path, env=full, capture_output=True, text=True, timeout=300, check=False)


def _committed(prefixes: tuple[str, ...]) -> list[str]:
    out = subprocess.run(["git", "ls-files", *prefixes], cwd=REPO, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if (REPO / line).is_file()]


def recorded_repo(dst: Path) -> Recorded:
    """Build the replay repo in ``dst`` (committed on branch ``main``, clean)."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    gate_cmd = shlex.split(dvc["stages"]["gate"]["cmd"])
    old_sha = json.loads((REPO / "reports" / "gate.json").read_text())["model_sha256"]
    files = [f for f in ("params.yaml", "dvc.yaml", "dvc.lock") if (REPO / f).is_file()]
    files += _committed(("metrics", "reports", "plots"))
    for name in files:
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, dst / name)
    models = {part for part in gate_cmd if part.endswith(".onnx")}
    if not models:  # the gate gates reports/release.json's build-profile file
        release = json.loads((REPO / "reports" / "release.json").read_text())
        models = {release["profiles"][release["build_profile"]]["path"]}
    for model in models:
        (dst / model).parent.mkdir(parents=True, exist_ok=True)
        make_fixed_detector(dst / model, np.zeros((7, 4), np.float32), 32, {0: "circle", 1: "square", 2: "triangle"})
    sha = sha256_file(dst / sorted(models)[0])
    for name in files:
        if name.endswith((".json", ".md")):
            path = dst / name
            path.write_text(path.read_text().replace(old_sha, sha))
    _stage_times(dst, dvc, [*files, *models])
    (dst / ".gitignore").write_text("mlflow.db\nmlartifacts/\n.edgeproof/\n")
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=dst, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=dst, check=True)
    subprocess.run([*GIT, "commit", "-qm", "recorded pipeline state"], cwd=dst, check=True)
    return Recorded(dst, sha, gate_cmd)


def _stage_times(dst: Path, dvc: dict, files: list[str]) -> None:
    """Outputs of the data stage 8 minutes ago, every later stage's a minute ago (training between)."""
    now = time.time()
    data_outs = {next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics")
                 for o in dvc["stages"].get("data", {}).get(key, [])}  # fmt: skip
    for name in files:
        stamp = now - 480 if name in data_outs else now - 60
        os.utime(dst / name, (stamp, stamp))
