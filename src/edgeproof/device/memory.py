"""Memory of the measuring process: peak resident set, growth over the timed run, and leaks.

Read from ``/proc/self/status`` (``VmHWM``: the peak resident set since the process started;
``VmRSS``: resident now), in kB. A background thread samples ``VmRSS`` during the timed loop; the
growth is the median of the last third of the samples minus the median of the first third, and a
*leak* is a growth over ``LEAK_MB`` that rises through all three thirds (a one-off allocation, such
as an arena that grows once, rises only once). Always measurable on Linux; elsewhere the reason is
recorded.
"""

from __future__ import annotations

import statistics
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

STATUS = Path("/proc/self/status")
LEAK_MB = 5.0  # growth over this across the timed loop, rising throughout: a leak
INTERVAL_S = 0.01


def read_status_kb(status: Path = STATUS) -> Dict[str, int]:
    """``VmHWM``/``VmRSS``/... of ``status`` (``/proc/<pid>/status``) in kB; empty when unreadable."""
    out = {}
    try:
        text = status.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key.startswith("Vm") and len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            out[key] = int(parts[0])
    return out


def growth(samples_mb: Sequence[float]) -> Dict[str, Any]:
    """Growth (MB) between the first and last third of ``samples_mb``, and whether it is a leak."""
    if len(samples_mb) < 3:  # too short a loop to see a trend: the plain difference, never a leak
        grown = samples_mb[-1] - samples_mb[0] if len(samples_mb) == 2 else None
        return {"growth_mb": round(grown, 3) if grown is not None else None, "leak": False, "samples": len(samples_mb)}
    third = len(samples_mb) // 3
    parts = [samples_mb[:third], samples_mb[third : len(samples_mb) - third], samples_mb[-third:]]
    first, middle, last = (statistics.median(p) for p in parts)
    grown = last - first
    return {
        "growth_mb": round(grown, 3),
        "leak": bool(grown > LEAK_MB and first < middle < last),
        "samples": len(samples_mb),
    }


class MemoryMonitor:
    """Samples this process's resident memory between :meth:`start` and :meth:`stop`."""

    def __init__(self, status: Path = STATUS, interval_s: float = INTERVAL_S) -> None:
        self.status, self.interval_s = status, interval_s
        self.rss_mb: List[float] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _sample(self) -> None:
        rss = read_status_kb(self.status).get("VmRSS")
        if rss is not None:
            self.rss_mb.append(rss / 1024.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> MemoryMonitor:
        """Take a first sample and start the sampling thread."""
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="edgeproof-memory", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Dict[str, Any]:
        """Stop; ``peak_memory_mb`` (VmHWM), ``memory_growth_mb``, ``memory_leak`` and the detail."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        status = read_status_kb(self.status)
        trend = growth(self.rss_mb)
        hwm = status.get("VmHWM")
        return {
            "peak_memory_mb": round(hwm / 1024.0, 3) if hwm is not None else None,
            "memory_growth_mb": trend["growth_mb"],
            "memory_leak": trend["leak"],
            "memory": {
                "measurable": hwm is not None,
                "reason": None if hwm is not None else f"{self.status} not readable (not Linux?)",
                "source": str(self.status),
                "rss_samples": trend["samples"],
                "rss_start_mb": round(self.rss_mb[0], 3) if self.rss_mb else None,
                "rss_end_mb": round(self.rss_mb[-1], 3) if self.rss_mb else None,
                "interval_ms": round(self.interval_s * 1000.0, 3),
                "leak_threshold_mb": LEAK_MB,
            },
        }


def peak_rss_mb(status: Path = STATUS) -> Optional[float]:
    """This process's peak resident set so far (``VmHWM``), MB; ``None`` where ``/proc`` is not readable."""
    hwm = read_status_kb(status).get("VmHWM")
    return round(hwm / 1024.0, 3) if hwm is not None else None


def file_mb(path: Path) -> Optional[float]:
    """A file's size in MB (MiB: 2^20 bytes, like the memory figures); ``None`` when it is absent."""
    try:
        return round(path.stat().st_size / 1024.0**2, 6)
    except OSError:
        return None
