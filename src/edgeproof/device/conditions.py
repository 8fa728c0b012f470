"""The conditions of a measurement: temperatures, clocks and over-current events during the run.

A sampler thread reads the thermal zones and clocks while the timed runs go on (and ``tegrastats``
on a board). A run that throttled -- a temperature over the profile's limit, clocks below their
maximum under load (profiles with ``require_max_clocks``), over-current counters that moved, or the
board in another power mode than the profile's -- is *inconclusive*: its numbers say nothing about
the model. So is a run whose record cannot show it did not throttle: a clock that could not be read
(under ``require_max_clocks``; on a Jetson a GPU clock is required), an over-current counter read on
one side of the run only, or none at all on a Jetson Orin, which has them.

A tegrastats line the sampler cannot read is skipped and counted (``during.tegrastats_lines``,
:mod:`edgeproof.device.tegrastats`), never the run's crash. tegrastats' temperatures are the thermal
zones the sampler reads itself, so its lines are a second reading of them (and the GPU and memory
controller load, recorded only): none readable loses no judged figure.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from typing import Any, Dict, List, Optional

from edgeproof.device.sysinfo import (
    IGNORED_ZONES,
    SysRoot,
    clocks,
    oc_counters,
    power_mode_id,
    thermal_zones,
)
from edgeproof.device.tegrastats import TegrastatsLines
from edgeproof.profiles import Profile

log = logging.getLogger(__name__)

CLOCK_TOLERANCE = 0.99  # a clock under 99 % of its maximum while loaded counts as throttled
_IGNORED_TEGRA = ("pmic",)  # tegrastats' PMIC@100C on a Nano is a fixed placeholder


class Sampler:
    """Samples thermal zones, clocks and tegrastats in the background between ``start`` and ``stop``."""

    def __init__(self, root: SysRoot, interval_s: float = 0.5) -> None:
        self.root = root
        self.interval_s = interval_s
        self.samples: List[Dict[str, Any]] = []
        self.tegrastats: List[Dict[str, Any]] = []
        self.lines = TegrastatsLines("conditions sampler")
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._proc: Optional[subprocess.Popen] = None
        self.oc_before: Dict[str, int] = {}

    def _loop(self) -> None:
        while True:
            self.samples.append({"thermal_c": thermal_zones(self.root), "clocks": clocks(self.root)})
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> Sampler:
        """Read the over-current counters and start sampling (and ``tegrastats`` where it exists)."""
        self.oc_before = oc_counters(self.root)
        if not self.root.recorded and shutil.which("tegrastats"):
            ms = str(int(self.interval_s * 1000))
            self._proc = subprocess.Popen(  # errors="replace": a byte that is not UTF-8 is one unreadable line
                ["tegrastats", "--interval", ms],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                errors="replace",
            )
        self._thread = threading.Thread(target=self._loop, name="edgeproof-conditions", daemon=True)
        self._thread.start()
        return self

    def _tegrastats_lines(self) -> List[str]:
        if self.root.recorded:
            return (self.root.command(["tegrastats"]) or "").splitlines()
        if self._proc is None:
            return []
        self._proc.terminate()
        try:
            out, _ = self._proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out, _ = self._proc.communicate()
        return (out or "").splitlines()

    def stop(self) -> Dict[str, Any]:
        """Stop sampling; the samples, tegrastats readings and over-current counters before/after."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        parsed = [self.lines.parse(line) for line in self._tegrastats_lines()]
        self.tegrastats = [fields for fields in parsed if fields is not None]
        self.lines.warn()
        return {
            "samples": len(self.samples),
            "interval_s": self.interval_s,
            "max_temp_c": _max_temps(self.samples, self.tegrastats),
            "min_clock_ratio": min_clock_ratios(self.samples),
            "oc_counters_before": self.oc_before,
            "oc_counters_after": oc_counters(self.root),
            "gpu_load_pct": _spread([r.get("gpu_load_pct") for r in self.tegrastats]),
            "emc_load_pct": _spread([r.get("emc_load_pct") for r in self.tegrastats]),
            "emc_mhz": _spread([r.get("emc_mhz") for r in self.tegrastats]),
            "tegrastats": self.tegrastats[:50],
            "tegrastats_lines": self.lines.record(),  # None: no tegrastats here
        }


def _spread(values: List[Any]) -> Optional[Dict[str, float]]:
    """Mean/min/max of the tegrastats readings that carry a value (``None``: none did, e.g. off a Jetson)."""
    got = [float(v) for v in values if v is not None]
    if not got:
        return None
    return {"mean": round(sum(got) / len(got), 2), "min": min(got), "max": max(got), "samples": len(got)}


def _max_temps(samples: List[Dict[str, Any]], tegra: List[Dict[str, Any]]) -> Dict[str, float]:
    out: Dict[str, float] = {}
    readings = [(z, t) for s in samples for z, t in s["thermal_c"].items() if z not in IGNORED_ZONES]
    readings += [(f"tegrastats:{z}", t) for r in tegra for z, t in r["temps_c"].items() if z not in _IGNORED_TEGRA]
    for zone, temp in readings:
        out[zone] = max(temp, out.get(zone, temp))
    return out


