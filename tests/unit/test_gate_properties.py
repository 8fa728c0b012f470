"""Property tests (hypothesis) of the build gate's central promise, through the function the ``gate`` stage calls
(:func:`edgeproof.release.gating.run_gate`) over files on disk:

- a figure a rule reads that is missing or cannot be a measurement makes that rule inconclusive or a failure
  (invalid, fail), with a reason, and the verdict is never ``pass``;
- the gate releases only exactly the artifact that was measured: an identity (a sha256, a model path, the
  variant or profile chosen) that makes the files disagree is a failed identity rule or a refusal to gate.

Exactly one field of a passing input set (:mod:`tests.unit.gate_inputs`) is damaged per example; the set
itself passing is the control. The plain examples below them are the holes the properties found.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeproof.config import load_params
from edgeproof.release.gating import GateRun, run_gate
from tests.unit import gate_inputs as gi

REPO = Path(__file__).resolve().parents[2]
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BENCH, EVAL = f"metrics/variants/{gi.RELEASED}/bench.json", f"metrics/variants/{gi.RELEASED}/eval.json"
PEER_BENCH, RELEASE, MODEL = f"metrics/variants/{gi.OTHER}/bench.json", "reports/release.json", "model file"
Target = gi.Target
REFUSED = None  # a release.json identity: the stage refuses to gate (exit 2, no verdict) or an identity rule fails


PER_CLASS_COUNTS = [f"per_class.{i}.n_gt" for i in range(len(gi.PER_CLASS))]
FIGURES = [
    Target(BENCH, "fps_e2e", "fps"),
    Target(BENCH, "latency_ms", "latency_p95"),
    Target(BENCH, "latency_ms.p95", "latency_p95"),
    # how many frames the timing rests on: the timing rules are judged only over enough of them (min_timed_frames)
    Target(BENCH, "e2e.samples", "latency_p95"),
    Target(BENCH, "e2e.samples", "fps"),
    Target(BENCH, "e2e", "results_consistent"),
    Target(BENCH, "e2e.fps", "results_consistent"),
    Target(BENCH, "e2e.mean", "results_consistent"),
    Target(BENCH, "e2e.p95", "results_consistent"),
    Target(BENCH, "e2e.p50", "results_consistent"),
    Target(BENCH, "device", "results_consistent"),
    Target(BENCH, "device.cpu_model", "results_consistent"),
    Target(PEER_BENCH, "device.cpu_model", "results_consistent"),
    Target(EVAL, "map50", "map50"),
    Target(EVAL, "map50_95", "map50_95"),
    Target(EVAL, "cross_check", "cross_check"),
    Target(EVAL, "cross_check.passed", "cross_check"),
    Target(EVAL, "cross_check.pycocotools", "cross_check"),
    Target(EVAL, "cross_check.independent", "cross_check"),
    Target(EVAL, "cross_check.ultralytics", "cross_check"),
    Target(EVAL, "cross_check.ultralytics_map50", "cross_check"),
    Target(EVAL, "per_class", "results_consistent"),
    # what the mAP is over: the accuracy rules are judged only over a val set they know is large enough
    Target(EVAL, "n_images", "map50"),
    Target(EVAL, "n_gt", "map50"),
    Target(EVAL, "n_background_images", "map50", present_only=True),  # an older evaluation has none: not said
    *(Target(EVAL, key, "map50") for key in PER_CLASS_COUNTS),
    *(
        Target(EVAL, f"per_class.{i}.{key}", "results_consistent")
        for i in range(len(gi.PER_CLASS))
        for key in ("ap", "ap50", "ap75")
    ),
    # release.json's record of the gated variant copies the gated files' figures (one release-stage run wrote all
    # three); the counts only where it has them (a release.json older than them has none)
    *(Target(RELEASE, f"variants.{gi.RELEASED}.{key}", "results_consistent") for key in gi.RELEASE_FIGURES),
    *(
        Target(RELEASE, f"variants.{gi.RELEASED}.{key}", "results_consistent", present_only=True)
        for key in ("n_images", "n_background_images", "n_gt", "per_class", *PER_CLASS_COUNTS)
    ),
]
IDENTITIES = [
    Target(BENCH, "model_sha256", "same_model_benchmarked"),
    Target(EVAL, "model_sha256", "same_model_evaluated"),
    Target(RELEASE, "build_profile", REFUSED),
    Target(RELEASE, "release_variant", REFUSED),
    Target(RELEASE, f"profiles.{gi.BUILD_PROFILE}", REFUSED),
    Target(RELEASE, f"profiles.{gi.BUILD_PROFILE}.variant", REFUSED),
    Target(RELEASE, f"profiles.{gi.BUILD_PROFILE}.sha256", REFUSED),
    Target(RELEASE, f"profiles.{gi.BUILD_PROFILE}.path", REFUSED),
    Target(RELEASE, f"variants.{gi.RELEASED}", REFUSED),
    Target(RELEASE, f"variants.{gi.RELEASED}.sha256", REFUSED),
    Target(RELEASE, f"variants.{gi.RELEASED}.path", REFUSED),
    Target(RELEASE, f"variants.{gi.RELEASED}.evaluated", REFUSED),
    Target(RELEASE, f"variants.{gi.RELEASED}.eval_json", REFUSED),
    Target(RELEASE, f"variants.{gi.RELEASED}.bench_json", REFUSED),
    Target(MODEL, "", REFUSED),
]


def _swaps(root: Path, target: Target) -> list[Any]:
    """Values of another file, variant or profile of the same input set: a mix-up, not nonsense."""
    other = gi.OTHER
    where = {
        "model_sha256": [gi.sha_of(other), gi.sha_of(gi.RELEASED).upper()],
        "build_profile": ["jetson-nano"],
        "release_variant": [other],
        "variant": [other],
        "sha256": [gi.sha_of(other)],
        "path": [(root / f"models/optimized/{other}.onnx").as_posix()],
        "eval_json": [(root / f"metrics/variants/{other}/eval.json").as_posix()],
        "bench_json": [(root / f"metrics/variants/{other}/bench.json").as_posix()],
    }
    return where.get(target.path.rsplit(".", 1)[-1], [])


class GateParams(NamedTuple):
    """The params file the gate stage is given, and what it loads from it."""

    path: Path
    loaded: Any

    def __repr__(self) -> str:  # a falsifying example names the file, not every setting
        return f"GateParams({self.path})"


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> GateParams:
    """params.yaml without MLflow, its build profile judging mAP50-95 too (so a rule reads every figure)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["track"]["enabled"] = False
    raw["profiles"][gi.BUILD_PROFILE]["gate"]["min_map50_95"] = 0.5
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return GateParams(path, load_params(path))


