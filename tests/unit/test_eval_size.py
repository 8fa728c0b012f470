"""The val set behind an mAP (profiles' ``gate.min_val_images`` / ``gate.min_val_boxes_per_class``): an mAP over
too few images or boxes measures nothing, so its rules are inconclusive, and every report says what it is over.

The finding (contact11, 1): a newcomer's 8 photos left 2 val images with 5 boxes; ``edgeproof evaluate`` scored
them ``map50 1.0`` and the release gate said PASSED, with no word of how little the figure came from.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from edgeproof.gate import check_gate, render_markdown
from edgeproof.profiles import DeviceGate, parse_profiles
from edgeproof.release.choose import choose_measured
from edgeproof.release.measure import Measured, records
from edgeproof.settings import SettingsError
from tests.unit import gate_inputs as gi
from tests.unit.test_release_choice import _variant

# contact11's evaluation of the 2-image val split (work/tiny_eval.json): circle 2, square 3, no triangle
TINY_ROWS = [
    {"category_id": 1, "name": "circle", "ap": 0.9, "ap50": 1.0, "ap75": 1.0, "n_gt": 2},
    {"category_id": 2, "name": "square", "ap": 0.810891, "ap50": 1.0, "ap75": 1.0, "n_gt": 3},
    {"category_id": 3, "name": "triangle", "ap": None, "ap50": None, "ap75": None, "n_gt": 0},
]
SHA = gi.sha_of(gi.RELEASED)


def _tiny(map50: float = 1.0) -> dict:
    """The released variant's eval.json of :mod:`tests.unit.gate_inputs`, over contact11's 2 val images."""
    doc = gi.eval_doc(gi.RELEASED)
    rows = copy.deepcopy(TINY_ROWS)
    for row in rows[:2]:
        row["ap50"] = map50
    doc.update(per_class=rows, n_images=2, n_background_images=0, n_gt=5, map50=map50, map50_95=0.855446, map75=1.0)
    doc["cross_check"].update(pycocotools=0.855446, independent=0.855446, ultralytics=0.855446, ultralytics_map50=map50)
    return doc


def _gate(evaluation: dict, gate: DeviceGate | None = None) -> dict:
    bench = gi.bench_doc(gi.RELEASED, 198.393)
    return check_gate(gate or DeviceGate(), evaluation, bench, SHA, profile="cpu-ci")


def _rule(report: dict, name: str) -> dict:
    return next(r for r in report["rules"] if r["name"] == name)


def test_an_map_over_two_images_and_five_boxes_is_inconclusive_not_a_pass():
    report = _gate(_tiny())
    rule = _rule(report, "map50")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive" and rule["measured"] == 1.0
    assert report["failed"] == ["map50"]  # the rest of the set is the passing control's
    why = rule["reason"]
    assert why.startswith(
        "over 2 images (0 background), 5 boxes (fewest: circle 2; 1 class has none), too few to measure accuracy"
    )
    assert "class circle has 2 boxes, under profiles.cpu-ci.gate.min_val_boxes_per_class 10" in why
    assert "2 images, under profiles.cpu-ci.gate.min_val_images 10" in why


def test_a_missed_threshold_over_too_few_boxes_is_not_a_fail_either():
    """A 0.1 mAP over 5 boxes says no more about the model than a 1.0 does."""
    rule = _rule(_gate(_tiny(map50=0.1)), "map50")
    assert rule["status"] == "inconclusive" and "too few to measure accuracy" in rule["reason"]


def test_the_default_dataset_clears_the_default_minimum_and_gate_md_says_what_the_map_is_over():
    """The default dataset's val (metrics/eval.json): 50 images, 116 boxes, circle 39, square 44, triangle 33."""
    report = _gate(gi.eval_doc(gi.RELEASED), DeviceGate(min_map50_95=0.5))
    assert report["verdict"] == "pass"
    over = {"images": 50, "boxes": 116, "classes": 3, "fewest": {"class": "triangle", "boxes": 33}}
    assert _rule(report, "map50")["over"] == {**over, "background_images": 4, "classes_without_boxes": 0}
    assert _rule(report, "map50_95")["over"] == _rule(report, "map50")["over"]
    md = render_markdown(report)
    size = "over 50 images (4 background), 116 boxes (fewest: triangle 33)"
    assert f"| map50 | `map50` (metrics/eval.json), {size} | >= 0.8 |" in md
    assert f"| map50_95 | `map50_95` (metrics/eval.json), {size} |" in md
    assert "| fps | `fps_e2e` (metrics/bench.json), over 100 timed frames |" in md  # a timing rule: its frames


