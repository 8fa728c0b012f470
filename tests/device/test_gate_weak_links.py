"""The device gate's weak links, as a reviewer attacked them: a figure the gate cannot trust never passes.

- the fp32 reference of ``map_drop`` is measured here (the released file re-run on the CPU when it is the
  reference), never the build's claimed figure; a reference the bundle does not ship is inconclusive, and
  a manifest copy of the claim that differs from the hashed ``build/release.json`` is invalid;
- the energy regression is inconclusive when the board could not measure energy, invalid for an
  impossible figure on either side;
- only main's *passed* verdict for the same profile is a regression baseline;
- a pull request's unreadable params.yaml, or bundle profiles.json, is a note on the proposal, never the
  verdict; an unusable base params file is inconclusive (not the model's fault);
- a results file with a key given twice, or that is not a JSON object, is invalid, named;
- a figure of the wrong type (``latency_ms: "12.5"``, a bool, NaN) is invalid with the key and what was
  found, never "not measured" (a malformed report is not an incomplete one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeproof.verdict.device import device_gate
from tests.device.conftest import base_params, edit_json, rehash, rule_named


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _board_measured_it(bundle: Path, measured: Path) -> None:
    """The board's record that it measured this bundle as it is now (its manifest's sha256): an edit below
    stands for a bundle the build shipped so, not for another bundle than the board's (``same_bundle``)."""
    edit_json(measured / "measure.json", lambda d: d.update(bundle_manifest_sha256=_sha256(bundle / "manifest.json")))


def _claim(bundle: Path, measured: Path, **reference) -> None:
    """What a pull request's build (its code) can write: build/release.json's reference, re-hashed by its
    own manifest, with the manifest's copy of the figure to match."""
    release = bundle / "build" / "release.json"
    edit_json(release, lambda d: d["reference"].update(reference))
    entry = {"bytes": release.stat().st_size, "sha256": _sha256(release)}
    edit_json(bundle / "manifest.json", lambda d: (d["files"].update({"build/release.json": entry}),
                                                   d["reference"].update(reference)))  # fmt: skip
    _board_measured_it(bundle, measured)


