"""The gates' property tests' material: a build gate input set that passes, as the pipeline writes it (two
variants measured on one machine, ``metrics/variants/<v>/{eval,bench}.json``, ``reports/release.json``
releasing int8 for the build profile, the model files themselves), and the damage done to one field of a
passing input set (the build gate's here, the device gate's in ``tests/device/test_gate_properties.py``)."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

from hypothesis import strategies as st

from edgeproof.verdict.eval_size import size_record

BUILD_PROFILE = "cpu-ci"
RELEASED, OTHER = "int8", "fp32"
DEVICE = {
    "cpu_model": "AMD EPYC",
    "cpu_cores": 2,
    "machine": "x86_64",
    "providers_used": ["CPUExecutionProvider"],
}
# per-class APs whose means are the mAP figures (the evaluation's pycocotools means over classes with boxes)
PER_CLASS = (
    {"category_id": 1, "name": "circle", "ap": 0.80, "ap50": 0.97, "ap75": 0.94, "n_gt": 39},
    {"category_id": 2, "name": "square", "ap": 0.79, "ap50": 0.96, "ap75": 0.93, "n_gt": 44},
    {"category_id": 3, "name": "triangle", "ap": 0.75, "ap50": 0.95, "ap75": 0.92, "n_gt": 33},
)
MAP50, MAP50_95, MAP75 = 0.96, 0.78, 0.93
# what reports/release.json's variant record copies of its eval.json and bench.json (release.measure.records)
RELEASE_FIGURES = ("map50", "map50_95", "fps_e2e", "latency_ms_p95")
# metrics/parity.json's per variant: the counts the gate judges again (optimize.parity's defaults pass them)
_KEPT = {"reference_detections": 20, "detections": 20, "matched": 19, "lost": 1, "added": 1, "matched_share": 0.95}
PARITY_PASSED = {"measured": True, "passed": True, **_KEPT, "classes": {"0": _KEPT}}
VAL_IMAGES = 50  # the default dataset's val: enough for the accuracy rules (profiles' gate.min_val_*)
VAL_BACKGROUND = 4  # of them without a box (metrics/data.json splits.val.empty_images)


def one_class_rows(map50: Any, map50_95: Any, map75: Any = None) -> list[dict[str, Any]]:
    """``per_class`` of a one-class evaluation reporting these mAP figures (every evaluation writes the rows): its
    row's APs are the figures (a mean of one), ``ap75`` the mAP50-95 where no mAP75 is given. A figure no AP can
    be (a test's edit: ``"0.9"``, 7.0) leaves its AP at 0.5, as the evaluation wrote it: the edit is the figure's."""

    def ap(figure: Any) -> Any:
        real = isinstance(figure, (int, float)) and not isinstance(figure, bool) and 0.0 <= figure <= 1.0
        return figure if real else 0.5

    ap75 = map50_95 if map75 is None else map75
    return [{"category_id": 1, "name": "shape", "ap": ap(map50_95), "ap50": ap(map50), "ap75": ap(ap75), "n_gt": 40}]


def evaluated_over(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """An evaluation's counts beside its ``per_class`` ``rows``: ``n_images``, ``n_background_images`` and
    ``n_gt``, their boxes' sum."""
    return {"n_images": VAL_IMAGES, "n_background_images": VAL_BACKGROUND, "n_gt": sum(row["n_gt"] for row in rows)}


def model_bytes(variant: str) -> bytes:
    """A stand-in model file per variant (the gate only hashes it)."""
    return f"onnx model {variant}".encode() * 100


def sha_of(variant: str) -> str:
    """The sha256 of :func:`model_bytes`."""
    return hashlib.sha256(model_bytes(variant)).hexdigest()


def bench_doc(variant: str, fps: float) -> dict[str, Any]:
    """A ``bench.json`` as the benchmark writes it: ``fps_e2e`` and ``latency_ms`` copy its ``e2e`` run."""
    e2e = {"fps": fps, "images": 100, "samples": 100, "mean": round(1000.0 / fps, 4), "std": 0.29}
    e2e.update(min=7.6, p50=7.9, p90=8.38, p95=8.585, p99=9.15, max=9.26)
    model = {"batch": 1, "samples": 100, "fps": fps * 1.2, "mean": 6.5, "min": 6.3, "p50": 6.49, "p95": 6.8, "max": 7.7}
    return {
        "fps_e2e": fps,
        "latency_ms": {k: e2e[k] for k in ("mean", "p50", "p90", "p95", "p99")},
        "latency_model_ms": {k: model[k] for k in ("mean", "p50", "p95")},
        "e2e": e2e,
        "model": model,
        "model_path": f"models/optimized/{variant}.onnx",
        "model_sha256": sha_of(variant),
        "device": copy.deepcopy(DEVICE),
        "settings": {"batch": 1, "runs": 100, "e2e_images": 50, "warmup": 10},
    }


def eval_doc(variant: str) -> dict[str, Any]:
    """An ``eval.json`` whose mAP both second scorers agree with (mAP50-95 and ultralytics' mAP50)."""
    cross_check = {
        "metric": "map50_95",
        "pycocotools": MAP50_95,
        "independent": MAP50_95,
        "ultralytics": MAP50_95,
        "ultralytics_map50": MAP50,
        "difference": {"independent": 0.0, "ultralytics": 0.0},
        "tolerance": {"independent": 0.001, "ultralytics": 0.001},
        "skipped": {},
        "passed": True,
    }
    return {
        "map50": MAP50,
        "map50_95": MAP50_95,
        "map75": MAP75,
        "per_class": [dict(row) for row in PER_CLASS],
        **evaluated_over(list(PER_CLASS)),
        "model_path": f"models/optimized/{variant}.onnx",
        "model_sha256": sha_of(variant),
        "cross_check": cross_check,
    }


def release_doc(root: Path) -> dict[str, Any]:
    """``reports/release.json``: both variants measured here, int8 released for the build profile (fp32 for a
    board), each record with the copies of its files' figures the release stage writes."""
    variants = {}
    for variant, fps in ((OTHER, 124.883), (RELEASED, 198.393)):
        where = root / "metrics" / "variants" / variant
        variants[variant] = {
            "path": (root / f"models/optimized/{variant}.onnx").as_posix(),
            "sha256": sha_of(variant),
            "evaluated": True,
            "map50_95": MAP50_95,
            "map50": MAP50,
            "fps_e2e": fps,
            "latency_ms_p95": bench_doc(variant, fps)["latency_ms"]["p95"],
            **size_record(eval_doc(variant)),  # the counts, copied as the release stage copies them
            "eval_json": (where / "eval.json").as_posix(),
            "bench_json": (where / "bench.json").as_posix(),
        }
    chosen = {k: variants[RELEASED][k] for k in ("path", "sha256")}
    board = {k: variants[OTHER][k] for k in ("path", "sha256")}  # a board's choice, judged on the board
    return {
        "build_profile": BUILD_PROFILE,
        "release_variant": RELEASED,
        "variants": variants,
        "profiles": {
            BUILD_PROFILE: {"variant": RELEASED, "measured_here": True, "rejected": [], **chosen},
            "jetson-nano": {"variant": OTHER, "measured_here": False, "rejected": [], **board},
        },
    }


def documents(root: Path) -> dict[str, Any]:
    """Every JSON file of the passing input set by its path under ``root``."""
    docs: dict[str, Any] = {"reports/release.json": release_doc(root)}
    docs["metrics/eval.json"] = eval_doc(OTHER)  # the evaluate stage's fp32 reference (release_choice's drop)
    docs["metrics/parity.json"] = {"detections": {"variants": {v: PARITY_PASSED for v in (OTHER, RELEASED)}}}
    # the optimize stage's record of each file (release_choice holds the reference and gated files to it)
    docs["metrics/optimize.json"] = {"variants": {v: {"sha256": sha_of(v)} for v in (OTHER, RELEASED)}}
    for variant, fps in ((OTHER, 124.883), (RELEASED, 198.393)):
        docs[f"metrics/variants/{variant}/eval.json"] = eval_doc(variant)
        docs[f"metrics/variants/{variant}/bench.json"] = bench_doc(variant, fps)
    return docs


def write_inputs(root: Path, docs: dict[str, Any]) -> None:
    """Write ``docs`` (:func:`documents`, perhaps edited) and the model files under ``root``."""
    for variant in (OTHER, RELEASED):
        path = root / f"models/optimized/{variant}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(model_bytes(variant))
    for rel, data in docs.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(data), encoding="utf-8")
    (root / "metrics/train.json").write_text(json.dumps({"epochs": 35}), encoding="utf-8")


