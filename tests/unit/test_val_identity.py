"""The build gate's ``val_identity`` rule: data/prepared's val and the gated eval.json's counts held to the data
stage's record of val (metrics/data.json), so a val set rewritten after the data stage and `dvc commit`ed
(launder12 finding 1: any model then scores mAP50 ~ 1) is invalid, not a pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeproof.data.identity import DIGEST_KEYS
from edgeproof.val_identity import VAL_IDENTITY, val_identity_rule
from edgeproof.verdict.rules import INCONCLUSIVE, INVALID, PASS
from tests.data.builders import clean_coco, coco_image, draw, save, write_coco
from tests.data.test_params_and_stage import SRC, _run_stage, _write_params
from tests.unit import gate_inputs as gi

SOURCE = "metrics/variants/int8/eval.json"


def _prepared(root: Path, data: dict) -> tuple[Path, Path, dict]:
    """Run the data stage in ``root`` with params' ``data``: (data/prepared, metrics/data.json, an eval.json's
    counts as the evaluation of that val writes them)."""
    _write_params(root, data)
    assert _run_stage(root) == 0
    prepared, report = root / "data/prepared", root / "metrics/data.json"
    gt = json.loads((prepared / "annotations/val.json").read_text())
    plain = [a for a in gt["annotations"] if not a.get("iscrowd")]
    rows = [
        {"category_id": c["id"], "name": c["name"], "n_gt": sum(a["category_id"] == c["id"] for a in plain)}
        for c in gt["categories"]
    ]
    counts = {"n_images": len(gt["images"]), "n_gt": len(plain), "n_gt_crowd": len(gt["annotations"]) - len(plain)}
    return prepared, report, {**counts, "per_class": rows}


SYNTHETIC = {"synthetic": {"n_train": 4, "n_val": 6, "image_size": 64}}


def _rule(ev: dict, prepared: Path, report: Path | None) -> dict:
    rule = val_identity_rule(ev, SOURCE, prepared, report)
    assert rule["name"] == VAL_IDENTITY and rule["source"] == SOURCE
    return rule


def test_the_val_the_data_stage_wrote_passes(tmp_path):
    prepared, report, ev = _prepared(tmp_path, SYNTHETIC)
    assert _rule(ev, prepared, report)["status"] == PASS


def test_a_relabelled_val_is_invalid_naming_the_file_the_key_and_both_digests(tmp_path):
    prepared, report, ev = _prepared(tmp_path, SYNTHETIC)
    recorded = json.loads(report.read_text())["splits"]["val"]["annotations_sha256"]
    path = prepared / "annotations/val.json"
    gt = json.loads(path.read_text())
    gt["annotations"] = gt["annotations"][1:]  # the relabelling, and the evaluation over it, agree with each other
    path.write_text(json.dumps(gt))
    ev = {**ev, "n_gt": ev["n_gt"] - 1}
    rule = _rule(ev, prepared, report)
    assert rule["status"] == INVALID
    assert f"{path.as_posix()}: annotations_sha256 " in rule["reason"]
    assert rule["measured"] == "differs: annotations_sha256, n_gt"
    assert f"differs from {report.as_posix()} splits.val.annotations_sha256 {recorded}" in rule["reason"]
    assert (
        f"{SOURCE} n_gt {ev['n_gt']} differs from {report.as_posix()} splits.val.boxes - crowd_boxes" in rule["reason"]
    )


@pytest.mark.parametrize("folder, key", [("images/val", "images_sha256"), ("labels/val", "labels_sha256")])
def test_a_val_image_or_label_file_dropped_is_invalid(tmp_path, folder, key):
    prepared, report, ev = _prepared(tmp_path, SYNTHETIC)
    sorted((prepared / folder).iterdir())[-1].unlink()
    rule = _rule(ev, prepared, report)
    assert rule["status"] == INVALID and f"{(prepared / folder).as_posix()}: {key} " in rule["reason"]


def test_eval_counts_other_than_the_data_stage_s_are_invalid_naming_the_class(tmp_path):
    prepared, report, ev = _prepared(tmp_path, SYNTHETIC)
    val = json.loads(report.read_text())["splits"]["val"]
    row = ev["per_class"][0]
    ev["per_class"][0] = {**row, "n_gt": row["n_gt"] + 3}
    rule = _rule({**ev, "n_images": ev["n_images"] - 1}, prepared, report)
    assert rule["status"] == INVALID
    assert (
        f"n_images {ev['n_images'] - 1} differs from {report.as_posix()} splits.val.images {val['images']}"
        in (rule["reason"])
    )
    name = row["name"]
    wanted = f"per_class[{name}].n_gt {row['n_gt'] + 3} differs from {report.as_posix()} splits.val.classes.{name} "
    assert wanted + str(val["classes"][name]) in rule["reason"]


def test_a_data_report_without_the_digests_is_inconclusive_never_a_pass(tmp_path):
    prepared, report, ev = _prepared(tmp_path, SYNTHETIC)
    older = json.loads(report.read_text())
    for key in DIGEST_KEYS:
        del older["splits"]["val"][key]
    report.write_text(json.dumps(older))
    rule = _rule(ev, prepared, report)
    assert rule["status"] == INCONCLUSIVE and "(written by older code)" in rule["reason"]
    assert _rule({**ev, "n_images": 1}, prepared, report)["status"] == INVALID  # the counts still hold
    assert _rule(ev, prepared, tmp_path / "absent.json")["status"] == INCONCLUSIVE
    assert _rule(ev, prepared, None)["status"] == INCONCLUSIVE
    report.write_text(json.dumps({"splits": {}}))
    assert _rule(ev, prepared, report)["status"] == INCONCLUSIVE


def test_val_background_images_left_out_on_purpose_are_in_neither_count(tmp_path):
    """val_keep_negatives: false drops val's background images before the data stage counts val: the evaluation
    of the prepared val and the data stage's record agree."""
    paths = clean_coco(tmp_path / SRC)
    gt = json.loads(paths["val"].read_text())
    for image_id in (9001, 9002):  # two background images in val
        save(tmp_path / SRC / "val" / f"{image_id}.jpg", draw(96, 72, seed=image_id))
        coco_image(gt["images"], image_id, f"{image_id}.jpg", 96, 72)
    write_coco(paths["val"], gt["images"], gt["annotations"], gt["categories"])
    coco = {
        "images": f"{SRC}/train",
        "annotations": f"{SRC}/annotations/instances_train.json",
        "val_images": f"{SRC}/val",
        "val_annotations": f"{SRC}/annotations/instances_val.json",
        "val_keep_negatives": False,
    }
    prepared, report, ev = _prepared(tmp_path, {"source": "coco", "coco": coco})
    data = json.loads(report.read_text())
    assert data["selection"]["val_negatives_dropped"] == 2 and data["splits"]["val"]["images"] == ev["n_images"] == 3
    assert _rule(ev, prepared, report)["status"] == PASS


