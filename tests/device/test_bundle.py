"""The hand-off bundle: built from the release report, verified file by file on the device."""

from __future__ import annotations

import json

import pytest

from edgeproof.device.manifest import BundleError, profile_model, verify_bundle
from edgeproof.io import sha256_file
from tests.device.builders import CATEGORY_ID
from tests.device.conftest import make_bundle


def test_bundle_holds_the_released_model_settings_and_val(bundle, tmp_path):
    manifest = verify_bundle(bundle)
    release = json.loads((tmp_path / "reports/release.json").read_text())
    entry = profile_model(bundle, manifest, "jetson-nano")
    assert entry["sha256"] == release["profiles"]["jetson-nano"]["sha256"] == sha256_file(entry["path"])
    assert manifest["files"]["models/fp32.onnx"]["sha256"] == entry["sha256"]
    assert manifest["reference"]["map50_95"] == 1.0
    setup = json.loads((bundle / "deploy.json").read_text())
    assert setup["input_size"] == [64, 64] and setup["category_ids"] == [CATEGORY_ID]
    assert setup["deploy"] == {"conf": 0.25, "iou": 0.7, "max_det": 300, "agnostic": False}
    assert sorted(p.name for p in (bundle / "val/images").iterdir()) == [f"val_{i:06d}.jpg" for i in range(6)]
    assert set(manifest["files"]) >= {"build/release.json", "build/eval.json", "build/bench.json", "profiles.json"}


def test_val_subset_is_seeded_and_ground_truth_follows(tmp_path):
    a = make_bundle(tmp_path / "a", max_val_images=3, seed=1)
    b = make_bundle(tmp_path / "b", max_val_images=3, seed=1)
    gt = json.loads((a / "val/annotations.json").read_text())
    assert len(gt["images"]) == 3 and {x["image_id"] for x in gt["annotations"]} == {im["id"] for im in gt["images"]}
    assert gt == json.loads((b / "val/annotations.json").read_text())
    assert sorted(p.name for p in (a / "val/images").iterdir()) == sorted(im["file_name"] for im in gt["images"])


def test_one_changed_byte_fails_verification_naming_the_file(bundle):
    model = bundle / "models" / "fp32.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"models/fp32\.onnx: sha256 [0-9a-f]{64} does not match"):
        verify_bundle(bundle)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: (b / "val/images/extra.jpg").write_bytes(b"x"), r"val/images/extra\.jpg: not listed"),
        (
            lambda b: (b / "val/annotations.json").unlink(),
            r"val/annotations\.json: listed in manifest\.json but missing",
        ),
        (lambda b: (b / "deploy.json").write_text("{}"), r"deploy\.json: size 2 bytes"),
        (lambda b: (b / "manifest.json").write_text("{"), r"manifest\.json: not valid JSON"),
    ],
)
def test_unverifiable_bundles_are_refused(bundle, change, message):
    change(bundle)
    with pytest.raises(BundleError, match=message):
        verify_bundle(bundle)


def test_a_stale_release_report_is_a_build_error(tmp_path):
    make_bundle(tmp_path)
    release = tmp_path / "reports/release.json"
    data = json.loads(release.read_text())
    data["profiles"]["cpu-ci"]["sha256"] = "f" * 64
    release.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"fp32\.onnx: sha256 [0-9a-f]{64} is not f{64} recorded in"):
        make_bundle(tmp_path)


def test_release_report_without_a_usable_choice_is_a_clear_error(tmp_path):
    make_bundle(tmp_path)
    release = tmp_path / "reports/release.json"
    data = json.loads(release.read_text())
    del data["profiles"]["cpu-ci"]["sha256"]
    release.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"profiles\.cpu-ci lacks \['sha256'\]"):
        make_bundle(tmp_path)
    del data["profiles"]["cpu-ci"]  # no choice for the profile: the build profile's release variant
    data["release_variant"] = "int8"  # ... which was never built
    release.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"release_variant is 'int8' but release.json has no built variant"):
        make_bundle(tmp_path)