def test_map_drop_takes_the_released_files_own_map_here_not_the_builds_claim(bundle, measured):
    """The released file is the fp32 reference: the gate re-runs it on the CPU anyway (map_not_above_model).
    The verdict had followed the claimed figure alone: 0.99 pass, 0.0 a "drop" of -1.0, 1.02 fail."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["reference"]["sha256"] == manifest["profiles"]["cpu-ci"]["sha256"]
    for claimed in (0.99, 0.0, 1.02):
        _claim(bundle, measured, map50_95=claimed)
        report = device_gate(bundle, "cpu-ci", measured)
        drop, own = rule_named(report, "map_drop"), rule_named(report, "map_not_above_model")
        assert drop["status"] == "pass" and report["verdict"] == "pass", (claimed, drop)
        assert drop["measured"] == pytest.approx(-own["measured"])  # own mAP here - the device's
        assert drop["source"] == "fp32 reference = the released file, re-run here (CPU)"


def test_map_drop_with_a_reference_the_bundle_does_not_ship_is_an_inconclusive_claim(bundle, measured):
    _claim(bundle, measured, sha256="0" * 64, map50_95=0.99)
    report = device_gate(bundle, "cpu-ci", measured)
    drop = rule_named(report, "map_drop")
    assert drop["status"] == "inconclusive" and report["verdict"] == "inconclusive"
    assert drop["reason"].startswith("the fp32 reference map50_95 0.99 is the pull request build's claim")
    assert "profiles.cpu-ci.candidates: [fp32]" in drop["reason"]


def test_an_edited_manifest_copy_of_the_reference_is_invalid(bundle, measured):
    edit_json(bundle / "manifest.json", lambda d: d["reference"].update(map50_95=0.0))  # a perfect-looking drop
    _board_measured_it(bundle, measured)
    drop = rule_named(device_gate(bundle, "cpu-ci", measured), "map_drop")
    assert drop["status"] == "invalid" and "differs from the hashed build/release.json's" in drop["reason"]


ENERGY = {"energy_mj_per_frame": 50.0, "energy": {"measurable": False, "reason": "no INA3221 on this board"}}


def _with_baseline(tmp_path: Path, measured: dict, **fields) -> Path:
    path = tmp_path / "main-gate.json"
    path.write_text(json.dumps({"verdict": "pass", "profile": "cpu-ci", "measured": measured, **fields}))
    return path


def test_energy_regression_is_inconclusive_unmeasured_and_invalid_when_impossible(bundle, measured, tmp_path):
    base = base_params(tmp_path, {"regression": {"max_energy_increase_pct": 10.0}})
    counted = {"measurable": True, "interval_ms": 100.0, "samples": 12, "inside_samples": 10}
    main = {"energy_mj_per_frame": 100.0, "energy": counted}
    baseline = _with_baseline(tmp_path, main)
    edit_json(measured / "bench.json", lambda d: d.update(ENERGY))
    rule = rule_named(
        device_gate(bundle, "cpu-ci", measured, baseline=baseline, rules_params=base), "regression_energy"
    )
    assert rule["status"] == "inconclusive" and "no INA3221 on this board" in rule["reason"]
    edit_json(
        measured / "bench.json",
        lambda d: d.update(energy_mj_per_frame=-5.0, energy=counted),
    )
    report = device_gate(bundle, "cpu-ci", measured, baseline=baseline, rules_params=base)
    rule = rule_named(report, "regression_energy")
    assert rule["status"] == "invalid" and "this run energy_mj_per_frame" in rule["reason"]
    assert report["verdict"] == "fail"
    edit_json(measured / "bench.json", lambda d: d.update(energy_mj_per_frame=90.0))
    report = device_gate(bundle, "cpu-ci", measured, baseline=baseline, rules_params=base)
    assert rule_named(report, "regression_energy")["status"] == "pass"
    # a flag or record of another shape is read one way by every energy rule: invalid, naming what was found
    for energy, reason in (
        ({"measurable": "true"}, 'energy.measurable: "true" is a string, expected true, false or null'),
        ("measured", 'energy: "measured" is a string, expected an object with "measurable"'),
    ):
        edit_json(measured / "bench.json", lambda d, e=energy: d.update(energy=e))
        rule = rule_named(
            device_gate(bundle, "cpu-ci", measured, baseline=baseline, rules_params=base), "regression_energy"
        )
        assert (rule["status"], rule["reason"]) == ("invalid", reason)


@pytest.mark.parametrize(
    "fields",
    [{"verdict": "fail"}, {"verdict": "inconclusive"}, {"profile": "jetson-orin-nano"}, {"verdict": None}],
)
def test_only_mains_passed_verdict_for_the_same_profile_is_a_baseline(bundle, measured, tmp_path, fields):
    base = base_params(tmp_path, {"regression": {"max_fps_drop_pct": 10.0}})
    baseline = _with_baseline(tmp_path, {"fps_e2e": 0.001, "map50_95": 0.0}, **fields)
    report = device_gate(bundle, "cpu-ci", measured, baseline=baseline, rules_params=base)
    regression = [r for r in report["rules"] if r["name"].startswith("regression")]  # not judged against it...
    assert [(r["name"], r["status"]) for r in regression] == [("regression_fps", "inconclusive")]
    assert "main's baseline is verdict" in regression[0]["reason"]  # ...and never gone: a hidden baseline
    report = device_gate(
        bundle, "cpu-ci", measured, baseline=baseline, rules_params=base_params(tmp_path, {}, name="plain.yaml")
    )
    assert any(n.startswith("main's baseline not used") for n in report["notes"]), report["notes"]
    good = _with_baseline(tmp_path, {"fps_e2e": 1.0e5, "map50_95": 1.0})
    report = device_gate(bundle, "cpu-ci", measured, baseline=good, rules_params=base)
    assert rule_named(report, "regression_fps")["status"] == "fail"


def test_an_unreadable_proposal_is_a_note_not_the_verdict(bundle, measured, tmp_path):
    base = base_params(tmp_path, {})
    pr = base_params(tmp_path, {"gate": {"max_gpu_temp_c": 80}}, name="pr.yaml")  # a key the base does not know yet
    report = device_gate(bundle, "cpu-ci", measured, rules_params=base, proposed_params=pr)
    assert report["verdict"] == "pass", report["failed"]
    note = next(n for n in report["notes"] if "is not shown as a proposal" in n)
    assert "pr.yaml" in note and "max_gpu_temp_c" in note


def test_a_bundle_profile_key_the_base_does_not_know_is_a_note_not_the_verdict(bundle, measured, tmp_path):
    """A pull request that adds a profile setting builds it into its bundle's profiles.json too."""
    base = base_params(tmp_path, {})
    edit_json(bundle / "profiles.json", lambda d: d["cpu-ci"].update(new_setting=1))
    rehash(bundle)
    _board_measured_it(bundle, measured)  # the board measured the bundle so built (same_bundle)
    report = device_gate(bundle, "cpu-ci", measured, rules_params=base)
    assert report["verdict"] == "pass", report["rules"]
    note = next(n for n in report["notes"] if "profiles.json is not shown as a proposal" in n)
    assert "new_setting" in note and report["proposed_changes"] == []
    pr = base_params(tmp_path, {"gate": {"max_gpu_temp_c": 80}}, name="pr.yaml")  # both unreadable: two notes
    report = device_gate(bundle, "cpu-ci", measured, rules_params=base, proposed_params=pr)
    assert report["verdict"] == "pass" and len(report["notes"]) == 2, report["notes"]


