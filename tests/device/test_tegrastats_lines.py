"""A tegrastats line the board's samplers cannot read is skipped and counted, never the measurement's crash.

Before: such a line (a field that is not a number, bytes that are not UTF-8) raised in the conditions
sampler, and the measurement ended as a crash (exit 6, inconclusive with "fix the board"); read by the
power meter's thread, it ended the thread, and energy was "not measurable" for a gap or a missing rail,
the line never named. Now the good lines keep their figures, the results say how many lines were skipped
and show the first, and where none (or too few) could be read the energy rule is inconclusive, the lines named.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from edgeproof.device.conditions import Sampler
from edgeproof.device.sysinfo import SysRoot
from edgeproof.device.tegrastats import trace_samples
from tests.device.test_energy import measure_with_fake_tegrastats

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOOD = "12-06-2026 18:40:00 RAM 3012/7620MB CPU [35%@1728] GR3D_FREQ 97% tj@56.7C VDD_IN 6000mW/6000mW"
# a newer layout with a CPU core field that is not a number: int("n/a") raised ValueError
NEWER = "12-06-2026 18:40:00 RAM 3012/7620MB CPU [35%@1728,n/a] GR3D_FREQ 97% tj@56.7C VDD_IN 6000mW/6000mW"
CUT = "12-06-2026 18:40:00 RAM 30"  # cut short before any field: nothing to read
JUNK = rb"\377\376\001junk"  # printf: bytes that are not UTF-8 (a UnicodeDecodeError in a text pipe)


def _printing(lines: list[bytes]) -> str:
    """Shell lines printing each of ``lines`` (octal escapes read, ``%`` as is) 30 ms apart."""
    return "".join(f"  printf '{line.decode().replace('%', '%%')}\\n'\n  sleep 0.03\n" for line in lines)


def _tegrastats(lines: list[bytes]) -> str:
    """A stand-in tegrastats printing ``lines`` over and over."""
    return "#!/bin/sh\nwhile true; do\n" + _printing(lines) + "done\n"


# an unreadable line first: the conditions sampler's own tegrastats prints it before a short run ends
MIXED = _tegrastats([NEWER.encode(), GOOD.encode(), JUNK, GOOD.encode(), CUT.encode(), GOOD.encode()])
GARBAGE = _tegrastats([NEWER.encode(), JUNK, CUT.encode()])
# three good lines, then only unreadable ones (a board whose tegrastats went wrong during the idle window)
TOO_FEW = "#!/bin/sh\n" + _printing([GOOD.encode()] * 3) + GARBAGE.split("\n", 1)[1]


def test_the_real_formats_are_all_read():
    """Every recorded line of a Nano (R32) and an Orin (R36), the line cut before its rails included (its
    power reading is the one missing, as before), is read: nothing real is called unreadable."""
    from edgeproof.device.tegrastats import TegrastatsLines

    reader = TegrastatsLines("test")
    files = sorted((FIXTURES / "power").glob("*.txt"))
    files += sorted((FIXTURES / "sysroot").glob("*/commands/tegrastats.txt"))
    for path in files:
        for line in path.read_text().splitlines():
            assert reader.parse(line) is not None, (path.name, line)
    assert reader.lines > 30 and reader.unreadable == 0 and reader.record()["first_unreadable"] is None


def test_a_recorded_trace_skips_a_line_it_cannot_read():
    rail, samples = trace_samples([GOOD, NEWER, "\ufffd\ufffd\x01junk", GOOD], interval_s=1.0)
    assert rail == "VDD_IN" and samples == [(0.0, 6000.0), (1.0, None), (2.0, None), (3.0, 6000.0)]


def test_the_conditions_sampler_skips_unreadable_lines_and_counts_them(tmp_path):
    """A recorded Orin whose tegrastats holds a newer-layout line, binary junk and a cut line: the run's
    conditions keep the two good lines' readings and say what was skipped (it raised ValueError)."""
    root = tmp_path / "orin"
    shutil.copytree(FIXTURES / "sysroot" / "jetson-orin-nano", root)
    commands = root / "commands" / "tegrastats.txt"
    good = commands.read_bytes().rstrip(b"\n").split(b"\n")
    commands.write_bytes(b"\n".join([good[0], NEWER.encode(), b"\xff\xfe\x01junk", good[1], CUT.encode()]) + b"\n")
    during = Sampler(SysRoot(root), interval_s=0.01).start().stop()
    assert during["tegrastats_lines"] == {"lines": 5, "unreadable": 3, "first_unreadable": NEWER}
    assert during["gpu_load_pct"]["samples"] == 2 and during["max_temp_c"]["tegrastats:tj"] == 57.2
    assert len(during["tegrastats"]) == 2