def min_clock_ratios(samples: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Each clock's lowest ``cur / max`` over the samples. A clock whose reading was missing, unreadable or
    0 in any sample has ``ratio: None`` from then on: it cannot show the clock stayed at its maximum."""
    out: Dict[str, Dict[str, Any]] = {}
    for s in samples:
        for name, c in s["clocks"].items():
            cur, top = c.get("cur"), c.get("max")
            if not cur or not top or cur < 0 or top < 0:
                out[name] = {"ratio": None, "cur": cur, "max": top}
            elif name not in out or (out[name]["ratio"] is not None and cur / top < out[name]["ratio"]):
                out[name] = {"ratio": round(cur / top, 4), "cur": cur, "max": top}
    return out


# What the board's sampler always records in ``during``: a record without one of them cannot show the
# run was as the profile requires, so it is a reason, never a clean run.
DURING_KEYS = ("max_temp_c", "min_clock_ratio", "oc_counters_before", "oc_counters_after")


def _temperature_reasons(profile: Profile, during: Dict[str, Any]) -> List[str]:
    temps = during["max_temp_c"]
    # Every Jetson has thermal zones (and tegrastats): there no reading means a damaged record, not a cool
    # board. A cloud VM or laptop often exposes none, so for a profile that names no Jetson and does not
    # demand board-level readings (require_max_clocks), none is what the machine has.
    if not temps and (profile.match.jetson_model is not None or profile.require_max_clocks):
        return [f"no temperature readings: cannot show the run stayed under max_temp_c {profile.max_temp_c:g}"]
    return [
        f"temperature {zone} reached {temp:.1f} C > max_temp_c {profile.max_temp_c:g}"
        for zone, temp in sorted(temps.items())
        if temp > profile.max_temp_c
    ]


def _load_reason(profile: Profile, facts: Dict[str, Any]) -> List[str]:
    load, cpus, limit = facts.get("load_avg_1m"), facts.get("cpus_online"), profile.max_load_per_cpu
    if limit is None:
        return []
    if load is None or not cpus:
        return [f"no load reading (load_avg_1m {load!r}, cpus_online {cpus!r}): cannot show max_load_per_cpu {limit:g}"]
    if load / cpus > limit:
        return [f"machine busy before the run: load {load:g} on {cpus} CPUs > {limit:g}/CPU"]
    return []


def _jetson(profile: Profile, facts: Dict[str, Any]) -> bool:
    """A Jetson profile, or a machine that reads as one: its GPU clock (devfreq) is always there."""
    return profile.match.jetson_model is not None or bool(facts.get("jetson"))


def clock_reasons(profile: Profile, facts: Dict[str, Any], ratios: Dict[str, Dict[str, Any]]) -> List[str]:
    """Under ``require_max_clocks``: every clock read at its maximum (:func:`min_clock_ratios`), a clock that
    could not be read a reason, and on a Jetson a GPU clock among them (the one ``jetson_clocks`` matters
    most for; without it a throttled GPU would pass)."""
    if not profile.require_max_clocks:
        return []
    if not ratios:
        return ["no clock readings: cannot show the clocks stayed at their maximum"]
    reasons = []
    if _jetson(profile, facts) and not any(name.startswith("gpu:") for name in ratios):
        reasons.append("no GPU clock reading (devfreq gpu): cannot show the GPU stayed at its maximum")
    for name, r in sorted(ratios.items()):
        if r["ratio"] is None:
            why = "clock {} not readable (cur {!r}, max {!r}): cannot show it stayed at its maximum"
            reasons.append(why.format(name, r.get("cur"), r.get("max")))
        elif r["ratio"] < CLOCK_TOLERANCE:
            reasons.append(f"clock {name} at {r['cur']} of max {r['max']} ({r['ratio']:.0%}) under load")
    return reasons


def _orin(facts: Dict[str, Any]) -> bool:
    """A Jetson Orin, whose soctherm exposes over-current counters (``oc*_event_cnt``); a Nano (L4T R32) has none."""
    return "orin" in str((facts.get("jetson") or {}).get("model") or "").lower()


def _overcurrent_reasons(facts: Dict[str, Any], during: Dict[str, Any]) -> List[str]:
    before, after = during["oc_counters_before"], during["oc_counters_after"]
    reasons = []
    for name in sorted(set(before) ^ set(after)):
        when = "before" if name in before else "after"
        reasons.append(f"over-current counter {name} read only {when} the run: cannot show it did not move")
    for name, count in sorted(after.items()):
        if name in before and count > before[name]:
            reasons.append(f"over-current counter {name} moved {before[name]} -> {count} (soctherm throttled)")
    if not before and not after and _orin(facts):
        why = "no over-current counters (oc*_event_cnt) on a Jetson Orin: cannot show soctherm did not throttle"
        reasons.append(why)
    return reasons


def throttle_reasons(profile: Profile, facts: Dict[str, Any], during: Dict[str, Any]) -> List[str]:
    """Why the run's numbers cannot be trusted (empty: conditions were as the profile requires)."""
    missing = [k for k in DURING_KEYS if k not in during]
    if missing:
        return ["conditions.json during: no {}: cannot show the run did not throttle".format(", ".join(missing))]
    reasons = _temperature_reasons(profile, during) + _overcurrent_reasons(facts, during)
    reasons += clock_reasons(profile, facts, during["min_clock_ratio"])
    reasons += _load_reason(profile, facts)
    if profile.power_mode is not None:
        jetson = facts.get("jetson") or {}
        mode = (jetson.get("power_mode") or {}).get("mode")
        if mode != profile.power_mode:
            wanted, _why = power_mode_id(jetson.get("model"), profile.power_mode)
            fix = f"sudo nvpmodel -m {wanted}" if wanted is not None else "sudo nvpmodel"
            reasons.append(f"power mode {mode!r}, profile requires {profile.power_mode!r} ({fix})")
    return reasons