@pytest.mark.parametrize("change", [{"runs": 3000000}, {"gate": {"min_fps": "fast"}}])
def test_an_unusable_base_params_file_is_inconclusive_not_the_models_fault(bundle, measured, tmp_path, change):
    base = base_params(tmp_path, change)
    report = device_gate(bundle, "cpu-ci", measured, rules_params=base)
    judged = rule_named(report, "judged")
    assert report["verdict"] == "inconclusive" and judged["status"] == "inconclusive", report["rules"]
    assert "base.yaml" in judged["reason"] and "profiles.cpu-ci." in judged["reason"]
    assert "not the model's fault" in judged["reason"]
    report = device_gate(bundle, "no-such-profile", measured, rules_params=base_params(tmp_path, {}))
    assert report["verdict"] == "inconclusive" and "no profile 'no-such-profile'" in report["rules"][0]["reason"]


def test_a_key_given_twice_or_a_results_file_that_is_not_an_object_is_invalid(bundle, measured):
    text = (measured / "bench.json").read_text()
    (measured / "bench.json").write_text('{"fps_e2e": 0.5, ' + text.lstrip()[1:])  # fps_e2e twice
    report = device_gate(bundle, "cpu-ci", measured)
    assert report["verdict"] == "fail" and "duplicate key(s) ['fps_e2e']" in report["rules"][0]["reason"]
    (measured / "bench.json").write_text("[1, 2, 3]")
    report = device_gate(bundle, "cpu-ci", measured)
    assert (
        report["verdict"] == "fail" and "bench.json: expected a JSON object, got list" in report["rules"][0]["reason"]
    )


