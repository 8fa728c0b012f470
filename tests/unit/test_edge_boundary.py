"""The edge boundary: what a Jetson runner imports must not pull in torch or ultralytics."""

from __future__ import annotations

import subprocess
import sys
import textwrap

EDGE_MODULES = [
    "edgeproof",
    "edgeproof.config",
    "edgeproof.io",
    "edgeproof.paths",
    "edgeproof.cli",
    "edgeproof.runtime.preprocess",
    "edgeproof.runtime.postprocess",
    "edgeproof.runtime.session",
    "edgeproof.runtime.detector",
    "edgeproof.evaluation.coco",
    "edgeproof.evaluation.predict",
    "edgeproof.evaluation.run",
    "edgeproof.benchmark",
    "edgeproof.device.fingerprint",
    "edgeproof.gate",
    "edgeproof.tracking.record",
    "edgeproof.tracking.mlflow_sink",
    "edgeproof.tracking.pipeline",
    "edgeproof.data.canonical",
    "stages.benchmark",
    "stages.gate",
    "stages.evaluate",
    "edgeproof.device.measure",
    "edgeproof.verdict.device",
    "edgeproof.verdict.rules",
    "edgeproof.device.preflight",
    "edgeproof.device.video",
    "edgeproof.bundle",
    "edgeproof.tracking.device_verdict",
    "stages.bundle",
    "edgeproof.release.choose",
    "edgeproof.release.measure",
    "edgeproof.release.plot",
    "stages.release",
]


def test_edge_modules_import_without_torch_or_ultralytics():
    code = textwrap.dedent(
        f"""
        import importlib, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torchvision", "ultralytics", "onnxsim"):
                    raise ImportError("edge boundary violated: " + name)
                return None

        sys.meta_path.insert(0, Block())
        for mod in {EDGE_MODULES!r}:
            importlib.import_module(mod)
        from edgeproof.cli import main
        assert main(["params"]) == 0
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "ultralytics"))
        assert not leaked, leaked
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=_repo())
    assert proc.returncode == 0, proc.stderr


def test_importing_the_package_has_no_side_effects(tmp_path):
    code = "import edgeproof.config, edgeproof.tracking.pipeline, edgeproof.runtime.detector, stages.gate"
    proc = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(_repo())!r}); {code}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []  # no mlflow.db, no .edgeproof/, no caches in the cwd


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]
