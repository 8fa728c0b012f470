"""What the machine is and what state it is in, read through a configurable system root.

Every reading is a file under the system root (``/`` on a real board) or a command's output. With
``--sysroot DIR`` (or ``$EDGEPROOF_SYSROOT``) files are read under ``DIR`` and commands are
replayed from ``DIR/commands/<name>.txt`` (e.g. ``nvpmodel-q.txt``, ``tegrastats.txt``,
``uname-m.txt``), so recorded outputs of a Jetson Nano or Orin are a Jetson's view of the machine
on any computer (the test fixtures are exactly that).

Formats (JetPack 4.6 / 6): ``/proc/device-tree/model`` (NUL-terminated), ``/etc/nv_tegra_release``
(``# R36 (release), REVISION: 4.3, ...``), ``nvpmodel -q`` (``NV Power Mode: MAXN`` then the mode
id), ``/sys/devices/virtual/thermal/thermal_zone*/{type,temp}`` (milli-degrees C), cpufreq and
devfreq (Hz/kHz), Orin's over-current counters ``/sys/class/hwmon/hwmon*/oc*_event_cnt``.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

SYSROOT_ENV = "EDGEPROOF_SYSROOT"
# Zones whose reading is not a temperature of the silicon under load: Jetson Nano's PMIC-Die is a
# fixed 100 C placeholder, thermal-fan-est is a fan-control estimate.
IGNORED_ZONES = ("PMIC-Die", "thermal-fan-est")
_GPU_DEVFREQ = re.compile(r"gpu|ga10b|gv11b|gp10b", re.IGNORECASE)
# The memory controller: its clock bounds every model's bandwidth, so it belongs in the throttle check.
_EMC_DEVFREQ = re.compile(r"emc", re.IGNORECASE)


class SysRoot:
    """Where readings come from: the real machine (``root`` = ``/``) or a recorded one."""

    def __init__(self, root: Optional[Path] = None) -> None:
        env = os.environ.get(SYSROOT_ENV)
        self.root = Path(root) if root is not None else Path(env) if env else Path("/")
        self.recorded = self.root != Path("/")

    def path(self, absolute: str) -> Path:
        """The file standing for ``absolute`` (an absolute path on the machine)."""
        return self.root / absolute.lstrip("/")

    def read(self, absolute: str) -> Optional[str]:
        """A file's text (NULs dropped, stripped), or ``None`` when it is absent or unreadable."""
        try:
            return self.path(absolute).read_text(errors="replace").replace("\x00", "").strip() or None
        except OSError:
            return None

    def glob(self, pattern: str) -> List[Path]:
        """Files matching an absolute glob ``pattern`` under the root, sorted."""
        return sorted(self.root.glob(pattern.lstrip("/")))

    def command(self, argv: List[str], timeout: float = 10.0) -> Optional[str]:
        """A command's stdout: replayed from ``commands/<argv joined by '-'>.txt`` under a recorded root."""
        if self.recorded:
            return self.read("/commands/" + "-".join(a.lstrip("-") for a in argv) + ".txt")
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() or None if proc.returncode == 0 else None


def parse_l4t(text: Optional[str]) -> Optional[str]:
    """``# R36 (release), REVISION: 4.3, ...`` -> ``"36.4.3"`` (``None`` if not that format)."""
    m = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text or "")
    return f"{m.group(1)}.{m.group(2).strip('.')}" if m else None


# `nvpmodel -m <id>` per board (device-tree model substring) and mode name, from NVIDIA's L4T power
# mode tables. The ids differ by board: MAXN is 0 on the Nano but MAXN_SUPER is 2 on the Orin Nano
# Super, and MAXN_SUPER exists only from JetPack 6.2 (L4T 36.4.3).
POWER_MODE_IDS: Dict[str, Dict[str, int]] = {
    "Orin Nano": {"15W": 0, "25W": 1, "MAXN_SUPER": 2, "7W": 3},
    "Jetson Nano": {"MAXN": 0, "5W": 1},
}


def power_mode_id(board_model: Optional[str], mode: str) -> Tuple[Optional[int], str]:
    """The ``nvpmodel -m`` id of ``mode`` on this board, or ``None`` and why it is not known."""
    for board, modes in POWER_MODE_IDS.items():
        if board_model and board in board_model:
            if mode in modes:
                return modes[mode], f"{board}: {mode} is nvpmodel id {modes[mode]}"
            return None, f"{board} has no power mode {mode!r} (known: {sorted(modes, key=modes.get)})"
    return None, f"no power mode table for board {board_model!r} (known: {sorted(POWER_MODE_IDS)})"


