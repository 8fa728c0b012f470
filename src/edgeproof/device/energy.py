"""Energy per frame: the board's input power integrated over the end-to-end window.

Sources, in order of preference (the first one this machine offers is used):

- The INA3221 power monitor's sysfs nodes on a Jetson (:mod:`edgeproof.device.ina3221`): the same
  input rail tegrastats shows, each sample timed exactly when it is read.
- ``tegrastats`` on a Jetson: the board's input rail, ``VDD_IN 4673mW/4673mW`` on Orin (L4T R35/R36)
  or ``POM_5V_IN 943/943`` on the Nano (R32); the first number is the instantaneous draw in mW (the
  second a running average, not used). Lines are timestamped as they arrive (``stdbuf -oL``; else
  start + i x interval); a line without the rail is a missing sample (skipped, the integral spans
  the gap), and so is a line it cannot read at all, counted in ``energy.tegrastats_lines``
  (:mod:`edgeproof.device.tegrastats`). A draw spike (an over-current event) is integrated as read
  and sets the peak.
- RAPL on x86 (``/sys/class/powercap/intel-rapl:N/energy_uj``, package zones only so no energy is
  counted twice): a cumulative counter that wraps at ``max_energy_range_uj``. It covers the CPU
  package (and DRAM on some parts), not the whole machine; the record says ``rapl:package``.
- Otherwise energy is *not measurable* and the record says why. Nothing is ever estimated.

Power samples are integrated with the trapezoid rule, linearly interpolated at the window's edges
and across a missing reading. A window is *not measurable* when its readings do not cover it
(:func:`edgeproof.device.power_window.min_readings` and ``MAX_GAP_INTERVALS``): no reading within three
intervals of an edge, a gap of more than three intervals inside it, fewer than half the readings
its length should have, or none inside it at all (``energy.inside_samples``: a figure interpolated
between readings outside the timed frames is not read); or a reading it rests on is impossible (at or
below 0 W or not finite, a RAPL counter that did not advance:
:func:`~edgeproof.device.power_window.reading_problem`, a sensor fault the device gate would otherwise
call an invalid figure, failing the pull request for the board's fault);
``energy.reason`` says which (:meth:`PowerMeter.unmeasured`), and how many tegrastats lines could not
be read where some could not (``tegrastats: 0 of 12 lines readable; first unreadable: '...'``). A gap is
never filled in. The figures bench.json records from a window (gross and net energy per frame):
:mod:`edgeproof.device.energy_record`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from edgeproof.device import ina3221
from edgeproof.device.power_window import Sample, counter_window, reading_problem, window_power, window_problem
from edgeproof.device.rapl import rapl_delta_uj, read_rapl
from edgeproof.device.sysinfo import SysRoot
from edgeproof.device.tegrastats import TegrastatsLines, input_rail_mw

INTERVAL_S = 0.1  # tegrastats --interval 100 / RAPL poll period
IDLE_S = 3.0  # idle draw measured over this long just before the run


def used_ram_mb(root: SysRoot) -> Optional[float]:
    """RAM in use (MemTotal - MemAvailable, MB) from ``/proc/meminfo``: on a Jetson it includes the GPU's share."""
    fields = {}
    for line in (root.read("/proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0])
    if "MemTotal" not in fields or "MemAvailable" not in fields:
        return None
    return (fields["MemTotal"] - fields["MemAvailable"]) / 1024.0


class PowerMeter:
    """Samples the board's power in the background; :meth:`window` gives a time window's figures."""

    def __init__(self, root: SysRoot, interval_s: float = INTERVAL_S) -> None:
        self.root, self.interval_s = root, interval_s
        self.source: Optional[str] = None
        self.reason: Optional[str] = None
        self.samples: List[Sample] = []  # tegrastats: (t, mW); RAPL: (t, cumulative mJ)
        self.ram_mb: List[Tuple[float, float]] = []  # tegrastats: (t, RAM in use, MB)
        self.lines = TegrastatsLines("power meter")  # tegrastats' lines: how many could not be read
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._proc: Optional[subprocess.Popen] = None
        self._stderr: Optional[Any] = None
        self._rapl: Optional[Dict[str, Tuple[int, int]]] = None
        self._rapl_mj = 0.0
        self._rapl_lock = threading.Lock()
        self._ina: Optional[ina3221.Reader] = None
        self._started = 0.0
        self._last_mark: Optional[float] = None
        self.clock = "counter read at each window edge"  # how sample times are known (RAPL)

    def start(self) -> PowerMeter:
        """Pick the source and start sampling; without one, ``reason`` says why energy is not measurable.

        Preference: the INA3221 sysfs nodes (exact sample times), tegrastats, RAPL.
        """
        if self.root.recorded:
            self.reason = f"recorded system root {self.root.root}: power is read live only, never replayed"
            return self
        rail, self._ina = ina3221.input_rail(self.root)
        if rail is not None:
            self.source, self.clock = f"ina3221:{rail}", "read time (sysfs)"
            self._thread = threading.Thread(target=self._poll_ina, name="edgeproof-power", daemon=True)
        elif shutil.which("tegrastats"):
            self._start_tegrastats()
        else:
            self._rapl, self.reason = read_rapl(self.root)
            if self._rapl is None:
                return self
            self.source = "rapl:package"
            self.samples.append((time.perf_counter(), 0.0))
            self._thread = threading.Thread(target=self._poll_rapl, name="edgeproof-power", daemon=True)
        assert self._thread is not None
        self._thread.start()
        return self

    def _start_tegrastats(self) -> None:
        # into a pipe, tegrastats' stdio buffers ~4 KB: lines would arrive in bursts with wrong
        # arrival times. stdbuf -oL makes it line-buffered; without stdbuf, line i is dated
        # start + i * interval instead (tegrastats prints one line per interval from the start).
        argv = ["tegrastats", "--interval", str(int(self.interval_s * 1000))]
        self.clock = "arrival (stdbuf -oL)" if shutil.which("stdbuf") else "start + index x interval"
        if shutil.which("stdbuf"):
            argv = ["stdbuf", "-oL", *argv]
        self._started = time.perf_counter()
        # read at stop (why it printed no rail, if it exited), closed there
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        # errors="replace": a byte that is not UTF-8 makes one unreadable line, not a dead sampler thread
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._stderr, text=True, errors="replace")
        self._thread = threading.Thread(target=self._read_tegrastats, name="edgeproof-power", daemon=True)

    def _poll_ina(self) -> None:
        assert self._ina is not None
        while True:
            self.samples.append((time.perf_counter(), self._ina()))
            ram = used_ram_mb(self.root)
            if ram is not None:
                self.ram_mb.append((time.perf_counter(), ram))
            if self._stop.wait(self.interval_s):
                return

    def _read_tegrastats(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for i, line in enumerate(self._proc.stdout):
            now = time.perf_counter() if self.clock.startswith("arrival") else self._started + i * self.interval_s
            fields = self.lines.parse(line)  # None: unreadable (counted) or blank, a missing reading either way
            rail, mw = input_rail_mw(fields)
            if rail and not self.source:
                self.source = f"tegrastats:{rail}"
            self.samples.append((now, mw))
            if fields and fields["ram_mb"]:
                self.ram_mb.append((now, float(fields["ram_mb"][0])))

    def poll(self) -> None:
        """One RAPL reading now (also called at window edges so a window's energy is exact). Under a lock:
        the sampling thread and :meth:`mark` both poll, and an earlier reading differenced after a later
        one would read as a counter wrap (262 kJ)."""
        with self._rapl_lock:
            if self._rapl is None:
                return
            reading, _ = read_rapl(self.root)
            if reading is None:
                return
            delta = rapl_delta_uj(self._rapl, reading)
            if delta is None:  # never guessed across: the whole run's energy is not measurable
                self.source, self._rapl = None, None
                self.reason = "RAPL energy_uj went back by less than half its range (a reset, not a wrap)"
                return
            self._rapl_mj += delta / 1000.0
            self._rapl = reading
            self.samples.append((time.perf_counter(), self._rapl_mj))

    def _poll_rapl(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def mark(self) -> float:
        """The time now, as a window edge (a RAPL reading is taken right there)."""
        self.poll()
        self._last_mark = time.perf_counter()
        return self._last_mark

    def _await_reading_after_last_mark(self) -> None:
        """A window's last edge is interpolated from the reading after it: a run that ends within one
        interval of its last mark would otherwise stop the source before that reading arrives."""
        if self.source is None or self._last_mark is None:
            return
        deadline = time.perf_counter() + 3 * self.interval_s
        while time.perf_counter() < deadline and not any(t > self._last_mark for t, _ in self.samples[-3:]):
            time.sleep(self.interval_s / 10.0)

    def stop(self) -> None:
        """Stop sampling (tegrastats terminated, its remaining lines read)."""
        self._await_reading_after_last_mark()
        self._stop.set()
        exited = self._proc.poll() if self._proc is not None else None  # it ended by itself, before terminate
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.lines.warn()
        if self.source is None and self.reason is None:
            self.reason = self._tegrastats_exit(exited) or self.lines.no_rail()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _tegrastats_exit(self, status: Optional[int]) -> Optional[str]:
        """Why tegrastats stopped on its own (its exit status and the end of its stderr); None if it ran."""
        if status is None or self._stderr is None:
            return None
        self._stderr.seek(0)
        said = " ".join(self._stderr.read().split())[-200:]
        return "tegrastats exited with status {}{} before printing a board input rail".format(
            status, ": " + said if said else ""
        )

    def window(self, t0: float, t1: float) -> Optional[Dict[str, Any]]:
        """Energy/mean/peak over ``[t0, t1]`` from this meter's source (``None``: nothing to integrate)."""
        if self.source is None:
            return None
        if self.source.startswith("rapl"):
            return counter_window(self.samples, t0, t1, self.interval_s)
        return window_power(self.samples, t0, t1, self.interval_s)

    def unmeasured(self, t0: float, t1: float) -> Optional[str]:
        """Why :meth:`window` has no figure for ``[t0, t1]`` (``None``: it has one): no source (``reason``),
        or the readings it took there (:func:`~edgeproof.device.power_window.window_problem`: a stalled
        sampler, too few readings, an edge no reading covers; :func:`~edgeproof.device.power_window.reading_problem`:
        a reading at or below 0 W, a stuck counter), as ``energy.reason`` records it."""
        if self.source is None:
            return self.reason
        counter = self.source.startswith("rapl")
        why = window_problem(self.samples, t0, t1, self.interval_s) or reading_problem(self.samples, t0, t1, counter)
        skipped = self.lines.problem()  # lines it could not read are why readings are missing: said with it
        return f"{why}; {skipped}" if why and skipped else why

    def ram_in_use_mb(self, t0: float, t1: float) -> Optional[float]:
        """The highest system RAM in use (tegrastats, GPU included on unified memory) in ``[t0, t1]``,
        widened by one interval each side (a window shorter than the interval still gets its reading)."""
        got = [mb for t, mb in self.ram_mb if t0 - self.interval_s <= t <= t1 + self.interval_s]
        return max(got) if got else None
