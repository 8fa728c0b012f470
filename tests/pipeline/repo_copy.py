"""Make a throw-away copy of the project in which the real `dvc repro` can run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXCLUDE = {
    ".venv",
    ".git",
    ".edgeproof",
    "mlflow.db",
    "mlartifacts",
    "mlruns",
    "models",
    "metrics",
    "reports",
    "plots",
    "dvc.lock",
    ".pytest_cache",
    ".ruff_cache",
    "__pycache__",
    "out",
    "config.local",  # .dvc/config.local: the clone's own settings (its offline plots page, relative to it)
}
TINY = {
    "data": {"synthetic": {"n_train": 12, "n_val": 6, "image_size": 96}},
    "train": {"epochs": 1, "imgsz": 64, "batch": 4},
    "benchmark": {"warmup": 1, "runs": 5, "e2e_images": 3},
    # the build profile's gate; a val of 6 images (or a test's few photos) is below the val set an mAP needs to be
    # judged (gate.min_val_*: 10), and these tests are about the pipeline, not the model: judged over what they have
    "profiles": {
        "cpu-ci": {
            "gate": {
                "min_map50": 0.0,
                "min_fps": 1.0,
                "min_val_images": 1,
                "min_val_boxes_per_class": 1,
                "min_timed_frames": 1,  # benchmark.runs 5 frames: judged over what they have
            }
        }
    },
}


def _ignore(directory: str, names: list[str]) -> set[str]:
    ignored = {n for n in names if n in EXCLUDE or n.endswith(".egg-info")}
    if Path(directory).resolve() == (REPO / "data").resolve():
        ignored.add("prepared")
    return ignored


def deep_update(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``extra`` into ``base`` (in place) and return it."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def set_params(root: Path, overrides: dict[str, Any]) -> None:
    """Apply ``overrides`` to ``root/params.yaml``."""
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(deep_update(params, overrides), sort_keys=False))


def make_repo(dest: Path, overrides: dict[str, Any] | None = None) -> Path:
    """Copy the project to ``dest`` (a fresh git repo) with tiny params plus ``overrides``."""
    shutil.copytree(REPO, dest, ignore=_ignore)
    set_params(dest, deep_update(yaml.safe_load(yaml.safe_dump(TINY)), overrides or {}))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


def env_for(root: Path) -> dict[str, str]:
    """Environment for running the pipeline in ``root``: this venv first on PATH, all state inside ``root``."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["EDGEPROOF_STATE_DIR"] = str(root / ".edgeproof")
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    env["HOME"] = str(root / ".home")
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode caches must not make DVC rerun stages
    return env


def run(cmd: list[str], root: Path, timeout: float = 900, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in ``root`` with :func:`env_for`; output captured as text."""
    return subprocess.run(cmd, cwd=root, env=env_for(root), capture_output=True, text=True, timeout=timeout, **kwargs)


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The venv's `dvc` in ``root``."""
    return run([str(Path(sys.executable).parent / "dvc"), *args], root)