def test_accuracy_on_a_val_set_main_never_judged_is_inconclusive(bundle, measured, tmp_path):
    """The bundle's images and ground truth are the PR's: relabelled ones would score whatever it likes."""
    first = device_gate(bundle, "cpu-ci", measured)
    assert first["verdict"] == "pass" and len(first["val_sha256"]) == 64
    same = _with_baseline(tmp_path, first["measured"], val_sha256=first["val_sha256"])
    report = device_gate(bundle, "cpu-ci", measured, baseline=same)
    assert rule_named(report, "same_val_set")["status"] == "pass" and report["verdict"] == "pass"
    other = _with_baseline(tmp_path, first["measured"], val_sha256="0" * 64)
    report = device_gate(bundle, "cpu-ci", measured, baseline=other)
    rule = rule_named(report, "same_val_set")
    assert rule["status"] == "inconclusive" and "ground truth this pull request supplies" in rule["reason"]
    assert report["verdict"] == "inconclusive"
    old = _with_baseline(tmp_path, first["measured"])  # a baseline from before val sets were recorded
    rule = rule_named(device_gate(bundle, "cpu-ci", measured, baseline=old), "same_val_set")
    assert rule["status"] == "inconclusive" and "records no val_sha256" in rule["reason"]  # not left out
    on_main = device_gate(bundle, "cpu-ci", measured, baseline=old, baseline_optional=True)
    assert not [r for r in on_main["rules"] if r["name"] == "same_val_set"]  # main's push replaces it


MALFORMED_LATENCY = [
    ("12.5", 'latency_ms: "12.5" is a string, expected an object with "p95"'),
    ([12.5], 'latency_ms: [12.5] is a list, expected an object with "p95"'),
    ({"p95": "12.5"}, 'latency_ms.p95: "12.5" is a string, expected a number'),
    ({"p95": {"p95": "x"}}, 'latency_ms.p95: {"p95": "x"} is an object, expected a number'),
    ({"p95": True}, "latency_ms.p95: true is a boolean, expected a number"),
    ({"p95": float("nan")}, "latency_ms.p95: NaN is not a finite number"),
]


def test_a_figure_of_the_wrong_type_is_invalid_naming_the_key_and_what_was_found(bundle, measured):
    """One measurement, every malformed shape (each gate run re-runs the model on the CPU: kept to one test)."""
    for latency, reason in MALFORMED_LATENCY:
        edit_json(measured / "bench.json", lambda d, v=latency: d.update(latency_ms=v))  # NaN: written as JSON's NaN
        report = device_gate(bundle, "cpu-ci", measured)
        rule = rule_named(report, "latency_p95")
        assert (rule["status"], rule["reason"]) == ("invalid", reason), latency
        assert report["verdict"] == "fail" and rule["passed"] is False
        json.dumps(report, allow_nan=False)  # the found value is still strict-JSON-writable


def test_results_of_another_bundle_are_inconclusive_bundle_mismatch_not_the_models_failure(bundle, measured):
    """The board and the gate can take different release-bundle artifacts (same name, one run): the board
    records the manifest's sha256 it measured, and a bundle whose manifest differs is not judged at all (a
    swapped val subset had read as the model failing detections, map50 and map_drop)."""
    digest = _sha256(bundle / "manifest.json")
    assert json.loads((measured / "measure.json").read_text())["bundle_manifest_sha256"] == digest
    assert rule_named(device_gate(bundle, "cpu-ci", measured), "same_bundle")["status"] == "pass"
    edit_json(bundle / "manifest.json", lambda d: d["val"].update(seed=7))  # another build's bundle
    report = device_gate(bundle, "cpu-ci", measured)
    assert report["verdict"] == "inconclusive" and report["failed"] == ["same_bundle"]
    why = f"bundle mismatch: the board measured manifest.json sha256 {digest!r}, the bundle judged here has"
    assert rule_named(report, "same_bundle")["reason"].startswith(why)
    edit_json(measured / "measure.json", lambda d: d.pop("bundle_manifest_sha256"))  # a board that did not say
    report = device_gate(bundle, "cpu-ci", measured)
    assert report["verdict"] == "inconclusive" and "records no bundle_manifest_sha256" in report["rules"][-1]["reason"]