class Refused(NamedTuple):
    why: str


def gate(params: GateParams, root: Path, docs: dict[str, Any], model: bytes | None = None) -> Any:
    """Write ``docs`` under ``root`` and run the gate stage's body on them: the report, or :class:`Refused`
    (the stage's exit 2: it raised before judging, and wrote no verdict)."""
    gi.write_inputs(root, docs)
    released = root / f"models/optimized/{gi.RELEASED}.onnx"
    if model == gi.DELETE.encode():
        released.unlink()
    elif model is not None:
        released.write_bytes(model)
    run = GateRun(
        params=params.path,
        report_json=root / "gate.json",
        report_md=root / "gate.md",
        headline=root / "headline.json",
        train_metrics=root / "metrics/train.json",
        release=root / RELEASE,
    )
    logging.disable(logging.CRITICAL)  # hundreds of examples: their error lines are the point, not output
    try:
        code = run_gate(run, params.loaded)
    except (ValueError, FileNotFoundError) as exc:
        assert not (root / "gate.json").exists()
        return Refused(str(exc))
    finally:
        logging.disable(logging.NOTSET)
    report = json.loads((root / "gate.json").read_text())
    assert (code == 0) == (report["verdict"] == "pass")
    return report


def test_the_undamaged_input_set_passes(params, tmp_path):
    """The control: without it every property below could pass on a gate that passes nothing."""
    report = gate(params, tmp_path, gi.documents(tmp_path))
    assert report["verdict"] == "pass" and report["failed"] == []
    assert {r["name"] for r in report["rules"]} >= {t.rule for t in FIGURES + IDENTITIES if t.rule}


def _check_not_passed(report: Any, target: Target, value: Any) -> None:
    assert not isinstance(report, Refused), f"{target.file} {target.path} = {value!r}: refused, not judged: {report}"
    gi.check_not_passed(report, target, value)  # a figure is judged, and not passed


@SETTINGS
@given(target=st.sampled_from(FIGURES), value=gi.BROKEN)
def test_a_figure_missing_or_impossible_never_passes_its_rule(params, target, value):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        docs = gi.documents(root)
        if gi.no_damage(docs[target.file], target, value):
            return  # the control covers it
        gi.damage(docs[target.file], target.path, value)
        _check_not_passed(gate(params, root, docs), target, value)


@st.composite
def identity_damage(draw):
    target = draw(st.sampled_from(IDENTITIES))
    swaps = _swaps(Path("/root-of-the-example"), target)
    value = draw(st.one_of(gi.BROKEN, st.sampled_from(swaps)) if swaps else gi.BROKEN)
    return target, value


@SETTINGS
@given(damage=identity_damage())
def test_only_exactly_the_measured_artifact_can_pass(params, damage):
    target, value = damage
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        docs = gi.documents(root)
        if isinstance(value, str) and value.startswith("/root-of-the-example"):
            value = value.replace("/root-of-the-example", root.as_posix())
        if target.file == MODEL:
            data = gi.DELETE if isinstance(value, str) and value == gi.DELETE else json.dumps(value)
            report = gate(params, root, docs, model=data.encode())  # other bytes, or no file at all
        else:
            if gi.no_damage(docs[target.file], target, value):
                return
            gi.damage(docs[target.file], target.path, value)
            report = gate(params, root, docs)
    if target.rule is not None:
        _check_not_passed(report, target, value)
    elif not isinstance(report, Refused):  # judged after all: an identity rule must say the files differ
        failed = {r["name"] for r in report["rules"] if r["status"] != "pass"}
        assert report["verdict"] != "pass" and failed & {"same_model_evaluated", "same_model_benchmarked"}, (
            f"{target.file} {target.path} = {value!r}: {report['verdict']}"
        )


