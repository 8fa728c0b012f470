"""An optional ceiling: the bare TensorRT engine's latency from ``trtexec``, next to ONNX Runtime's.

When ``trtexec`` exists on the board (on ``PATH``, or JetPack's ``/usr/src/tensorrt/bin``), it runs
once on the same ONNX file, precision and input shape, and ``trtexec_ratio`` = ONNX Runtime-TensorRT
model-only mean latency / trtexec's mean host latency (H2D + compute + D2H, as ORT's call includes
the copies). Informational only: never gated. Absent or failed: ``None`` and the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

JETPACK_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"
TIMEOUT_S = 900.0  # an engine build takes minutes on a Nano
_STAT = r"min = ([\d.]+) ms, max = ([\d.]+) ms, mean = ([\d.]+) ms, median = ([\d.]+) ms"
_LATENCY = re.compile(r"\] (?:Host )?Latency: " + _STAT)
_COMPUTE = re.compile(r"GPU Compute Time: " + _STAT)


def parse_trtexec(text: str) -> Dict[str, Optional[float]]:
    """Mean host latency and GPU compute time (ms) from trtexec's performance summary."""
    summary = text.split("Performance summary", 1)[-1]
    lat, gpu = _LATENCY.search(summary), _COMPUTE.search(summary)
    return {
        "latency_ms_mean": float(lat.group(3)) if lat else None,
        "latency_ms_median": float(lat.group(4)) if lat else None,
        "gpu_compute_ms_mean": float(gpu.group(3)) if gpu else None,
    }


def trtexec_command(exe: str, model: Path, options: Dict[str, Any], shape: str) -> List[str]:
    """The trtexec call matching the session's TensorRT options (precision) and input shape."""
    argv = [exe, f"--onnx={model}", f"--shapes={shape}", "--warmUp=500", "--duration=10"]
    if options.get("trt_fp16_enable"):
        argv.append("--fp16")
    if options.get("trt_int8_enable"):
        argv.append("--int8")
    return argv


def find_trtexec() -> Optional[str]:
    """``trtexec`` on PATH, else JetPack's copy."""
    return shutil.which("trtexec") or (JETPACK_TRTEXEC if Path(JETPACK_TRTEXEC).is_file() else None)


def ceiling(
    model: Path, options: Optional[Dict[str, Any]], shape: Optional[str], ort_ms: float, recorded: bool
) -> Dict[str, Any]:
    """Run trtexec once and compare; ``{"trtexec_ratio": ..., "trtexec": {...}}``."""

    def skipped(reason: str) -> Dict[str, Any]:
        return {"trtexec_ratio": None, "trtexec": {"ran": False, "reason": reason}}

    if options is None or shape is None:
        return skipped("not a TensorRT profile")
    exe = None if recorded else find_trtexec()
    if exe is None:
        return skipped("trtexec not found (PATH, /usr/src/tensorrt/bin)")
    argv = trtexec_command(exe, model, options, shape)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return skipped(f"{' '.join(argv)}: {type(exc).__name__}")
    got = parse_trtexec(proc.stdout)
    if proc.returncode != 0 or not got["latency_ms_mean"]:
        return skipped(f"{' '.join(argv)}: exit {proc.returncode}, no latency in its summary")
    ratio = round(ort_ms / got["latency_ms_mean"], 4)
    return {"trtexec_ratio": ratio, "trtexec": {"ran": True, "reason": None, "command": argv, **got}}