def test_the_power_meter_keeps_reading_past_a_line_it_cannot_read(tmp_path, monkeypatch, caplog):
    """The meter's thread died at the first unreadable line: every reading after it was lost and the window
    was "not measurable" for a gap, the line never named. Now the good lines give the figure."""
    import edgeproof.device.energy as energy

    fake = tmp_path / "bin" / "tegrastats"
    fake.parent.mkdir()
    fake.write_text(MIXED)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(energy.ina3221, "input_rail", lambda root: (None, None))  # tegrastats, on any machine
    meter = energy.PowerMeter(SysRoot()).start()
    time.sleep(0.3)
    t0 = meter.mark()
    time.sleep(0.6)
    t1 = meter.mark()
    meter.stop()
    assert meter.source == "tegrastats:VDD_IN" and meter.unmeasured(t0, t1) is None
    assert meter.window(t0, t1)["mean_w"] == pytest.approx(6.0)
    record = meter.lines.record()
    assert record["unreadable"] >= 3 and record["lines"] >= 9 and record["first_unreadable"] == NEWER
    assert "power meter skipped unreadable lines: tegrastats:" in caplog.text


def test_a_measurement_with_unreadable_tegrastats_lines_is_measured_and_says_so(bundle, tmp_path, monkeypatch):
    """Through a whole measurement: it crashed (exit 6, the conditions sampler's ValueError); now energy is
    measured from the good lines and both records count the skipped ones."""
    bench = measure_with_fake_tegrastats(bundle, tmp_path, monkeypatch, MIXED)
    record = bench["energy"]
    assert record["measurable"] and bench["power_w_mean"] == pytest.approx(6.0)
    lines = record["tegrastats_lines"]
    assert lines["unreadable"] >= 1 and lines["lines"] > lines["unreadable"] and lines["first_unreadable"]
    conditions = json.loads((bundle.parent / "out" / "conditions.json").read_text())
    assert conditions["during"]["tegrastats_lines"]["unreadable"] >= 1


def test_no_readable_tegrastats_line_is_an_inconclusive_energy_rule_naming_the_lines(bundle, tmp_path, monkeypatch):
    """Every line unreadable: energy is not measurable, and the gate's energy rule is inconclusive with the
    count and the first line, never a pass and never a crash."""
    from edgeproof.verdict.device import run_device_gate
    from tests.device.conftest import base_params, rule_named

    bench = measure_with_fake_tegrastats(bundle, tmp_path, monkeypatch, GARBAGE)
    record = bench["energy"]
    assert record["measurable"] is False and bench["energy_mj_per_frame"] is None and record["source"] is None
    lines = record["tegrastats_lines"]
    assert lines["unreadable"] == lines["lines"] > 0
    assert record["reason"] == f"tegrastats: 0 of {lines['lines']} lines readable; first unreadable: {NEWER!r}"
    rules = base_params(tmp_path, {"gate": {"max_energy_mj_per_frame": 1000.0, "max_power_w": 50.0}})
    out = bundle.parent / "out"
    assert run_device_gate(bundle, "cpu-ci", out, rules_params=rules) == 3
    energy = rule_named(json.loads((out / "gate.json").read_text()), "energy")
    assert energy["status"] == "inconclusive" and "tegrastats: 0 of" in energy["reason"]


def test_too_few_readable_lines_name_the_unreadable_ones_with_the_gap(bundle, tmp_path, monkeypatch):
    """Three good lines, then only unreadable ones: the window's reason is the edge no reading covers, and
    why readings are missing (the unreadable lines) is said with it."""
    bench = measure_with_fake_tegrastats(bundle, tmp_path, monkeypatch, TOO_FEW, idle_s=1.0)
    record = bench["energy"]
    assert record["measurable"] is False and record["source"] == "tegrastats:VDD_IN"
    assert record["reason"].startswith("no power reading within 0.3 s (3 intervals) of the window's start")
    assert "; tegrastats: 3 of " in record["reason"] and f"first unreadable: {NEWER!r}" in record["reason"]
