"""bench.json's energy fields: gross and net mJ per frame, mean and peak power, and the ``energy`` record.

The figures come from a run window's and an idle window's integrals (:meth:`PowerMeter.window
<edgeproof.device.energy.PowerMeter.window>`, :func:`~edgeproof.device.power_window.window_power`);
the record says how they were measured (source, interval, readings inside the timed frames) or, when
they were not, why (``energy.reason``). *Gross* energy is what the board drew in the window; *net*
subtracts the idle draw measured just before the run (:data:`edgeproof.device.energy.IDLE_S` seconds,
same source). Device side: Python 3.8.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple


def energy_fields(
    run: Optional[Dict[str, Any]],
    idle: Optional[Dict[str, Any]],
    frames: int,
    window: Tuple[float, float],
    idle_window: Optional[Tuple[float, float]],
    source: Optional[str],
    interval_s: float,
    reason: Optional[str] = None,
) -> Dict[str, Any]:
    """bench.json's energy fields from a run window's and an idle window's figures
    (:func:`~edgeproof.device.power_window.window_power`).

    Gross mJ/frame is the window's energy over its frames; net first subtracts the idle draw over the
    same duration. Unmeasurable: every figure ``None`` and ``energy.reason`` says why.
    """
    measurable = run is not None and frames > 0
    seconds = window[1] - window[0]
    idle_w = round(idle["mean_w"], 4) if idle else None
    record = {
        "measurable": measurable,
        "reason": None if measurable else (reason or "no power readings in the end-to-end window"),
        "source": source,
        "interval_ms": round(interval_s * 1000.0, 3),
        "samples": run["samples"] if run else 0,
        "inside_samples": run["inside_samples"] if run else 0,  # taken during the timed frames
        "missing_samples": run["missing"] if run else 0,
        "window_s": round(seconds, 6),  # microseconds: a short window of fast frames is milliseconds
        "frames": frames,
        "idle_w": idle_w,
        "idle_interval_s": round(idle_window[1] - idle_window[0], 3) if idle and idle_window else None,
    }
    if not measurable or run is None:
        return {"energy_mj_per_frame": None, "energy_net_mj_per_frame": None, "power_w_mean": None,
                "power_w_peak": None, "energy": record}  # fmt: skip
    net = (run["energy_mj"] - idle["mean_w"] * 1000.0 * seconds) / frames if idle else None
    return {
        "energy_mj_per_frame": round(run["energy_mj"] / frames, 4),
        "energy_net_mj_per_frame": round(net, 4) if net is not None else None,
        "power_w_mean": round(run["mean_w"], 4),
        "power_w_peak": round(run["peak_w"], 4),
        "energy": record,
    }
