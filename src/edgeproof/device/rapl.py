"""RAPL energy counters on x86 (``/sys/class/powercap/intel-rapl:N``), read through the system root.

Package zones only (``intel-rapl:N``; the sub-zones ``intel-rapl:N:M`` are parts of them and would
count twice). ``energy_uj`` is cumulative and wraps at ``max_energy_range_uj``. Since Linux 5.10 it is
readable by root only; then energy is not measurable and the reason says so.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from edgeproof.device.sysinfo import SysRoot


def rapl_zones(root: SysRoot) -> List[str]:
    """Package-level RAPL zones (``intel-rapl:N``; sub-zones ``intel-rapl:N:M`` would count twice)."""
    return [
        f"/{p.relative_to(root.root)}" for p in root.glob("/sys/class/powercap/intel-rapl:*") if p.name.count(":") == 1
    ]


def read_rapl(root: SysRoot) -> Tuple[Optional[Dict[str, Tuple[int, int]]], Optional[str]]:
    """``zone -> (energy_uj, max_energy_range_uj)``, or ``(None, reason)`` when RAPL cannot be read."""
    zones = rapl_zones(root)
    if not zones:
        return None, "no RAPL powercap zones (/sys/class/powercap/intel-rapl:*) on this machine"
    out = {}
    for zone in zones:
        energy, why = _counter(root, zone, "energy_uj")
        top, why_top = _counter(root, zone, "max_energy_range_uj")
        if energy is None or top is None:
            return None, why or why_top
        out[zone] = (energy, top)
    return out, None


def _counter(root: SysRoot, zone: str, name: str) -> Tuple[Optional[int], Optional[str]]:
    """One of a zone's integer files, or ``(None, why)`` naming the file and what went wrong."""
    try:
        text = (root.path(zone) / name).read_text().strip()
    except OSError as exc:
        root_only = "; root-only since Linux 5.10" if name == "energy_uj" else ""
        return None, f"{zone}/{name} not readable ({type(exc).__name__}{root_only})"
    if not text.isdigit():
        return None, f"{zone}/{name} holds {text[:40]!r}, not a counter (a non-negative integer)"
    return int(text), None


def rapl_delta_uj(before: Dict[str, Tuple[int, int]], after: Dict[str, Tuple[int, int]]) -> Optional[int]:
    """Energy between two RAPL readings, summed over zones; a counter that wrapped adds its range. ``None``
    when a counter went back by less than half its range: a wrap leaves it near zero after near the top
    (a drop of almost the whole range), so a small drop is a reset or readings out of order, not energy."""
    total = 0
    for zone, (start, top) in before.items():
        end = after[zone][0]
        if end >= start:
            total += end - start
        elif start - end > top // 2:
            total += end + top - start
        else:
            return None
    return total