def _raised(doc: dict[str, Any], by: float, figure: str, keys: tuple[str, ...]) -> None:
    """``doc``'s ``figure`` raised by ``by`` consistently: each per-class row's AP in ``keys`` and the second
    scorers' figures too, so the file agrees with itself (records11 #2's edit)."""
    doc[figure] = round(doc[figure] + by, 6)
    for row in doc["per_class"]:
        for key in keys:
            row[key] = round(row[key] + by, 6)
    cc = doc["cross_check"]
    for key in ("pycocotools", "independent", "ultralytics") if figure == "map50_95" else ("ultralytics_map50",):
        cc[key] = round(cc[key] + by, 6)


@pytest.mark.parametrize(
    ("figure", "by", "keys", "field"),
    [("map50_95", 0.1, ("ap",), "map50_95"), ("map50", 0.03, ("ap50",), "map50")],  # every AP stays <= 1
)
def test_an_evaluation_edited_consistently_after_the_release_run_is_invalid(params, tmp_path, figure, by, keys, field):
    """records11 #2: mAP50-95 raised by 0.1 in the gated eval.json, its per-class rows and cross-check with it,
    then `dvc commit`: nothing compared the file with release.json, written by the same release-stage run with
    the real figure, and the edited figure became a clean champion. Now results_consistent is invalid, naming
    both files, the key and both values, and the headline withholds the figure."""
    docs = gi.documents(tmp_path)
    _raised(docs[EVAL], by, figure, keys)
    report = gate(params, tmp_path, docs)
    rule = next(r for r in report["rules"] if r["name"] == "results_consistent")
    assert report["verdict"] == "fail" and rule["status"] == "invalid", rule
    real, edited = docs[RELEASE]["variants"][gi.RELEASED][field], docs[EVAL][figure]
    assert rule["source"] == (tmp_path / EVAL).as_posix()
    assert (
        f"{(tmp_path / EVAL).as_posix()} {figure} {edited} differs from "
        f"{(tmp_path / RELEASE).as_posix()} variants.{gi.RELEASED}.{field} {real}"
    ) in rule["reason"]
    headline = json.loads((tmp_path / "headline.json").read_text())
    assert headline["mAP50-95"] is None and "results_consistent" in headline["withheld"]["mAP50-95"]
    assert gate(params, tmp_path, gi.documents(tmp_path))["verdict"] == "pass"  # the control: unedited
    assert headline["fps"] is not None  # the bench agrees with its record: its figures stay the model's


def test_a_benchmark_edited_consistently_after_the_release_run_is_invalid(params, tmp_path):
    """The same edit of the speed: fps_e2e with its e2e run (fps and mean), so bench.json agrees with itself."""
    docs = gi.documents(tmp_path)
    bench = docs[BENCH]
    bench["fps_e2e"] = bench["e2e"]["fps"] = 250.0
    bench["e2e"]["mean"] = bench["latency_ms"]["mean"] = 4.0
    report = gate(params, tmp_path, docs)
    rule = next(r for r in report["rules"] if r["name"] == "results_consistent")
    assert report["verdict"] == "fail" and rule["status"] == "invalid", rule
    assert rule["source"] == (tmp_path / BENCH).as_posix()
    release = (tmp_path / RELEASE).as_posix()
    assert (
        f"{(tmp_path / BENCH).as_posix()} fps_e2e 250.0 differs from {release} variants.int8.fps_e2e 198.393"
        in (rule["reason"])
    )


def test_a_release_record_without_the_counts_is_not_compared_on_them(params, tmp_path):
    """A release.json written before the records carried the evaluation's counts still gates (the figures are
    compared); one without a figure it always copied leaves results_consistent inconclusive, naming it."""
    docs = gi.documents(tmp_path)
    record = docs[RELEASE]["variants"][gi.RELEASED]
    for key in ("n_images", "n_gt", "per_class"):
        del record[key]
    assert gate(params, tmp_path, docs)["verdict"] == "pass"
    del record["latency_ms_p95"]
    report = gate(params, tmp_path, docs)
    rule = next(r for r in report["rules"] if r["name"] == "results_consistent")
    assert report["verdict"] == "inconclusive" and rule["status"] == "inconclusive"
    bench = (tmp_path / BENCH).as_posix()
    assert f"variants.{gi.RELEASED}.latency_ms_p95 is missing: {bench} latency_ms.p95 not checked" in rule["reason"]
