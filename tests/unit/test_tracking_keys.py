"""Metric, param and tag keys are made MLflow-safe without merging distinct names."""

from __future__ import annotations

import pytest

from edgeproof.tracking.class_metrics import per_class_metrics
from edgeproof.tracking.keys import MAX_KEY_LENGTH, clean_key, clean_keys, clean_part, unique_names
from edgeproof.tracking.record import figure_metrics

NASTY = [
    "traffic light (red)",
    "a:b",
    "ünïcode",
    "",
    ".",
    "..",
    "../up",
    "/abs",
    "a//b",
    "a/./b",
    "trail/",
    "x" * 400,
    "tab\there",
    "semi;colon,comma",
]


@pytest.mark.parametrize("name", NASTY)
def test_cleaned_keys_pass_mlflow_validation(name):
    from mlflow.utils.validation import _validate_metric_name, _validate_param_name, _validate_tag_name

    key = clean_key(name)
    _validate_metric_name(key)
    _validate_param_name(key)
    _validate_tag_name(key)
    assert len(key) <= MAX_KEY_LENGTH
    assert clean_key(key) == key  # cleaning is idempotent


@pytest.mark.parametrize("name", ["eval.map50", "bench.latency_ms.p95", "dvc.train.models/best.pt", "a b-c_d"])
def test_valid_keys_are_unchanged(name):
    assert clean_key(name) == name


def test_distinct_names_stay_distinct():
    names = ["a(b)", "a[b]", "a_b_", "x" * 300 + "1", "x" * 300 + "2"]
    cleaned = unique_names(names)
    assert len(set(cleaned.values())) == len(names)
    assert cleaned["a_b_"] == "a_b_"  # an already valid name keeps its name
    assert all(len(v) <= MAX_KEY_LENGTH for v in cleaned.values())
    again = clean_keys(dict.fromkeys(cleaned.values(), 1.0))
    assert sorted(again) == sorted(cleaned.values())


def test_class_names_are_one_key_segment():
    assert clean_part("person/rider") == "person_rider"
    metrics = per_class_metrics(
        {"per_class": [{"name": "a(b)", "ap": 0.1}, {"name": "a)b(", "ap": 0.2}, {"name": "car", "ap": None}]}
    )
    assert len(metrics) == 2 and sorted(metrics.values()) == [0.1, 0.2]
    assert all(k.startswith("eval.class.a_b_") and k.endswith(".ap") and "/" not in k for k in metrics)


def test_classes_sharing_a_name_keep_their_own_metrics():
    """evaluate's rows carry the category id: classes sharing a name (or named like the key that
    tells such classes apart) are keyed as in the data report, each keeping its own AP."""
    rows = [
        {"category_id": 3, "name": "car", "ap": 0.1},
        {"category_id": 5, "name": "car", "ap": 0.2},
        {"category_id": 7, "name": "car#3", "ap": 0.3},
    ]
    metrics = per_class_metrics({"per_class": rows})
    assert len(metrics) == 3 and sorted(metrics.values()) == [0.1, 0.2, 0.3]
    assert metrics["eval.class.car_5.ap"] == 0.2
    assert per_class_metrics({"per_class": [{"category_id": 1, "name": "car", "ap": 0.5}]}) == {
        "eval.class.car.ap": 0.5
    }


def test_a_class_has_one_segment_in_data_and_eval():
    """A class whose name MLflow rejects shows under the same cleaned name, hash included, in the data
    report's counts and in evaluate's AP (each namespace had cleaned it its own way: ``a/b`` stayed a
    nested path under ``data.*`` while ``eval.class.*`` hashed it against ``a_b``)."""
    names = {1: "a/b", 2: "a_b", 3: "x:y", 4: "ok"}
    counts = {name: i for i, name in names.items()}
    metrics = {
        "data": {"splits": {"train": {"images": 5, "classes": counts}, "val": {"classes": counts}}},
        "eval": {"map50_95": 0.5, "per_class": [{"category_id": i, "name": n, "ap": i / 10} for i, n in names.items()]},
    }
    logged = figure_metrics(metrics)
    for split in ("train", "val"):
        prefix = f"data.splits.{split}.classes."
        data = {k[len(prefix) :]: v for k, v in logged.items() if k.startswith(prefix)}
        ap = {k[len("eval.class.") : -len(".ap")]: round(v * 10) for k, v in logged.items() if k.endswith(".ap")}
        assert data == ap and len(data) == 4  # the same segment per class, each class's own figures
    assert logged["data.splits.train.classes.ok"] == 4 and logged["eval.class.ok.ap"] == 0.4
    assert logged["data.splits.train.images"] == 5 and logged["eval.map50_95"] == 0.5
    assert all("/" not in k.split(".classes.", 1)[-1] for k in logged)
