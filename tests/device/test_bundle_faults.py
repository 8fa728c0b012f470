"""A verified bundle whose contents are unusable is the pull request's fault, never the board's.

The pull request's build writes the bundle and its manifest, so every file below still verifies (the
manifest re-hashed). The board refuses before measuring (exit 2, rule ``bundle_usable``, the file and
key named) instead of crashing mid-run (exit 6, "fix the board, then rerun"), and the device gate
fails the pull request, as for a bundle that fails verification.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeproof.device.measure import EXIT_BAD_INPUT, run_measure
from edgeproof.device.sysinfo import parse_tegrastats
from edgeproof.verdict.device import device_gate
from tests.device.conftest import edit_json, rehash, rule_named


def _refused(bundle: Path) -> tuple[dict, dict]:
    out = bundle.parent.parent / "reports" / "device" / "cpu-ci"
    code = run_measure(bundle, "cpu-ci", out, None, bundle.parent / "engines")
    status = json.loads((out / "measure.json").read_text())
    assert code == EXIT_BAD_INPUT and status["status"] == "refused", status
    assert not (out / "bench.json").exists()
    return status, device_gate(bundle, "cpu-ci", out)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:300])


CHANGES = {
    "missing val image": (
        lambda b: (b / "val/images/val_000003.jpg").unlink(),
        "annotations.json: images[3].file_name: 'val_000003.jpg' is not a file of",
    ),
    "truncated JPEG": (lambda b: _truncate(b / "val/images/val_000001.jpg"), "val_000001.jpg: unreadable image"),
    "not an image in val/images": (lambda b: (b / "val/images/notes.txt").write_text("x"), "notes.txt: unreadable"),
    "file_name a path": (
        lambda b: edit_json(b / "val/annotations.json", lambda d: d["images"][0].update(file_name="../../deploy.json")),
        "images[0].file_name: '../../deploy.json' is not a file of",
    ),
    "no input_size": (lambda b: edit_json(b / "deploy.json", lambda d: d.pop("input_size")), "no 'input_size'"),
    "input_size a string": (
        lambda b: edit_json(b / "deploy.json", lambda d: d.update(input_size="64")),
        "deploy.json: input_size: expected [height, width]",
    ),
    "deploy.conf not a number": (
        lambda b: edit_json(b / "deploy.json", lambda d: d["deploy"].update(conf="abc")),
        "deploy.json: deploy.conf",
    ),
    "map.iou not a number": (
        lambda b: edit_json(b / "deploy.json", lambda d: d["map"].update(iou=[1])),
        "deploy.json: map.iou",
    ),
    "category_ids of strings": (
        lambda b: edit_json(b / "deploy.json", lambda d: d.update(category_ids=["7"])),
        "deploy.json: category_ids: expected a list of integers",
    ),
    "clip outside the bundle": (
        lambda b: edit_json(b / "deploy.json", lambda d: d.update(clip="/dev/video0")),
        "deploy.json: clip: '/dev/video0' is not a file of the bundle",
    ),
}


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_unusable_bundle_contents_are_refused_and_fail_the_pull_request(bundle, case):
    change, named = CHANGES[case]
    change(bundle)
    rehash(bundle)
    status, report = _refused(bundle)
    assert status["rule"] == "bundle_usable" and named in status["reason"], status["reason"]
    assert report["verdict"] == "fail" and report["failed"] == ["bundle_usable"], report["rules"]
    assert "the pull request's bundle is at fault, not the board" in rule_named(report, "bundle_usable")["reason"]


def test_a_model_that_does_not_take_the_input_size_fails_as_the_bundles_fault(bundle):
    edit_json(bundle / "deploy.json", lambda d: d.update(input_size=[32, 32]))
    rehash(bundle)
    status, report = _refused(bundle)
    assert status["rule"] == "input_size" and report["verdict"] == "fail" and report["failed"] == ["input_size"]
    assert "rerun" not in rule_named(report, "input_size")["reason"].replace("a rerun cannot help", "")


def test_a_manifest_profile_entry_of_the_wrong_type_is_a_verification_failure(bundle):
    edit_json(bundle / "manifest.json", lambda m: m["profiles"].update({"cpu-ci": ["models/fp32.onnx"]}))
    status, report = _refused(bundle)
    assert status["rule"] == "bundle_verified" and "profiles.cpu-ci: expected an object, got list" in status["reason"]
    assert report["verdict"] == "fail" and report["failed"] == ["bundle_verified"], report["rules"]  # one row
    reason = rule_named(report, "bundle_verified")["reason"]  # the gate's finding and the board's, in that row
    assert reason.count("profiles.cpu-ci: expected an object, got list") == 2 and "on the board (measure.json" in reason


def test_a_tegrastats_line_it_cannot_read_is_named():
    with pytest.raises(ValueError, match=r"tegrastats line 'CPU \[abc%@x\] GR3D_FREQ 1%': invalid literal"):
        parse_tegrastats("CPU [abc%@x] GR3D_FREQ 1%\n")


def test_a_refusal_of_another_bundle_is_inconclusive_never_this_bundles_failure(bundle):
    """The board refused a bundle (bundle_usable), but not the one judged here (several same-name artifacts, a
    re-run): same_bundle was checked only after a finished measurement, so this PR failed on another's fault."""
    edit_json(bundle / "deploy.json", lambda d: d.update(category_ids=["7"]))
    rehash(bundle)
    _status, report = _refused(bundle)
    assert report["verdict"] == "fail" and rule_named(report, "same_bundle")["status"] == "pass"
    out = bundle.parent.parent / "reports" / "device" / "cpu-ci"
    edit_json(out / "measure.json", lambda m: m.update(bundle_manifest_sha256="0" * 64))
    report = device_gate(bundle, "cpu-ci", out)
    assert report["verdict"] == "inconclusive" and "bundle mismatch" in json.dumps(report["rules"]), report["rules"]
