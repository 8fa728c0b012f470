"""When a DVC stage process and the ``dvc repro`` running it began, and each stage process's note of
what it took (read by the gate's MLflow record as ``time_s.<stage>``).

Shared plumbing (``stages/_common.py`` notes every stage's time): no stage's result depends on it,
so it is not a dep of every stage in dvc.yaml.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path


def _proc_start_ms(pid: int) -> int | None:
    """When process ``pid`` started (Linux ``/proc``: clock ticks after boot, plus when boot was by this clock).

    The boot time is the wall clock now less the time since boot now, to the microsecond: ``/proc/stat``'s
    ``btime`` is whole seconds, so every process start read with it was up to a second early (0.78 s on the
    reference machine), each stage's ``time_s`` as much too long, and their sum could pass the run's span,
    which had the record refused as edited (the COCO-subset test's missing MLflow record)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = _boot_s()
    except (OSError, IndexError, StopIteration, ValueError):
        return None
    return int((boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")) * 1000)  # field 22 of stat: starttime


def _boot_s() -> float:
    """The wall-clock time of boot, as the kernel counts process start times from it."""
    since_boot = getattr(time, "CLOCK_BOOTTIME", None)
    if since_boot is not None:
        return time.time() - time.clock_gettime(since_boot)
    lines = Path("/proc/stat").read_text().splitlines()
    return float(next(int(line.split()[1]) for line in lines if line.startswith("btime")))


def _is_dvc_run(argv: list[str]) -> bool:
    names = [Path(a).name for a in argv]
    return "dvc" in names and any(a in ("repro", "exp", "exec-run", "queue") for a in names[names.index("dvc") + 1 :])


def repro_started_ms(max_depth: int = 12) -> int | None:
    """When the ``dvc repro`` / ``dvc exp run`` (or queue worker) running this process began: the
    start time of the nearest ancestor process whose command line is one; ``None`` when there is
    none (the stage run by hand) or no ``/proc`` (not Linux)."""
    pid = os.getppid()
    for _ in range(max_depth):
        if pid <= 1:
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None
        if _is_dvc_run([a for a in argv if a]):
            return _proc_start_ms(pid)
        pid = parent
    return None


STAGE_TIMES = "stage_times"
"""The state folder's notes of what each stage process took: ``stage_times/<repro start ms>/<stage>.json``."""
NOTES_KEPT_MS = 7 * 24 * 3_600_000
"""Notes of repros older than this are deleted when a stage writes a note."""


def process_start_ms() -> int | None:
    """When this process started (``None`` without ``/proc``)."""
    return _proc_start_ms(os.getpid())


def note_stage_time(state: Path, stage: str) -> Path | None:
    """Note what this stage process took (its start to now) under the ``dvc repro`` running it, for
    the gate's record (:func:`stage_seconds`); nothing when the stage runs by hand. Only a stage
    process writes one: outputs DVC restores from its cache (or checks out again) run no process."""
    repro = repro_started_ms()
    if repro is None:
        return None
    end = int(time.time() * 1000)
    start = process_start_ms() or end
    notes = state / STAGE_TIMES
    for old in notes.glob("*") if notes.is_dir() else []:
        if old.name.isdigit() and int(old.name) < end - NOTES_KEPT_MS:
            shutil.rmtree(old, ignore_errors=True)
    path = notes / str(repro) / f"{stage}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"start_ms": start, "end_ms": end}))
    return path