def test_the_minimum_is_the_profiles_to_lower_and_one_box_per_class_is_the_floor():
    lowered = DeviceGate(min_val_images=2, min_val_boxes_per_class=2)
    # the class without a val box (triangle) is never measured, however low the keys (verify11 #3)
    empty = _rule(_gate(_tiny(), lowered), "map50")
    assert empty["status"] == "inconclusive" and "1 class(es) without a val box" in empty["reason"]
    tiny = _tiny()
    tiny["per_class"] = [r for r in tiny["per_class"] if r["n_gt"]]  # a dataset of the two measured classes
    assert _gate(tiny, lowered)["verdict"] == "pass"
    assert _gate(tiny, DeviceGate(min_val_images=2, min_val_boxes_per_class=3))["verdict"] == "inconclusive"
    only_images = _rule(_gate(tiny, DeviceGate(min_val_images=3, min_val_boxes_per_class=2)), "map50")
    assert only_images["status"] == "inconclusive" and "class circle" not in only_images["reason"]
    assert "2 images, under profiles.cpu-ci.gate.min_val_images 3" in only_images["reason"]


@pytest.mark.parametrize(
    ("dotted", "value", "missing"),
    [
        ("n_images", gi.DELETE, "n_images"),
        ("n_gt", None, "n_gt"),
        ("per_class.2.n_gt", gi.DELETE, "per_class[].n_gt"),
    ],
)
def test_an_evaluation_that_does_not_say_what_it_is_over_is_inconclusive(dotted, value, missing):
    evaluation = gi.eval_doc(gi.RELEASED)
    gi.damage(evaluation, dotted, value)
    rule = _rule(_gate(evaluation), "map50")
    assert rule["status"] == "inconclusive" and "over" not in rule
    assert (
        rule["reason"] == f"map50 not judged: no {missing}: how many val images and boxes the mAP comes from is unknown"
    )


def test_no_per_class_at_all_is_inconclusive_too():
    evaluation = gi.eval_doc(gi.RELEASED)
    del evaluation["per_class"]
    assert _rule(_gate(evaluation), "map50")["status"] == "inconclusive"


@pytest.mark.parametrize(
    ("dotted", "value", "said"),
    [
        ("n_images", "50", 'n_images: "50" is a string, expected a count'),
        ("n_gt", 116.0, "n_gt: 116.0 is a number, expected a count"),
        ("n_gt", -1, "n_gt: -1 is a number, expected a count"),
        ("per_class.0.n_gt", True, "per_class[0].n_gt: true is a boolean, expected a count"),
        ("per_class.1", "square", 'per_class[1]: "square" is a string, expected a class\'s row'),
        ("n_background_images", 4.0, "n_background_images: 4.0 is a number, expected a count"),
    ],
)
def test_counts_that_are_no_counts_are_invalid(dotted, value, said):
    evaluation = gi.eval_doc(gi.RELEASED)
    gi.damage(evaluation, dotted, value)
    report = _gate(evaluation)
    rule = _rule(report, "map50")
    assert report["verdict"] == "fail" and rule["status"] == "invalid" and said in rule["reason"]


