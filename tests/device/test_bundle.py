"""The hand-off bundle: built from the release report, verified file by file on the device."""

from __future__ import annotations

import json

import pytest

from edgeproof.device.manifest import BundleError, profile_model, verify_bundle
from edgeproof.io import sha256_file
from tests.device.builders import CATEGORY_ID, write_build_side
from tests.device.conftest import edit_json, make_bundle, profiles_raw


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


def _capped_val(root, cap: int) -> list[dict]:
    """The bundled val images of a 40-image val with a box on every fourth image (a quarter labelled)."""
    write_build_side(root, list(profiles_raw()), n_val=40)
    edit_json(
        root / "data/prepared/annotations/val.json",
        lambda gt: gt.update(annotations=[a for a in gt["annotations"] if a["image_id"] % 4 == 0]),
    )
    gt = json.loads((make_bundle(root, max_val_images=cap, seed=1) / "val/annotations.json").read_text())
    assert {a["image_id"] for a in gt["annotations"]} <= {im["id"] for im in gt["images"]}
    return gt


def test_val_cap_keeps_the_background_share_and_is_nested_as_the_data_stage_cap(tmp_path):
    """The bundle caps val by the data stage's rule (edgeproof.data.caps), not a plain random sample: the
    on-device mAP is measured on val's share of background images, and a larger cap keeps a smaller cap's."""
    small, large = _capped_val(tmp_path / "a", 8), _capped_val(tmp_path / "b", 20)
    assert len(small["images"]) == 8 and len(small["annotations"]) == 2  # a quarter of 8 labelled, as in val
    assert len(large["images"]) == 20 and len(large["annotations"]) == 5
    assert {im["id"] for im in small["images"]} <= {im["id"] for im in large["images"]}


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


def _with_external_data(bundle, location: str, secret):
    """The bundle's fp32 model with its largest initializer moved to ``location``, the manifest re-hashed (as
    a forged build would write it): only the external-data check stands between it and onnxruntime."""
    import onnx
    from onnx.external_data_helper import set_external_data

    model = onnx.load(str(bundle / "models" / "fp32.onnx"))
    big = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    secret.write_bytes(big.raw_data)
    set_external_data(big, location=location, offset=0, length=len(big.raw_data))
    big.ClearField("raw_data")
    big.data_location = onnx.TensorProto.EXTERNAL
    path = bundle / "models" / "fp32.onnx"
    path.write_bytes(model.SerializeToString())
    manifest = json.loads((bundle / "manifest.json").read_text())
    for entry in [manifest["files"]["models/fp32.onnx"], *manifest["profiles"].values()]:
        if "bytes" in entry or entry.get("model") == "models/fp32.onnx":
            entry["sha256"] = sha256_file(path)
            entry.update({"bytes": path.stat().st_size} if "bytes" in entry else {})
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return big.name


@pytest.mark.parametrize("where", ["absolute", "../secret.bin"])
def test_a_model_with_external_data_is_refused_before_onnxruntime_opens_it(bundle, tmp_path, where):
    """An initializer whose data is an absolute or ``../`` path is not a bundle file (no sha256 covers it)."""
    secret = tmp_path / "release" / "secret.bin"  # bundle/../secret.bin
    name = _with_external_data(bundle, str(secret) if where == "absolute" else where, secret)
    with pytest.raises(BundleError, match=rf"fp32\.onnx: 1 tensor\(s\) keep their data outside.*{name}"):
        verify_bundle(bundle)


def test_the_wire_walk_finds_external_tensors_in_subgraphs_and_refuses_garbage():
    import onnx
    from onnx import helper

    from edgeproof.runtime.onnx_data import WireError, external_tensors

    ext = helper.make_tensor("w", onnx.TensorProto.FLOAT, [1], [0.0])
    ext.ClearField("float_data")
    ext.data_location = onnx.TensorProto.EXTERNAL
    branch = helper.make_graph([helper.make_node("Constant", [], ["c"], value=ext)], "b", [], [])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("cond", onnx.TensorProto.BOOL, [])], [])
    assert external_tensors(helper.make_model(graph).SerializeToString()) == ["w", "w"]
    plain = helper.make_graph([], "g", [], [], initializer=[helper.make_tensor("k", onnx.TensorProto.FLOAT, [1], [1])])
    assert external_tensors(helper.make_model(plain).SerializeToString()) == []
    with pytest.raises(WireError):
        external_tensors(b"onnx")
    # a function's default attribute tensor and a training graph's initializer hold tensors too
    model = helper.make_model(plain)
    function = onnx.FunctionProto(name="f", domain="d")
    function.attribute_proto.append(helper.make_attribute("a", ext))
    model.functions.append(function)
    model.training_info.add().initialization.CopyFrom(helper.make_graph([], "t", [], [], initializer=[ext]))
    assert external_tensors(model.SerializeToString()) == ["w", "w"]


def _candidates(bundle, *cands):
    edit_json(bundle / "manifest.json", lambda m: m["profiles"]["cpu-ci"].update(candidates=list(cands)))


FP32 = "models/fp32.onnx"


@pytest.mark.parametrize(
    ("cand", "message"),
    [
        (
            {"variant": "/tmp/out", "model": FP32},
            r"profiles\.cpu-ci\.candidates\[0\]\.variant: '/tmp/out' is not a plain",
        ),
        ({"variant": "..", "model": FP32}, r"candidates\[0\]\.variant: '\.\.' is not a plain name"),
        (
            {"variant": "int8", "model": "/etc/outside.onnx"},
            r"candidates\[0\]: model '/etc/outside\.onnx' is not a listed",
        ),
        ({"variant": "int8", "model": "../fp32.onnx"}, r"candidates\[0\]: model '\.\./fp32\.onnx' is not a listed"),
        ({"variant": "int8", "model": FP32, "sha256": "0" * 64}, r"candidates\[0\]: model 'models/fp32\.onnx' is not"),
        ("int8", r"candidates\[0\]: expected an object, got str"),
    ],
)
def test_every_candidate_is_verified_like_the_released_model(bundle, cand, message):
    """A candidate is a model the board runs: a listed file with its sha256, under a plain variant name
    (it names the results folder it is written to)."""
    if isinstance(cand, dict) and "sha256" not in cand:
        cand["sha256"] = json.loads((bundle / "manifest.json").read_text())["files"][FP32]["sha256"]
    _candidates(bundle, cand)
    with pytest.raises(BundleError, match=message):
        verify_bundle(bundle)


def test_a_candidate_listed_twice_or_a_profile_entry_of_the_wrong_type_is_refused(bundle):
    sha = json.loads((bundle / "manifest.json").read_text())["files"][FP32]["sha256"]
    _candidates(bundle, *[{"variant": "int8", "model": FP32, "sha256": sha}] * 2)
    with pytest.raises(BundleError, match=r"profiles\.cpu-ci\.candidates: lists a variant twice: \['int8'\]"):
        verify_bundle(bundle)
    _candidates(bundle, {"variant": "int8", "model": FP32, "sha256": sha})
    verify_bundle(bundle)  # a listed file, its sha256, a plain name: verified
    edit_json(bundle / "manifest.json", lambda m: m["profiles"].update({"cpu-ci": [FP32]}))
    with pytest.raises(BundleError, match=r"profiles\.cpu-ci: expected an object, got list"):
        verify_bundle(bundle)
