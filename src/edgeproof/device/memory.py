"""Memory of the measuring process: peak resident set, growth over the timed run, and leaks.

Read from ``/proc/self/status`` (``VmHWM``: the peak resident set; ``VmRSS``: resident now), in kB
(KiB: the ``*_mb`` memory figures are MiB). ``VmHWM`` counts from the process's start unless it is reset:
:func:`reset_peak` (Linux >= 4.0: ``5`` written to ``/proc/self/clear_refs``) sets it to the resident set
at that moment, so a peak read later covers what ran after it, plus what the process held then. The
device measurement and the build side's footprint both reset it just before the model's session is built
and read it after the timed frames; ``memory.peak_reset`` and ``memory.peak_covers`` record which.

A background thread samples ``VmRSS`` during the timed loop, split into ``SEGMENTS`` runs of samples. The
growth is the median of the last segment minus the median of the first; the *rate* is the smallest rise
between successive segments' medians, per frame of a segment: a steady leak rises the same through all of
them, while a one-off allocation (an arena that grows once, after the warm-up or anywhere else) lands in one
segment and moves only the two rises beside it, so the rate stays near zero. A rate over
``LEAK_KIB_PER_FRAME`` is a *leak*; fewer than ``SEGMENTS`` samples or frames give no rate, and the leak is
then not judged (``memory_leak`` null, ``memory.leak_reason``), never "no leak". Always measurable on Linux;
elsewhere the reason is recorded.
"""

from __future__ import annotations

import statistics
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
PEAK_SINCE_START = "the whole process since it started"
# A leak is judged per frame, not over the run: a fixed total over a 50-frame loop let 96 KiB a frame
# (9.9 GiB an hour at 30 FPS) pass. 64 KiB/frame is 6.6 GiB an hour at 30 FPS, a Jetson Nano's 4 GB gone
# within the hour. It sits above the growth that is no leak: the allocator's warm-up on this CI machine
# (int8 model, 50 end-to-end frames, fresh images) measured up to ~29 KiB/frame by this rate over its first
# 100 frames and none after ~150. A slower leak is not told apart from that in 50 frames: a longer loop
# (profiles' e2e_images) is what would see it.
LEAK_KIB_PER_FRAME = 64.0
SEGMENTS = 4  # with four, one rise stays flat whichever segment a one-off allocation lands in
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


def growth(samples_mb: Sequence[float], frames: int) -> Dict[str, Any]:
    """Growth (MB) between the first and last segment of ``samples_mb`` taken over ``frames`` frames, its
    rate per frame (KiB; the smallest rise between successive segments) and whether it is a leak.

    Fewer than :data:`SEGMENTS` samples or frames give no rate: ``leak`` is then ``None`` (not judged,
    ``leak_reason`` says why), never ``False``: a leak that could not be measured is not "no leak"."""
    n = len(samples_mb)
    if n < SEGMENTS or frames < SEGMENTS:
        grown = samples_mb[-1] - samples_mb[0] if n >= 2 else None
        why = "{} RSS samples over {} frames: a leak rate needs at least {} of each (one per segment)"
        return {
            "growth_mb": round(grown, 3) if grown is not None else None,
            "growth_kib_per_frame": None,
            "leak": None,
            "leak_reason": why.format(n, frames, SEGMENTS),
            "samples": n,
        }
    medians = [statistics.median(samples_mb[k * n // SEGMENTS : (k + 1) * n // SEGMENTS]) for k in range(SEGMENTS)]
    rise = min(b - a for a, b in zip(medians[:-1], medians[1:]))  # noqa: RUF007 (itertools.pairwise is 3.10+)
    rate = max(0.0, rise) * 1024.0 / (frames / SEGMENTS)
    return {
        "growth_mb": round(medians[-1] - medians[0], 3),
        "growth_kib_per_frame": round(rate, 3),
        "leak": bool(rate > LEAK_KIB_PER_FRAME),
        "leak_reason": None,
        "samples": n,
    }


def reset_peak(before: str, clear_refs: Path = CLEAR_REFS) -> Dict[str, Any]:
    """Reset this process's ``VmHWM`` to its resident set now, just ``before`` what the peak is to cover
    (``"the session build"``); the ``memory`` record's ``peak_reset`` and ``peak_covers``. Where the kernel
    refuses (before Linux 4.0, not Linux) the peak stays the process's since its start, and says so."""
    try:
        with clear_refs.open("w") as fh:
            fh.write("5")  # 5: reset the peak RSS (Documentation/filesystems/proc.rst, clear_refs)
    except OSError as exc:
        why = f"{PEAK_SINCE_START}: VmHWM not reset ({exc.strerror or exc})"
        return {"peak_reset": False, "peak_covers": why}
    covers = "from just before {} on (VmHWM reset there to the resident set then, which it includes)"
    return {"peak_reset": True, "peak_covers": covers.format(before)}


class MemoryMonitor:
    """Samples this process's resident memory between :meth:`start` and :meth:`stop`; ``peak``: what
    :func:`reset_peak` returned before the work the peak covers (``None``: not reset)."""

    def __init__(
        self, status: Path = STATUS, interval_s: float = INTERVAL_S, peak: Optional[Dict[str, Any]] = None
    ) -> None:
        self.status, self.interval_s = status, interval_s
        self.peak = peak or {"peak_reset": False, "peak_covers": PEAK_SINCE_START}
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

    def stop(self, frames: int) -> Dict[str, Any]:
        """Stop after ``frames`` frames; ``peak_memory_mb`` (VmHWM), ``memory_growth_mb``, ``memory_leak`` and
        the detail (the growth per frame and the threshold it is judged against)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        status = read_status_kb(self.status)
        trend = growth(self.rss_mb, frames)
        hwm = status.get("VmHWM")
        return {
            "peak_memory_mb": round(hwm / 1024.0, 3) if hwm is not None else None,
            "memory_growth_mb": trend["growth_mb"],
            "memory_leak": trend["leak"],
            "memory": {
                "measurable": hwm is not None,
                "reason": None if hwm is not None else f"{self.status} not readable (not Linux?)",
                "source": str(self.status),
                **self.peak,  # what peak_memory_mb covers: from the session build on, or since the start
                "rss_samples": trend["samples"],
                "rss_start_mb": round(self.rss_mb[0], 3) if self.rss_mb else None,
                "rss_end_mb": round(self.rss_mb[-1], 3) if self.rss_mb else None,
                "interval_ms": round(self.interval_s * 1000.0, 3),
                "frames": frames,
                "growth_kib_per_frame": trend["growth_kib_per_frame"],
                "leak_threshold_kib_per_frame": LEAK_KIB_PER_FRAME,
                "leak_reason": trend["leak_reason"],  # why memory_leak is null (not judged), else null
            },
        }


def peak_rss_mb(status: Path = STATUS) -> Optional[float]:
    """This process's peak resident set so far (``VmHWM``), MB; ``None`` where ``/proc`` is not readable."""
    hwm = read_status_kb(status).get("VmHWM")
    return round(hwm / 1024.0, 3) if hwm is not None else None