def test_a_box_count_its_class_rows_contradict_is_an_edited_file():
    """One evaluation counts the same non-crowd boxes for n_gt and each class's n_gt: raising n_gt alone (to
    look like more than was scored) is refused by results_consistent, naming the file and key."""
    evaluation = gi.eval_doc(gi.RELEASED)
    evaluation["n_gt"] = 1160
    rule = _rule(_gate(evaluation), "results_consistent")
    assert rule["status"] == "invalid"
    assert rule["reason"] == "metrics/eval.json n_gt 1160 differs from the sum of per_class[].n_gt 116"


def test_a_class_without_a_val_box_is_not_the_fewest_and_is_counted():
    from edgeproof.verdict.eval_size import read_size

    size, why, _ = read_size({"n_images": 2, "n_gt": 5, "per_class": TINY_ROWS})
    assert why is None and size.fewest == ("circle", 2) and size.classes == 2 and size.no_boxes == 1
    size, why, _ = read_size({"n_images": 3, "n_gt": 0, "per_class": [{"name": "circle", "n_gt": 0}]})
    assert size.fewest is None
    rule = _rule(_gate({**_tiny(), "n_images": 30, "n_gt": 0, "per_class": [dict(TINY_ROWS[2])]}), "map50")
    assert rule["status"] == "inconclusive" and "too few to measure accuracy: no class has a val box" in rule["reason"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("min_val_images", 0, "must be >= 1"),
        ("min_val_boxes_per_class", 2.5, "expected an integer"),
        ("min_val_boxes_per_class", "10", "expected an integer"),
        ("min_val_images", True, "expected an integer"),
    ],
)
def test_the_minimum_is_validated_naming_the_key(key, value, message):
    with pytest.raises(SettingsError, match=rf"profiles\.cpu-ci\.gate\.{key}: .*{message}"):
        parse_profiles({"cpu-ci": {"gate": {key: value}}})
    assert getattr(parse_profiles({"cpu-ci": {"gate": {key: 3}}})["cpu-ci"].gate, key) == 3


def test_the_release_choice_says_a_tiny_val_leaves_the_gate_inconclusive_not_failed():
    variants = {"fp32": _variant("fp32", 0.79, 150.0), "int8": _variant("int8", 0.785, 190.0)}
    for v in variants.values():
        v["eval"].update(n_images=2, n_background_images=0, n_gt=5, per_class=copy.deepcopy(TINY_ROWS[:2]))
        for row in v["eval"]["per_class"]:
            row.update(ap50=v["eval"]["map50"], ap=v["eval"]["map50_95"], ap75=v["eval"]["map50_95"])
    profile = parse_profiles({"cpu-ci": {}})["cpu-ci"]
    chosen = choose_measured("cpu-ci", profile, variants)
    assert {r["reason"] for r in chosen["rejected"]} == {"is inconclusive at the profile gate: map50"}
    assert chosen["variant"] == "int8"  # the fastest otherwise acceptable one goes to the gate, which says why


def test_the_release_record_carries_what_each_variant_was_evaluated_over():
    """A profile that does not evaluate on its board is judged on this record (build/release.json in the bundle)."""
    from edgeproof.verdict.eval_size import read_size

    ev = gi.eval_doc("fp32")
    measured = Measured()
    measured.evals["fp32"], measured.benches["fp32"] = ev, gi.bench_doc("fp32", 124.883)
    facts = {"fp32": {"path": "models/optimized/fp32.onnx", "sha256": gi.sha_of("fp32")}}
    paths = {"fp32": (Path("metrics/eval.json"), Path("metrics/bench.json"))}
    rec = records(facts, {}, measured, paths)["fp32"]
    assert (rec["n_images"], rec["n_background_images"], rec["n_gt"]) == (50, 4, 116)
    assert rec["per_class"] == [{k: row[k] for k in ("category_id", "name", "n_gt")} for row in gi.PER_CLASS]
    size, why, _ = read_size(rec)
    assert why is None and size.fewest == ("triangle", 33)


# records11 follow-up: the mAP's val set says how many of its images are background (no box: only false
# positives to find there), and whether the data stage left val's background images out on purpose


