"""What ``peak_memory_mb`` covers (review energymem, finding 5): the device's was the measuring process's
``VmHWM`` since its start, so the bundle's ground truth parsed before the session (55 MB above anything
the model held for a large val set) set the figure the ``max_peak_memory_mb`` rule judges. The peak is
reset just before the gated session is built, on the board and in the build side's footprint alike, and
the record says so."""

from __future__ import annotations

import json

from edgeproof.device.memory import MemoryMonitor, read_status_kb

TRANSIENT_MIB = 256


def _transient() -> int:
    """Hold ``TRANSIENT_MIB`` resident for a moment, then free it: this process's VmHWM afterwards, MiB."""
    import mmap

    area = mmap.mmap(-1, TRANSIENT_MIB * 1024 * 1024)
    for offset in range(0, len(area), mmap.PAGESIZE):
        area[offset] = 1
    area.close()
    return read_status_kb()["VmHWM"] // 1024


def test_the_peak_is_reset_to_the_resident_set_and_says_what_it_covers(tmp_path):
    from edgeproof.device.memory import reset_peak

    hwm = _transient()
    record = reset_peak("the session was built")
    status = read_status_kb()
    assert record == {
        "peak_reset": True,
        "peak_covers": "from just before the session was built on (VmHWM reset there to the resident set then, "
        "which it includes)",
    }
    assert status["VmHWM"] // 1024 < hwm - TRANSIENT_MIB // 2  # the transient is gone from the peak
    got = MemoryMonitor(peak=record).start().stop(4)
    assert got["memory"]["peak_reset"] is True and got["peak_memory_mb"] < hwm - TRANSIENT_MIB // 2
    refused = reset_peak("the session was built", tmp_path / "no" / "clear_refs")  # an older kernel, not Linux
    assert refused["peak_reset"] is False and refused["peak_covers"].startswith("the whole process since it started")
    unreset = MemoryMonitor().start().stop(4)["memory"]
    assert unreset["peak_reset"] is False and unreset["peak_covers"] == "the whole process since it started"


def test_the_boards_peak_leaves_out_what_ran_before_the_gated_session(bundle, monkeypatch):
    """256 MiB held and freed while the bundle is checked (as a large ground truth is parsed) set the old
    peak; now the peak starts at the gated session's build."""
    from edgeproof.device import measure

    checked, seen = measure.usable_setup, {}

    def heavy_check(folder):
        seen["hwm"] = _transient()
        return checked(folder)

    monkeypatch.setattr(measure, "usable_setup", heavy_check)
    out = bundle.parent / "out"
    assert measure.run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines") == 0
    bench = json.loads((out / "bench.json").read_text())
    assert bench["peak_memory_mb"] < seen["hwm"] - TRANSIENT_MIB // 2
    assert bench["memory"]["peak_reset"] is True and "the gated session was built" in bench["memory"]["peak_covers"]
    assert bench["peak_memory_mb"] >= bench["memory"]["rss_end_mb"]  # still the peak of what it read


def test_the_build_side_footprint_measures_the_same_way(tmp_path):
    from tests.device.builders import fixed_raw
    from tests.device.test_energy import _footprint_of

    got = _footprint_of(tmp_path, fixed_raw())
    assert got["memory"]["peak_reset"] is True and "the session was built" in got["memory"]["peak_covers"]
    assert got["memory"]["isolated"] is True and got["peak_memory_mb"] >= got["runtime_mb"]


def test_an_unreset_peak_is_an_upper_bound_over_the_budget_inconclusive_under_it_a_pass(bundle, measured, tmp_path):
    """Review diff10 F4: with ``memory.peak_reset`` false the figure is the process's peak since its start (the
    bundle check's ground truth in it): over the budget it cannot show the model is, under it it passes."""
    from edgeproof.verdict.device import device_gate
    from tests.device.conftest import base_params, edit_json, rule_named

    rules = base_params(tmp_path, {"gate": {"min_fps": 1.0, "max_peak_memory_mb": 100.0}})
    covers = "the whole process since it started: VmHWM not reset (x)"

    def judged(peak_mb: float, reset: bool) -> dict:
        def edit(bench: dict) -> None:
            bench["peak_memory_mb"] = peak_mb
            bench["memory"].update(peak_reset=reset, peak_covers=covers)
            bench["memory"]["rss_end_mb"] = min(bench["memory"]["rss_end_mb"], 90.0)

        edit_json(measured / "bench.json", edit)
        return rule_named(device_gate(bundle, "cpu-ci", measured, rules_params=rules), "peak_memory")

    over = judged(150.0, reset=False)
    assert over["status"] == "inconclusive" and covers in over["reason"] and "memory.peak_reset false" in over["reason"]
    assert judged(150.0, reset=True)["status"] == "fail"  # a reset peak over the budget is the model's: it fails
    assert judged(95.0, reset=False)["status"] == "pass"  # an upper bound under the budget is a pass
