"""Reading tegrastats' output a line at a time: a line it cannot read is skipped and counted, never fatal.

tegrastats prints one line per interval (the formats: :func:`edgeproof.device.sysinfo.parse_tegrastats`).
A line can come out garbled -- cut short, binary junk, a newer JetPack's layout with a field that is not a
number where one is read -- and one such line must neither crash the measurement (the conditions sampler)
nor stop the power sampler's thread, which made energy *not measurable* for a reason that named the gap,
not the line. Such a line is skipped (to the power meter a missing reading, as a line without the input
rail is), counted, and the first one kept, truncated, for the record: ``bench.json``
``energy.tegrastats_lines`` and ``conditions.json`` ``during.tegrastats_lines``, with a logged warning.
Unreadable is a line where a field read is not a number, or one with none of the fields tegrastats prints
(RAM, CPU, a load, a temperature, a rail). A line cut before the rails but with its other fields is read:
its power reading is the one missing. The board's input rail in a parsed line is :func:`input_rail_mw` (the
power meter's reading), and a recorded trace read as the meter reads it is :func:`trace_samples`. Device
side: Python 3.8.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

from edgeproof.device import ina3221
from edgeproof.device.power_window import Sample
from edgeproof.device.sysinfo import parse_tegrastats

log = logging.getLogger(__name__)

EXAMPLE_CHARS = 120  # how much of the first unreadable line the record and the reason keep


def _known_field(fields: Dict[str, Any]) -> bool:
    """Whether a parsed line carries any field tegrastats prints (an empty parse is not a reading)."""
    scalars = (fields["gpu_load_pct"], fields["emc_load_pct"], fields["ram_mb"])
    return bool(fields["temps_c"] or fields["cpu"] or fields["power_mw"]) or any(v is not None for v in scalars)


def _shown(line: str) -> str:
    text = line.strip()
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + "..."


class TegrastatsLines:
    """The lines one reader took from tegrastats: how many, how many it could not read, the first of those."""

    def __init__(self, reader: str) -> None:
        self.reader = reader  # who read them, for the warning ("power meter", "conditions sampler")
        self.lines = 0
        self.unreadable = 0
        self.first_unreadable: Optional[str] = None

    def parse(self, line: str) -> Optional[Dict[str, Any]]:
        """``line``'s fields (:func:`parse_tegrastats`), or ``None``: a blank line (not counted) or one it
        cannot read (counted; the first kept)."""
        if not line.strip():
            return None
        self.lines += 1
        try:
            fields: Optional[Dict[str, Any]] = parse_tegrastats(line)
        except ValueError:
            fields = None
        if fields is not None and _known_field(fields):
            return fields
        self.unreadable += 1
        if self.first_unreadable is None:
            self.first_unreadable = _shown(line)
        return None

    def problem(self) -> Optional[str]:
        """``tegrastats: 9 of 12 lines readable; first unreadable: '...'``; ``None`` when every line was read."""
        if not self.unreadable:
            return None
        readable = self.lines - self.unreadable
        return f"tegrastats: {readable} of {self.lines} lines readable; first unreadable: {self.first_unreadable!r}"

    def no_rail(self) -> str:
        """Why the power meter got no input rail from these lines: none it could read (named), or lines
        without the rail (and the unreadable ones, if any)."""
        unreadable = self.problem()
        if unreadable and self.unreadable == self.lines:
            return unreadable
        no_rail = "tegrastats printed no board input rail (VDD_IN / POM_5V_IN)"
        return f"{no_rail}; {unreadable}" if unreadable else no_rail

    def record(self) -> Optional[Dict[str, Any]]:
        """What the results keep: ``lines``, ``unreadable``, ``first_unreadable``; ``None``: no line was read."""
        if not self.lines:
            return None
        return {"lines": self.lines, "unreadable": self.unreadable, "first_unreadable": self.first_unreadable}

    def warn(self) -> None:
        """Log a warning when lines were skipped (once, at the end: a garbled stream would flood the log)."""
        if self.unreadable:
            log.warning("%s skipped unreadable lines: %s", self.reader, self.problem())


def input_rail_mw(fields: Optional[Dict[str, Any]]) -> Tuple[Optional[str], Optional[float]]:
    """The board input rail's instantaneous draw in one parsed tegrastats line (:meth:`TegrastatsLines.parse`;
    ``None``: a line it could not read): ``(rail, mW)`` or ``(None, None)``."""
    power = fields["power_mw"] if fields else {}
    for rail in ina3221.INPUT_RAILS:
        if rail in power:
            return rail, float(power[rail][0])
    return None, None


def trace_samples(lines: Sequence[str], interval_s: float) -> Tuple[Optional[str], List[Sample]]:
    """A recorded tegrastats trace as samples ``interval_s`` apart (line i at ``i * interval_s``); a line it
    cannot read is a missing sample, as the live meter reads it."""
    rail, samples, reader = None, [], TegrastatsLines("trace")
    for i, line in enumerate(ln for ln in lines if ln.strip()):
        name, mw = input_rail_mw(reader.parse(line))
        rail = rail or name
        samples.append((i * interval_s, mw))
    return rail, samples
