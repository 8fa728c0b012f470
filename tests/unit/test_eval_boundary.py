"""The edge boundary: the evaluation package and stage import neither torch nor ultralytics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import edgeproof.evaluation

ROOT = Path(__file__).resolve().parents[2]


def test_evaluation_imports_no_torch_or_ultralytics() -> None:
    package = Path(edgeproof.evaluation.__file__).parent
    modules = sorted(f"edgeproof.evaluation.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__")
    assert "edgeproof.evaluation.crosscheck" in modules and "edgeproof.evaluation.run" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {[*modules, 'stages.evaluate']!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'ultralytics', 'torchvision'}"
        " or (m.startswith('edgeproof.training') and m not in ('edgeproof.training', 'edgeproof.training.params')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
