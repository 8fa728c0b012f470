"""A description of the machine a measurement was taken on (the "device fingerprint")."""

from __future__ import annotations

import os
import platform
from typing import Any


def _read(path: str) -> str | None:
    """A system file through the device side's system root (``$EDGEPROOF_SYSROOT``, default ``/``)."""
    from edgeproof.device.sysinfo import SysRoot

    return SysRoot().read(path)


def cpu_model() -> str:
    """The CPU's marketing name (Linux ``/proc/cpuinfo``; elsewhere ``platform.processor()``)."""
    info = _read("/proc/cpuinfo") or ""
    for line in info.splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    info = _read("/proc/meminfo") or ""
    for line in info.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return None


def _jetson() -> dict[str, Any] | None:
    """Jetson facts, read once in :mod:`edgeproof.device.sysinfo` (through ``$EDGEPROOF_SYSROOT``)."""
    from edgeproof.device.sysinfo import SysRoot, jetson_facts

    facts = jetson_facts(SysRoot())
    if facts is not None:
        facts["l4t_release"] = facts["nv_tegra_release"]  # the key this report had before
    return facts


HOSTNAME_ENV = "EDGEPROOF_RECORD_HOSTNAME"


def device_fingerprint(providers_used: list[str] | None = None) -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python, ONNX Runtime version/providers, and Jetson facts if any.

    The machine's hostname identifies a person's or an organisation's machine and ends up in git and
    MLflow, so it is left out unless ``$EDGEPROOF_RECORD_HOSTNAME`` is ``1`` (e.g. on a device farm).
    """
    try:
        import onnxruntime as ort

        ort_info: dict[str, Any] = {
            "version": ort.__version__,
            "available_providers": ort.get_available_providers(),
            "device": ort.get_device(),
        }
    except ImportError:
        ort_info = {"version": None, "available_providers": []}
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {  # a local annotation is never evaluated: fine on Python 3.8
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": affinity,
        "memory_gib": _memory_gib(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort_info,
        "providers_used": providers_used or [],
        "jetson": _jetson(),
    }
    if os.environ.get(HOSTNAME_ENV) == "1":
        info["hostname"] = platform.node()
    return info