def _gate(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict]:
    """The gate stage as dvc.yaml runs it (--data data/prepared --data-metrics metrics/data.json) over the
    passing input set, whose evaluation counts are the default synthetic val's: (exit code, gate.json). The set's
    model is a few bytes, so the gate's own scoring of it (rescored) is left out."""
    code = gi.stage_run(root, monkeypatch, root / "metrics/data.json")
    return code, json.loads((root / "gate.json").read_text())


def _default_data_stage(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data stage with the repository's params (tracking off) in ``root``, the working directory from now on."""
    import yaml
    from stages.data import main as data_main

    repo = Path(__file__).resolve().parents[2]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["track"]["enabled"] = False
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(root)
    assert data_main(["--params", "params.yaml", "--out", "data/prepared", "--metrics", "metrics/data.json"]) == 0


def test_the_gate_stage_refuses_a_val_relabelled_after_the_data_stage(tmp_path, monkeypatch):
    """launder12 finding 1 through the stage: the default data stage's val, then its ground truth rewritten in
    data/prepared (annotations and labels alike, as `dvc commit` would keep them): invalid, and the headline
    withholds the evaluation's figures."""
    _default_data_stage(tmp_path, monkeypatch)
    gi.write_inputs(tmp_path, gi.documents(tmp_path))
    code, report = _gate(tmp_path, monkeypatch)
    assert code == 0 and report["verdict"] == "pass" and "val_identity" not in report["failed"]
    path = tmp_path / "data/prepared/annotations/val.json"
    gt = json.loads(path.read_text())
    gt["annotations"] = [{**a, "bbox": [0.0, 0.0, 10.0, 10.0]} for a in gt["annotations"]]  # same counts
    path.write_text(json.dumps(gt))
    code, report = _gate(tmp_path, monkeypatch)
    rule = next(r for r in report["rules"] if r["name"] == "val_identity")
    assert code == 1 and report["verdict"] == "fail" and rule["status"] == INVALID
    assert "annotations/val.json: annotations_sha256" in rule["reason"]
    assert rule["measured"] == "differs: annotations_sha256"  # gate.md's cell; the values are in the reason
    headline = json.loads((tmp_path / "headline.json").read_text())
    assert headline.get("mAP50") is None  # eval.json's figure is not this val's: withheld


def test_a_data_report_older_than_the_digests_leaves_the_gate_stage_inconclusive(tmp_path, monkeypatch):
    _default_data_stage(tmp_path, monkeypatch)
    older = json.loads((tmp_path / "metrics/data.json").read_text())
    for key in DIGEST_KEYS:
        del older["splits"]["val"][key]
    (tmp_path / "metrics/data.json").write_text(json.dumps(older))
    gi.write_inputs(tmp_path, gi.documents(tmp_path))
    code, report = _gate(tmp_path, monkeypatch)
    assert code == 3 and report["verdict"] == "inconclusive" and report["failed"] == ["val_identity"]
