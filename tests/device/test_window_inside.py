"""An energy window with no power reading inside it (review energymem, finding 4): a 170 ms window whose
one reading inside went missing, or an 83 ms window between two readings 100 ms apart, was "measurable"
-- its energy, mean and peak the straight line between a reading in the warm-up and one after the run,
its 11.2 W peak a number no sensor read -- and the device gate could not tell (no count of readings
inside the window in the record)."""

from __future__ import annotations

import pytest

from edgeproof.device.energy_record import energy_fields
from edgeproof.device.power_window import counter_window, window_power, window_problem

# 4 W during the warm-up just before the window, 12 W in the run after it; readings every 100 ms
MISSING_INSIDE = [(9.79, 4000.0), (9.89, 4000.0), (9.99, 4000.0), (10.09, None), (10.19, 12000.0), (10.29, 12000.0)]
BETWEEN_READINGS = [(9.89, 4000.0), (9.99, 4000.0), (10.09, 12000.0), (10.19, 12000.0)]


@pytest.mark.parametrize(
    ("samples", "t0", "t1"), [(MISSING_INSIDE, 10.0, 10.17), (BETWEEN_READINGS, 10.0, 10.083)], ids=["missing", "short"]
)
def test_a_window_without_a_reading_inside_is_not_measurable_and_says_so(samples, t0, t1):
    assert window_power(samples, t0, t1, 0.1) is None
    why = window_problem(samples, t0, t1, 0.1)
    assert why is not None and why.startswith("0 power reading(s) inside the ")
    assert "interpolated between readings outside the timed frames" in why
    record = energy_fields(None, None, 50, (t0, t1), None, "ina3221:VDD_IN", 0.1, why)["energy"]
    assert record["measurable"] is False and record["reason"] == why and record["inside_samples"] == 0


def test_the_peak_is_a_reading_inside_the_window_and_the_record_counts_them():
    """With one reading inside (8 W), the peak is that reading, not the 11.2 W interpolated at the window's end."""
    samples = [(9.99, 4000.0), (10.09, 8000.0), (10.19, 12000.0)]
    run = window_power(samples, 10.0, 10.17, 0.1)
    assert run is not None and run["peak_w"] == pytest.approx(8.0)
    assert run["samples"] == 3 and run["inside_samples"] == 1
    fields = energy_fields(run, None, 50, (10.0, 10.17), None, "ina3221:VDD_IN", 0.1)
    assert fields["energy"]["inside_samples"] == 1 and fields["power_w_peak"] == pytest.approx(8.0)


def test_a_counter_window_needs_a_reading_inside_it_too():
    readings = [(9.9, 0.0), (10.2, 3000.0)]  # a counter read before and after an 83 ms window only
    assert counter_window(readings, 10.0, 10.083) is None
    assert counter_window([(9.9, 0.0), (10.05, 1500.0), (10.2, 3000.0)], 10.0, 10.083)["inside_samples"] == 1


def _gate(bundle, measured, tmp_path, baseline=None, **record):
    from edgeproof.verdict.device import device_gate
    from tests.device.conftest import base_params, edit_json, set_measured_energy

    limits = {"gate": {"min_fps": 1.0, "max_energy_mj_per_frame": 100.0, "max_power_w": 10.0}}
    rules = base_params(tmp_path, {**limits, "regression": {"max_energy_increase_pct": 10.0}})
    set_measured_energy(measured / "bench.json", 3.0)

    def edit(bench: dict) -> None:  # None: the key absent, as a board that never wrote it
        for key, value in record.items():
            if value is None:
                bench["energy"].pop(key)
            else:
                bench["energy"][key] = value

    edit_json(measured / "bench.json", edit)
    return device_gate(bundle, "cpu-ci", measured, baseline=baseline, rules_params=rules)


def test_the_gate_holds_a_record_without_a_reading_inside_invalid(bundle, measured, tmp_path):
    from tests.device.conftest import rule_named

    for inside, expected in ((0, "expected an integer from 1 to energy.samples 2"), (3, "from 1 to"), ("1", "'1'")):
        report = _gate(bundle, measured, tmp_path, inside_samples=inside)
        energy, power, consistent = (rule_named(report, n) for n in ("energy", "power", "results_consistent"))
        assert report["verdict"] == "fail" and energy["status"] == power["status"] == "invalid"
        assert energy["reason"].startswith(f"energy.inside_samples: {inside!r}") and expected in energy["reason"]
        assert consistent["status"] == ("invalid" if isinstance(inside, int) else "pass")  # named once, not twice


def test_a_record_that_does_not_count_its_readings_inside_is_inconclusive(bundle, measured, tmp_path):
    """A board before the count: its figure may be a line between readings outside the window, never a pass."""
    from tests.device.conftest import rule_named

    assert _gate(bundle, measured, tmp_path)["verdict"] == "pass"  # the same record, counted: judged
    report = _gate(bundle, measured, tmp_path, inside_samples=None)
    for name in ("energy", "power"):
        rule = rule_named(report, name)
        assert rule["status"] == "inconclusive" and "energy.inside_samples not recorded" in rule["reason"]
    assert report["verdict"] == "inconclusive" and rule_named(report, "results_consistent")["status"] == "pass"


def test_mains_baseline_that_does_not_count_its_readings_inside_is_no_baseline(bundle, measured, tmp_path):
    import json

    from tests.device.conftest import rule_named

    main = {"measurable": True, "samples": 40, "window_s": 2.0, "interval_ms": 100.0}
    baseline = tmp_path / "main-gate.json"
    for record, status in (({**main, "inside_samples": 38}, "pass"), (main, "inconclusive")):
        measured_main = {"energy_mj_per_frame": 1000.0, "energy": record}
        baseline.write_text(json.dumps({"verdict": "pass", "profile": "cpu-ci", "measured": measured_main}))
        rule = rule_named(_gate(bundle, measured, tmp_path, baseline=baseline), "regression_energy")
        assert rule["status"] == status
    assert "main's baseline energy_mj_per_frame: energy.inside_samples not recorded" in rule["reason"]
