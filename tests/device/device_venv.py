"""A virtual environment with only the device dependencies (ci/device-requirements.txt), on Python 3.8
when this machine has it (JetPack 4/5's Python), cached under ``.edgeproof/device-venv/`` and keyed by
the interpreter and the requirements, so only the first run installs anything."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "ci" / "device-requirements.txt"
FORBIDDEN = {"torch", "ultralytics", "dvc", "mlflow", "pydantic", "pycocotools", "opencv-python"}


def device_python() -> str:
    """``$EDGEPROOF_DEVICE_PYTHON``, else a Python 3.8 (pyenv or PATH), else this interpreter."""
    candidates = [os.environ.get("EDGEPROOF_DEVICE_PYTHON", "")]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob("3.8.*/bin/python"), reverse=True)]
    candidates += [shutil.which("python3.8") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return sys.executable


def _version(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def device_venv() -> tuple[Path, str]:
    """The cached venv's python and its version; created (pip from PyPI) on first use."""
    python = device_python()
    version = _version(python)
    key = hashlib.sha256(f"{version}\n{REQUIREMENTS.read_text()}".encode()).hexdigest()[:12]
    venv = REPO / ".edgeproof" / "device-venv" / f"py{version}-{key}"
    if not (venv / ".complete").exists():
        tmp = venv.with_name(venv.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(tmp)], check=True)
        pip = [str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, timeout=600)
        (tmp / ".complete").write_text(version + "\n")
        shutil.rmtree(venv, ignore_errors=True)
        os.replace(tmp, venv)  # venv scripts carry absolute paths: python -m pip/-m edgeproof only
    return venv / "bin" / "python", version


def installed(python: Path) -> set[str]:
    """Distribution names installed in the venv (lower case)."""
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {line.split("==")[0].lower() for line in out.stdout.splitlines() if "==" in line}
