"""Main's baseline in an older record (review diff10, F1): a baseline whose energy record has no
``inside_samples`` (every device-gate-main uploaded before the board counted readings inside the window)
made main's own push inconclusive on ``regression_energy``; only a *passing* push to main uploads a new
baseline, so no push could ever replace it. On a push to main (``baseline_optional``: it may go without
one) a rule the baseline cannot support is judged as if main had none: left out, with a note naming the
file and why. A pull request's stays inconclusive, never a pass."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.device.conftest import base_params, edit_json, rule_named, set_measured_energy

REGRESSION = {"max_energy_increase_pct": 10.0, "max_fps_drop_pct": 50.0, "max_map_drop": 0.5}


def _gate(bundle: Path, measured: Path, tmp_path: Path, baseline: Path | None, optional: bool) -> dict:
    from edgeproof.verdict.device import device_gate

    limits = {"gate": {"min_fps": 1.0, "max_energy_mj_per_frame": 100.0, "max_power_w": 10.0}}
    rules = base_params(tmp_path, {**limits, "regression": REGRESSION})
    set_measured_energy(measured / "bench.json", 3.0)
    return device_gate(bundle, "cpu-ci", measured, baseline=baseline, rules_params=rules, baseline_optional=optional)


def _old_baseline(first: dict, tmp_path: Path, edit) -> Path:
    """``first`` (a pass by today's reader) as an older board or gate wrote it: ``edit`` applied to its figures."""
    old = copy.deepcopy(first)
    edit(old["measured"])
    path = tmp_path / "device-gate-main" / "cpu-ci" / "gate.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(old))
    return path


def _no_inside_samples(measured: dict) -> None:
    measured["energy"].pop("inside_samples")


def _no_fps(measured: dict) -> None:
    measured.pop("fps_e2e")


@pytest.mark.parametrize(
    ("edit", "rule", "why"),
    [
        (_no_inside_samples, "regression_energy", "energy.inside_samples not recorded"),
        (_no_fps, "regression_fps", "main's baseline fps_e2e: None, no positive number"),
    ],
    ids=["inside_unrecorded", "no_fps"],
)
def test_mains_push_replaces_a_baseline_that_cannot_support_a_rule(bundle, measured, tmp_path, edit, rule, why):
    first = _gate(bundle, measured, tmp_path, None, optional=True)  # main's first verdict, today's record
    assert first["verdict"] == "pass" and first["measured"]["energy"]["inside_samples"] == 1
    baseline = _old_baseline(first, tmp_path, edit)

    pr = _gate(bundle, measured, tmp_path, baseline, optional=False)  # a pull request: never a pass on it
    assert pr["verdict"] == "inconclusive" and rule_named(pr, rule)["status"] == "inconclusive"

    main = _gate(bundle, measured, tmp_path, baseline, optional=True)  # main's push: as without a baseline
    assert main["verdict"] == "pass", [(r["name"], r["status"], r["reason"]) for r in main["rules"]]
    assert rule not in [r["name"] for r in main["rules"]]
    others = {r["name"]: r["status"] for r in main["rules"] if r["name"].startswith("regression") and r["name"] != rule}
    assert others and set(others.values()) == {"pass"}  # the rules it can support are still judged
    notes = [n for n in main["notes"] if n.startswith(f"main's baseline {baseline} cannot judge {rule}")]
    assert len(notes) == 1 and why in notes[0] and "uploaded as main's new baseline" in notes[0]


def test_mains_push_still_judges_its_own_energy_figure_against_an_unusable_baseline(bundle, measured, tmp_path):
    """Only the baseline's side is forgiven: this run's own impossible figure stays invalid on main too."""
    from edgeproof.verdict.device import device_gate

    first = _gate(bundle, measured, tmp_path, None, optional=True)
    baseline = _old_baseline(first, tmp_path, _no_inside_samples)
    rules = base_params(tmp_path, {"regression": REGRESSION})
    edit_json(measured / "bench.json", lambda d: d.update(energy_mj_per_frame=-5.0))
    report = device_gate(bundle, "cpu-ci", measured, baseline=baseline, rules_params=rules, baseline_optional=True)
    assert rule_named(report, "regression_energy")["status"] == "invalid" and report["verdict"] == "fail"


def test_a_baseline_without_a_val_set_digest_is_not_a_pass_of_same_val_set_on_a_pull_request(
    bundle, measured, tmp_path
):
    """A baseline from before val sets were recorded left same_val_set out, on a pull request too: the PR's
    own val set went unchecked. Now inconclusive there; on main's push judged as without a baseline."""
    first = _gate(bundle, measured, tmp_path, None, optional=True)
    assert first["val_sha256"]
    baseline = _old_baseline({k: v for k, v in first.items() if k != "val_sha256"}, tmp_path, lambda m: None)

    pr = _gate(bundle, measured, tmp_path, baseline, optional=False)
    rule = rule_named(pr, "same_val_set")
    assert pr["verdict"] == "inconclusive" and rule["status"] == "inconclusive"
    assert "records no val_sha256" in rule["reason"]

    main = _gate(bundle, measured, tmp_path, baseline, optional=True)
    assert main["verdict"] == "pass" and "same_val_set" not in [r["name"] for r in main["rules"]]
    assert any("records no val_sha256" in n and "same_val_set not judged" in n for n in main["notes"])