def parse_nvpmodel(text: Optional[str]) -> Dict[str, Any]:
    """``nvpmodel -q`` -> ``{"mode": "MAXN", "id": 0}`` (warnings such as ``NVPM WARN`` skipped)."""
    mode, mode_id = None, None
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if line.startswith("NV Power Mode:"):
            mode = line.split(":", 1)[1].strip()
            if i + 1 < len(lines) and lines[i + 1].isdigit():
                mode_id = int(lines[i + 1])
    return {"mode": mode, "id": mode_id}


_TEGRA_TEMP = re.compile(r"\b([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C\b")
_TEGRA_CPU = re.compile(r"CPU \[([^\]]*)\]")
_TEGRA_GR3D = re.compile(r"GR3D_FREQ (\d+)%(?:@\[?(\d+)\]?)?")
_TEGRA_EMC = re.compile(r"EMC_FREQ (\d+)%(?:@(\d+))?")
_TEGRA_RAM = re.compile(r"RAM (\d+)/(\d+)MB")
_TEGRA_POWER = re.compile(r"\b((?:VDD|POM)_[A-Z0-9_]+) (\d+)(?:mW)?/(\d+)(?:mW)?")


def parse_tegrastats(line: str) -> Dict[str, Any]:
    """One tegrastats line (Nano or Orin format) -> temperatures, CPU load/MHz, GPU load, RAM, power.

    Raises ``ValueError`` naming tegrastats and the line when a field it reads is not a number."""
    try:
        return _tegrastats_fields(line)
    except ValueError as exc:
        raise ValueError(f"tegrastats line {line.strip()[:200]!r}: {exc}") from None


def _tegrastats_fields(line: str) -> Dict[str, Any]:
    cpus = []
    m = _TEGRA_CPU.search(line)
    for core in m.group(1).split(",") if m else []:
        if core.strip() == "off":
            cpus.append({"load_pct": None, "mhz": None, "online": False})
            continue
        load, _, mhz = core.partition("%@")
        cpus.append({"load_pct": int(load), "mhz": int(mhz) if mhz.isdigit() else None, "online": True})
    gr3d = _TEGRA_GR3D.search(line)
    emc = _TEGRA_EMC.search(line)
    ram = _TEGRA_RAM.search(line)
    return {
        "temps_c": {name.lower(): float(v) for name, v in _TEGRA_TEMP.findall(line)},
        "cpu": cpus,
        "gpu_load_pct": int(gr3d.group(1)) if gr3d else None,
        "gpu_mhz": int(gr3d.group(2)) if gr3d and gr3d.group(2) else None,
        "emc_load_pct": int(emc.group(1)) if emc else None,
        "emc_mhz": int(emc.group(2)) if emc and emc.group(2) else None,
        "ram_mb": [int(ram.group(1)), int(ram.group(2))] if ram else None,
        "power_mw": {name: [int(a), int(b)] for name, a, b in _TEGRA_POWER.findall(line)},
    }


def _int(text: Optional[str]) -> Optional[int]:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def thermal_zones(root: SysRoot) -> Dict[str, float]:
    """Zone type -> degrees C, from ``/sys/devices/virtual/thermal/thermal_zone*`` (invalid readings skipped)."""
    out: Dict[str, float] = {}
    for zone in root.glob("/sys/devices/virtual/thermal/thermal_zone*"):
        kind = root.read(f"/{zone.relative_to(root.root)}/type") or zone.name
        milli = _int(root.read(f"/{zone.relative_to(root.root)}/temp"))
        if milli is not None and milli > -40000:  # -40 C and below: a zone without a sensor
            out[kind] = milli / 1000.0
    return out


def _devfreq(root: SysRoot) -> Dict[str, Dict[str, Optional[int]]]:
    """Every devfreq device (Hz), named ``gpu:``/``emc:``/``engine:`` + its sysfs name."""
    out: Dict[str, Dict[str, Optional[int]]] = {}
    for dev in root.glob("/sys/class/devfreq/*"):
        rel = f"/{dev.relative_to(root.root)}"
        kind = "gpu" if _GPU_DEVFREQ.search(dev.name) else "emc" if _EMC_DEVFREQ.search(dev.name) else "engine"
        cur, top = _int(root.read(f"{rel}/cur_freq")), _int(root.read(f"{rel}/max_freq"))
        out[f"{kind}:{dev.name}"] = {"cur": cur, "max": top, "hw_max": None}
    return out


