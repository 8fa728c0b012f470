"""The device side runs on a Jetson's Python: 3.8 (JetPack 4 and 5 have ONNX Runtime GPU wheels only for it).

Checked over exactly the device-side modules: ``vermin`` (minimum versions of syntax, library
functions and arguments), a parse with Python 3.8's grammar, and what neither sees: ``X | Y`` types
evaluated at run time (``isinstance``, dataclass fields read by ``settings.py``). The hand-off test
(tests/device/test_handoff.py) then imports and runs them on a real 3.8 interpreter.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "edgeproof"
DEVICE_SIDE = [
    SRC / "runtime",
    SRC / "device",
    SRC / "verdict",
    SRC / "settings.py",
    SRC / "profiles.py",
    SRC / "io.py",
    SRC / "__init__.py",
]


def device_files() -> list[Path]:
    files: list[Path] = []
    for item in DEVICE_SIDE:
        files += sorted(item.rglob("*.py")) if item.is_dir() else [item]
    return files


def test_the_device_side_is_what_we_think():
    names = {p.relative_to(SRC).as_posix() for p in device_files()}
    assert {"device/measure.py", "verdict/rules.py", "verdict/device.py", "runtime/preprocess.py"} <= names


@pytest.mark.parametrize("path", device_files(), ids=lambda p: p.relative_to(SRC).as_posix())
def test_parses_with_python_38_grammar(path):
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 8))


@pytest.mark.parametrize("path", device_files(), ids=lambda p: p.relative_to(SRC).as_posix())
def test_no_union_types_evaluated_at_run_time(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("isinstance", "issubclass"):
            bad = [a for a in node.args[1:] if isinstance(a, ast.BinOp) and isinstance(a.op, ast.BitOr)]
            assert not bad, f"{path}:{node.lineno}: isinstance(..., X | Y) needs Python 3.10"


def _vermin() -> str | None:
    found = shutil.which("vermin") or str(Path(sys.executable).parent / "vermin")
    return found if Path(found).exists() else None


def test_vermin_finds_nothing_above_python_38():
    vermin = _vermin()
    assert vermin, "vermin is not installed (pip install vermin; it is in the dev extra)"
    cmd = [vermin, "--target=3.8-", "--violations", "--no-tips", "--no-parse-comments"]
    proc = subprocess.run([*cmd, *map(str, DEVICE_SIDE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
