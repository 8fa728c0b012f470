"""The device gate's accuracy rules over the val set the bundle ships: judged only over as many val images and
boxes per class as the judging profile asks (``gate.min_val_images``, ``gate.min_val_boxes_per_class``), and
its report says what each mAP is over. The tests' bundle has 6 val images of one box each: under the defaults.
"""

from __future__ import annotations

import json

from edgeproof.verdict import detections as dets
from edgeproof.verdict.device import device_gate
from edgeproof.verdict.report import render_markdown
from tests.device.builders import write_build_side
from tests.device.conftest import base_params, make_bundle, measure_bundle, profiles_raw, rule_named

DEFAULTS = {"gate": {"min_val_images": 10, "min_val_boxes_per_class": 10}}  # params.yaml's, for these tests


def test_the_device_scores_say_what_they_are_over():
    gt = {
        "images": [{"id": i} for i in (1, 2, 3)],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 7, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 8, "bbox": [0, 0, 4, 4], "area": 16, "iscrowd": 1},
        ],
        "categories": [{"id": 7, "name": "thing"}, {"id": 8, "name": "other"}],
    }
    found = [{"image_id": 1, "category_id": 7, "bbox": [0, 0, 4, 4], "score": 0.9}]
    scores = dets.score(gt, found)
    assert (scores["n_images"], scores["n_gt"]) == (3, 2)  # the crowd region is no box to find
    assert scores["n_background_images"] == 1  # image 3: only false positives to find there
    assert [(r["name"], r["n_gt"]) for r in scores["per_class"]] == [("thing", 2), ("other", 0)]


def test_on_device_map_over_too_few_boxes_is_inconclusive_and_says_so(bundle, measured, tmp_path):
    rules = base_params(tmp_path, DEFAULTS)
    report = device_gate(bundle, "cpu-ci", measured, rules_params=rules)
    assert report["verdict"] == "inconclusive" and report["failed"] == ["map50", "map_drop"]
    for name in ("map50", "map_drop"):
        rule = rule_named(report, name)
        assert rule["status"] == "inconclusive" and rule["measured"] is not None
        assert rule["over"] == {
            "images": 6,
            "boxes": 6,
            "classes": 1,
            "fewest": {"class": "thing", "boxes": 6},
            "background_images": 0,
            "classes_without_boxes": 0,
        }
        assert "class thing has 6 boxes, under profiles.cpu-ci.gate.min_val_boxes_per_class 10" in rule["reason"]
        assert "6 images, under profiles.cpu-ci.gate.min_val_images 10" in rule["reason"]
    md = render_markdown(report)
    size = "over 6 images (0 background), 6 boxes (fewest: thing 6)"
    assert f"| map50 | `map50` (device detections (pycocotools)), {size} |" in md
    # the profile asking for what the val set has: judged, and still saying what it is over
    passing = device_gate(bundle, "cpu-ci", measured, rules_params=base_params(tmp_path, {}, name="tiny.yaml"))
    assert passing["verdict"] == "pass" and rule_named(passing, "map50")["over"]["images"] == 6


def test_a_build_side_map_without_its_counts_is_not_judged(tmp_path):
    """A profile that does not evaluate on its board is judged on build/release.json's record of the variant: one
    built before the record carried what it was evaluated over leaves the accuracy rules inconclusive."""
    write_build_side(tmp_path, list(profiles_raw()))
    release = json.loads((tmp_path / "reports/release.json").read_text())
    for key in ("n_images", "n_gt", "per_class"):
        del release["variants"]["fp32"][key]
    (tmp_path / "reports/release.json").write_text(json.dumps(release))
    bundle = make_bundle(tmp_path)
    report = device_gate(bundle, "cpu-ci-build-map", measure_bundle(bundle, "cpu-ci-build-map"))
    rule = rule_named(report, "map50")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive" and rule["source"] == "build side"
    assert rule["reason"] == (
        "map50 not judged: no n_images, n_gt, per_class[].n_gt: how many val images and boxes the mAP comes from "
        "is unknown"
    )


def test_counts_that_contradict_each_other_are_invalid_on_the_device_side_too():
    """Only the build gate refused an n_gt its per-class rows contradict and more background images than images;
    the device gate reads the same counts (from release.json for a profile that does not evaluate on its board)."""
    from edgeproof.verdict.eval_size import read_size

    rows = [{"name": "a", "n_gt": 10}, {"name": "b", "n_gt": 12}]
    honest = {"n_images": 20, "n_background_images": 3, "n_gt": 22, "per_class": rows}
    assert read_size(honest)[0] is not None
    damaged = [
        ({"n_gt": 999}, "differs from the sum of per_class[].n_gt 22"),
        ({"n_background_images": 50}, "more than its n_images 20"),
    ]
    for damage, said in damaged:
        size, why, invalid = read_size({**honest, **damage})
        assert size is None and invalid and said in why