def clocks(root: SysRoot) -> Dict[str, Dict[str, Optional[int]]]:
    """The clocks the throttle check judges: ``cpuN`` (kHz, cpufreq), the GPU and EMC (Hz, devfreq).

    Orin's other devfreq engines (VIC, NVDEC, NVJPG, OFA) idle at low clocks and ``jetson_clocks``
    does not pin them, so they are left out (see :func:`engine_clocks`): with them every Orin run
    would read as throttled. So is an offline core (``cpuN/online`` 0, a power mode with fewer cores):
    its cpufreq policy cannot be read. A clock read as nothing is kept (``cur: None``): the throttle
    check counts it as a reason, never as a clock at its maximum.
    """
    out: Dict[str, Dict[str, Optional[int]]] = {}
    for cpu in root.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq"):
        if (root.read(f"/{cpu.parent.relative_to(root.root)}/online") or "").strip() == "0":
            continue  # an offline core (a power mode with fewer cores): its policy cannot be read, nor matters
        rel = f"/{cpu.relative_to(root.root)}"
        out[cpu.parent.name] = {
            "cur": _int(root.read(f"{rel}/scaling_cur_freq")),
            "max": _int(root.read(f"{rel}/scaling_max_freq")) or _int(root.read(f"{rel}/cpuinfo_max_freq")),
            "hw_max": _int(root.read(f"{rel}/cpuinfo_max_freq")),
        }
    out.update({n: c for n, c in _devfreq(root).items() if not n.startswith("engine:")})
    return out


def engine_clocks(root: SysRoot) -> Dict[str, Dict[str, Optional[int]]]:
    """The devfreq engines outside the throttle check (VIC, NVDEC, NVJPG, OFA, ...): recorded only."""
    return {n: c for n, c in _devfreq(root).items() if n.startswith("engine:")}


def oc_counters(root: SysRoot) -> Dict[str, int]:
    """Soctherm over-current event counters (Orin: ``/sys/class/hwmon/hwmon*/oc*_event_cnt``)."""
    out = {}
    for path in root.glob("/sys/class/hwmon/hwmon*/oc*_event_cnt"):
        value = _int(root.read(f"/{path.relative_to(root.root)}"))
        if value is not None:
            out[f"{path.parent.name}/{path.name}"] = value
    return out


def _jetson_clocks(root: SysRoot) -> Optional[str]:
    """``jetson_clocks --show`` (root only: on a runner through the sudoers rule ``ci/jetson`` installs)."""
    shown = root.command(["jetson_clocks", "--show"])
    if shown is None and not root.recorded:
        shown = root.command(["sudo", "-n", "jetson_clocks", "--show"])
    return shown


def jetson_facts(root: SysRoot) -> Optional[Dict[str, Any]]:
    """Device-tree model, L4T release, power mode and ``jetson_clocks --show``; ``None`` off a Jetson."""
    model = root.read("/proc/device-tree/model")
    release = root.read("/etc/nv_tegra_release")
    if not (release or (model and "jetson" in model.lower())):
        return None
    return {
        "model": model,
        "nv_tegra_release": release.splitlines()[0] if release else None,
        "l4t": parse_l4t(release),
        "power_mode": parse_nvpmodel(root.command(["nvpmodel", "-q"])),
        "jetson_clocks": _jetson_clocks(root),
    }


def cpu_online(root: SysRoot) -> Optional[int]:
    """Online CPUs from ``/sys/devices/system/cpu/online`` (``0-3,5``); the OS's count on a live machine."""
    text = root.read("/sys/devices/system/cpu/online")
    if text is None:
        return None if root.recorded else os.cpu_count()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi) - int(lo) + 1 if hi else 1
    return count


def load_average(root: SysRoot) -> Optional[float]:
    """The 1-minute load average (``/proc/loadavg``): other work competing for the CPUs."""
    text = root.read("/proc/loadavg")
    try:
        return float(text.split()[0]) if text else None
    except ValueError:
        return None


def machine_arch(root: SysRoot) -> str:
    """``uname -m`` of the machine (a recorded root may carry ``commands/uname-m.txt``)."""
    return (root.command(["uname", "-m"]) if root.recorded else None) or platform.machine()


def machine_facts(root: SysRoot) -> Dict[str, Any]:
    """Everything a profile's ``match`` and the conditions need, read once before a run."""
    return {
        "sysroot": str(root.root),
        "arch": machine_arch(root),
        "jetson": jetson_facts(root),
        "thermal_c": thermal_zones(root),
        "clocks": clocks(root),
        "engine_clocks": engine_clocks(root),
        "oc_counters": oc_counters(root),
        "cpus_online": cpu_online(root),
        "load_avg_1m": load_average(root),
    }
