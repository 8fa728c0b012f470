"""The memory one model costs in a process of its own: what a deployment of that model holds.

A process that already holds other work cannot tell one model's memory from the rest: the release
stage imports torch and ultralytics (~900 MB), and memory freed by one variant is reused by the
next, so their peaks differ by noise, not by model. Here each model runs in a **fresh interpreter**
that imports only the device runtime (numpy, the image decoder, ONNX Runtime), builds the session
and runs the end-to-end path over real frames; its ``VmHWM`` is then that model's footprint.

``runtime_mb`` (resident once the runtime has decoded and letterboxed an image, before the session:
the interpreter, numpy, the decoder, OpenCV when present, ONNX Runtime) is what any model pays;
``model_added_mb`` = peak - runtime is what this model adds (weights, the session's arenas,
activations). ``python -m edgeproof.device.footprint`` reads a JSON spec on stdin and writes the
JSON figures on stdout; :func:`isolated_footprint` runs it from another process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from edgeproof.device.memory import MemoryMonitor, read_status_kb, reset_peak
from edgeproof.io import file_mb
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.session import SessionSettings, import_ort

TIMEOUT_S = 600.0


def _mb(kb: Any) -> Any:
    return round(kb / 1024.0, 3) if kb is not None else None


def footprint(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Measure ``spec``'s model in *this* process (call it in a fresh one: :func:`isolated_footprint`)."""
    from edgeproof.runtime.detector import Detector
    from edgeproof.runtime.postprocess import Postprocess
    from edgeproof.runtime.preprocess import letterbox, load_image

    model = Path(spec["model"])
    images = [Path(p) for p in spec["images"]]
    if not images:
        raise ValueError("a memory footprint needs at least one image")
    import_ort()
    letterbox(load_image(images[0]), (64, 64))  # the decoder and the resizer (OpenCV when present) load lazily
    runtime = read_status_kb().get("VmRSS")  # what any model pays: interpreter, numpy, decoder, resizer, ORT
    session = SessionSettings(tuple(spec["providers"]), spec["graph_optimization"], int(spec["intra_op_threads"]))
    expected = spec.get("sha256")
    found = hashlib.sha256(model.read_bytes()).hexdigest() if expected else None
    if expected and found != expected:
        raise ValueError(
            f"{model}: the file changed since it was timed (sha256 {str(found)[:12]}…, "
            f"timed {expected[:12]}…); its memory is not measured"
        )
    peak = reset_peak("the session was built")  # as the device measures it: the hash's read above not in it
    detector = Detector(model, Postprocess.deployed(DeploySettings(**spec["deploy"])), session)
    monitor = MemoryMonitor(peak=peak).start()
    for i in range(int(spec["frames"])):
        detector([load_image(images[i % len(images)])])
    mem = monitor.stop(int(spec["frames"]))
    peak = mem["peak_memory_mb"]
    runtime_mb = _mb(runtime)
    return {
        "peak_memory_mb": peak,
        "runtime_mb": runtime_mb,
        "model_added_mb": round(peak - runtime_mb, 3) if peak is not None and runtime_mb is not None else None,
        "memory_growth_mb": mem["memory_growth_mb"],
        "memory_leak": mem["memory_leak"],
        "model_file_mb": file_mb(model),
        "model_sha256": detector.sha256,
        "frames": int(spec["frames"]),
        "memory": dict(mem["memory"], isolated=True, method="VmHWM of a fresh process that ran only this model"),
    }


def isolated_footprint(
    model: Path,
    images: Sequence[Path],
    session: SessionSettings,
    deploy: DeploySettings,
    frames: int,
    sha256: Optional[str] = None,
    timeout_s: float = TIMEOUT_S,
) -> Dict[str, Any]:
    """:func:`footprint` of ``model`` in a fresh interpreter (this one's ``sys.executable``); its figures.

    ``sha256``: the digest the model must still have (the bytes that were timed). Raises ``RuntimeError``
    naming the model and the child's last error lines when it fails.
    """
    spec = {
        "model": str(model),
        "images": [str(p) for p in images],
        "frames": frames,
        "providers": list(session.providers),
        "graph_optimization": session.graph_optimization,
        "intra_op_threads": session.intra_op_threads,
        "deploy": asdict(deploy),
        "sha256": sha256,
    }
    cmd = [sys.executable, "-m", "edgeproof.device.footprint"]
    # the child imports this very package (a `dvc exp run --temp` snapshot's src/, not an installed copy)
    here = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
    try:
        done = subprocess.run(cmd, input=json.dumps(spec), capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{model}: the memory footprint did not finish in {timeout_s:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{model}: the memory footprint failed (exit {done.returncode}): {tail}")
    lines = done.stdout.strip().splitlines()  # the figures are the last line: a library may print before it
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"{model}: the memory footprint printed no figures: {done.stdout[-300:]!r}") from None


def main() -> int:
    """Read a spec on stdin, write the figures on stdout."""
    sys.stdout.write(json.dumps(footprint(json.load(sys.stdin))) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
