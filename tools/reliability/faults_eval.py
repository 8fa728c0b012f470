"""A fault injected into the ``evaluate`` stage: SIGKILL while it writes its outputs.

Survived means: every output file present right after the kill is complete (JSON parses, images
decode, arrays load), and the rerun gives the same scores as an uninterrupted run (timings excepted).
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reliability import sandbox as sb
from reliability.faults_stages import declared_outputs, finish, model_arg, signal_when, start

METRICS, DETECTIONS = "metrics/eval.json", "reports/detections_val.json"
_TIMING = {"images_per_s", "speed", "ultralytics_images_per_s"}


def _repo(root: Path) -> Path:
    from edgeproof.config import parse_params
    from edgeproof.data.synthetic import generate

    classes = ["circle", "square"]
    synthetic = {"n_train": 2, "n_val": 240, "image_size": 64, "classes": classes}
    generate(parse_params({"data": {"synthetic": synthetic}}).data.synthetic, 0, root / "data" / "prepared")
    sb.onnx_model(root / model_arg("evaluate"), boxes=True, class_names=classes)  # a model of these classes
    cross = {"ultralytics": False}
    sb.write_params(root, {}, evaluate={"cross_check": cross, "score_workers": 0, "streams": 1})
    return root


def _start(repo: Path) -> subprocess.Popen[bytes]:
    """The evaluate stage exactly as dvc.yaml runs it (its command, its outputs)."""
    return start(repo, "evaluate")


def _scores(repo: Path) -> Any:
    """eval.json without its timings, and the detections: what an interrupted run must reproduce."""
    metrics = json.loads((repo / METRICS).read_text())
    return {k: v for k, v in metrics.items() if k not in _TIMING}, (repo / DETECTIONS).read_text()


def _torn(repo: Path) -> list[str]:
    """Outputs present but not complete files."""
    bad = []
    for rel in declared_outputs("evaluate"):
        path = repo / rel
        if not path.exists():
            continue
        try:
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix in (".png", ".jpg"):
                with Image.open(path) as im:
                    im.load()
            elif path.suffix == ".npz":
                with np.load(path) as arrays:
                    [arrays[k] for k in arrays.files]
            elif not path.read_text().endswith("\n"):
                bad.append(rel)
        except Exception:
            bad.append(rel)
    return bad


def _kill_while_writing(repo: Path, timeout: float = 300.0) -> bool:
    """Run evaluate and SIGKILL it as soon as its first output is (re)written; True if it was."""
    first = repo / DETECTIONS
    before = first.stat().st_mtime_ns if first.exists() else None

    def written() -> bool:
        return first.exists() and first.stat().st_mtime_ns != before

    return signal_when(_start(repo), signal.SIGKILL, written, timeout)


def evaluate_interrupted(workdir: Path) -> dict[str, Any]:
    """Reference run, then a run killed while writing its outputs, then the rerun."""
    name = "sigkill-evaluate-outputs"
    reference = _repo(workdir / name / "reference")
    code, tail = finish(reference, "evaluate")
    if code != 0:
        return _result(name, "failed", f"the uninterrupted evaluate run failed (exit {code}): {tail[-300:]}")
    repo = _repo(workdir / name / "repo")
    if not _kill_while_writing(repo):
        return _result(name, "not_injected", "evaluate finished before it could be killed")
    torn = _torn(repo)
    if torn:
        return _result(name, "failed", f"half-written outputs after the kill: {torn}")
    outputs = declared_outputs("evaluate")
    written = sum((repo / rel).exists() for rel in outputs)
    if finish(repo, "evaluate")[0] != 0 or _scores(repo) != _scores(reference):
        return _result(name, "failed", "the rerun failed or scored differently from an uninterrupted run")
    detail = (
        f"SIGKILL right after evaluate began writing: {written} of {len(outputs)} outputs present, none torn; "
        "the rerun's eval.json (timings aside) and detections equal an uninterrupted run's"
    )
    return _result(name, "survived", detail)


def _result(name: str, outcome: str, detail: str) -> dict[str, Any]:
    return {"kind": "fault", "name": name, "outcome": outcome, "detail": detail, "data_lost": 0}