DELETE = "<deleted>"  # a damage: the key is taken out of its object
# Values no measurement is (nor any identity): what every rule says it never passes
BROKEN = st.one_of(
    st.sampled_from([DELETE, None, math.nan, math.inf, -math.inf, True, False]),
    st.text(max_size=8),
    st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False),
    st.integers(max_value=-1),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.just("a"), st.integers(0, 3), max_size=1),  # an object where a figure belongs
)


class Target(NamedTuple):
    """One field of an input set: its file, its dotted path, and the rule that reads it (None: a refusal to
    judge at all is an answer too). ``present_only``: a cross-check input its writer may leave null, so only
    present values that are no measurement are damage (null and a missing key are the writer's "none")."""

    file: str
    path: str
    rule: str | None
    present_only: bool = False


def stage_run(root: Path, monkeypatch: Any, data_metrics: Path) -> int:
    """The gate stage over the input set in ``root`` with every file ``dvc.yaml`` passes it for a ``--release``
    run (``data_metrics`` as ``--data-metrics``): its exit code. The set's models are a few bytes, not models,
    so the gate's own scoring of them (rescored, the fp32 reference's) is left out; its tests are
    tests/unit/test_gate_rescore.py and the pipeline's."""
    from stages import gate as gate_stage

    argv = ["--params", str(root / "params.yaml"), "--release", str(root / "reports/release.json")]
    argv += ["--report-json", str(root / "gate.json"), "--report-md", str(root / "gate.md")]
    argv += ["--headline", str(root / "headline.json"), "--train-metrics", str(root / "metrics/train.json")]
    argv += ["--data-metrics", str(data_metrics), "--data", str(root / "data/prepared")]
    argv += ["--device-reports", str(root / "no-device-reports")]
    argv += ["--reference-eval", str(root / "metrics/eval.json"), "--parity", str(root / "metrics/parity.json")]
    argv += ["--optimize", str(root / "metrics/optimize.json")]
    argv += ["--reference-model", str(root / "models/optimized/fp32.onnx")]
    monkeypatch.setattr("edgeproof.release.gating._rescored", lambda args, params: None)
    monkeypatch.setattr("edgeproof.release.gating._reference_scored", lambda args, params: None)
    return gate_stage.main(argv)