def test_an_evaluation_older_than_its_background_count_shows_nothing_extra_and_still_passes():
    evaluation = gi.eval_doc(gi.RELEASED)
    del evaluation["n_background_images"]
    report = _gate(evaluation, DeviceGate(min_map50_95=0.5))
    assert report["verdict"] == "pass" and "background_images" not in _rule(report, "map50")["over"]
    assert "`map50` (metrics/eval.json), over 50 images, 116 boxes (fewest: triangle 33) |" in render_markdown(report)


def test_more_background_images_than_images_is_an_edited_file():
    evaluation = gi.eval_doc(gi.RELEASED)
    evaluation["n_background_images"] = 51
    rule = _rule(_gate(evaluation), "results_consistent")
    assert (
        rule["status"] == "invalid"
        and "eval.json n_background_images 51 is more than its n_images 50" in (rule["reason"])
    )


def test_val_background_images_left_out_are_named_beside_every_accuracy_rule():
    bench, ev = gi.bench_doc(gi.RELEASED, 198.393), gi.eval_doc(gi.RELEASED)
    report = check_gate(DeviceGate(min_map50_95=0.5), ev, bench, SHA, profile="cpu-ci", val_negatives_dropped=12)
    assert report["verdict"] == "pass"  # said, not judged: the figure is still the model's over this val set
    assert _rule(report, "map50")["over"]["val_negatives_dropped"] == 12
    md = render_markdown(report)
    said = (
        "over 50 images (4 background), 116 boxes (fewest: triangle 33); val_keep_negatives: false left out 12 "
        "background images: false positives on them are not counted"
    )
    assert f"| map50 | `map50` (metrics/eval.json), {said} |" in md
    assert f"| map50_95 | `map50_95` (metrics/eval.json), {said} |" in md
    assert "left out" not in md.split("| fps |")[1].split("\n")[0]  # a speed rule has nothing to say
    for none in (0, None):
        quiet = check_gate(DeviceGate(), ev, bench, SHA, val_negatives_dropped=none)
        assert "val_negatives_dropped" not in _rule(quiet, "map50")["over"]
        assert "left out" not in render_markdown(quiet)


def _gate_stage(root: Path, data_report: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """The gate stage as dvc.yaml runs it (its --data-metrics argument) over the passing input set, with
    ``data_report`` as metrics/data.json: gate.md. The input set's model is a few bytes, not a model, so the
    gate's own scoring of it (rule rescored, tests/unit/test_gate_rescore.py and the pipeline test) is left out."""
    import json
    import shlex

    import yaml

    repo = Path(__file__).resolve().parents[2]
    stage = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["gate"]
    cmd = shlex.split(stage["cmd"])
    data_metrics = cmd[cmd.index("--data-metrics") + 1]
    assert data_metrics in stage["deps"]  # a gate that reads it reruns when it changes
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["track"]["enabled"] = False
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    gi.write_inputs(root, gi.documents(root))
    (root / data_metrics).write_text(json.dumps(data_report))
    code = gi.stage_run(root, monkeypatch, root / data_metrics)
    return (root / "gate.md").read_text() if code != 2 else f"exit {code}"


def test_the_gate_stage_reads_val_negatives_dropped_from_the_data_report(tmp_path, monkeypatch):
    """metrics/data.json's selection.val_negatives_dropped (val_keep_negatives: false) reaches gate.md's
    accuracy rows; a data.json without a selection (a source that selects nothing) adds nothing."""
    md = _gate_stage(tmp_path, {"selection": {"val_negatives_dropped": 7, "train_negatives_dropped": 30}}, monkeypatch)
    assert md.count("val_keep_negatives: false left out 7 background images") == 1  # map50: cpu-ci's one mAP rule
    assert "left out" not in _gate_stage(tmp_path, {"splits": {}}, monkeypatch)
    assert "left out" not in _gate_stage(tmp_path, {"selection": {"val_negatives_dropped": 0}}, monkeypatch)
    refused = _gate_stage(tmp_path, {"selection": {"val_negatives_dropped": "7"}}, monkeypatch)
    assert refused == "exit 2"  # no count: refused