def check_not_passed(report: dict[str, Any], target: Target, value: Any) -> None:
    """The verdict of ``report`` (a gate.json document) after ``target`` was damaged to ``value`` is not a
    pass, and the rule that reads the field is there, not passed, and says why (a fail may speak for itself)."""
    said = f"{target.file} {target.path} = {value!r}"
    assert report["verdict"] != "pass", f"{said} passed"
    rule = next((r for r in report["rules"] if r["name"] == target.rule), None)
    assert rule is not None, f"{said}: no rule {target.rule}, the gate judged {report['rules']}"
    assert rule["status"] != "pass", f"{said}: rule {target.rule} passed"
    assert rule["reason"] or rule["status"] == "fail", rule  # inconclusive and invalid say why


def damage(doc: Any, dotted: str, value: Any) -> None:
    """Set ``doc``'s field ``dotted`` (``a.0.b``: list items by index) to ``value``, or delete it (:data:`DELETE`)."""
    *parents, last = dotted.split(".")
    for part in parents:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    key: Any = int(last) if isinstance(doc, list) else last
    if isinstance(value, str) and value == DELETE:
        del doc[key]
    else:
        doc[key] = copy.deepcopy(value)


def read_at(doc: Any, dotted: str) -> Any:
    """``doc``'s field ``dotted`` (None where absent)."""
    for part in dotted.split("."):
        if isinstance(doc, list):
            doc = doc[int(part)] if int(part) < len(doc) else None
        else:
            doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def no_damage(doc: Any, target: Target, value: Any) -> bool:
    """``value`` would leave ``doc`` as it is (JSON-equal, so ``True`` is not ``1``), or is the writer's own "none"
    for a ``present_only`` field: nothing to judge that the control does not."""
    if target.present_only and (value is None or (isinstance(value, str) and value == DELETE)):
        return True
    return json.dumps(read_at(doc, target.path), sort_keys=True) == json.dumps(value, sort_keys=True)
