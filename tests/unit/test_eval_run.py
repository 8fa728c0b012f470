"""The whole evaluation on a tiny hand-made ONNX "model" whose detections are known exactly.

The model ignores its input and outputs the same raw predictions for every image: a cat box that
is right on every image and a dog box that is wrong on every image. Three 64x64 images each hold
that cat; the third also holds a dog nobody finds.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from stages import evaluate as stage

from edgeproof.config import parse_params
from edgeproof.data.canonical import Annotation, Category, ImageRecord, write_labels_and_annotations
from edgeproof.evaluation import run as run_module
from edgeproof.evaluation.crosscheck import Finished
from edgeproof.evaluation.draw import draw_plots
from edgeproof.evaluation.plots import PlotInputs, PlotPaths, write_eval_plot_data
from edgeproof.evaluation.run import evaluate_onnx as _evaluate_onnx
from edgeproof.runtime.deploy import DeploySettings

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

SIZE = 64
CAT_XYXY, DOG_XYXY, DOG_FALSE_XYXY = (8, 8, 40, 40), (44, 44, 60, 60), (0, 44, 12, 60)


def _cxcywh(b: tuple[int, int, int, int]) -> list[float]:
    return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]]


def write_model(path: Path, cat_score: float = 0.9, dog_score: float = 0.6) -> Path:
    """An ONNX graph (dynamic batch) that broadcasts one constant (1, 4 + 2, 8) prediction per image."""
    pred = np.zeros((1, 6, 8), np.float32)
    pred[0, :4, 0], pred[0, 4, 0] = _cxcywh(CAT_XYXY), cat_score
    pred[0, :4, 1], pred[0, 5, 1] = _cxcywh(DOG_FALSE_XYXY), dog_score
    nodes = [
        helper.make_node("Shape", ["images"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "one"], ["batch"]),
        helper.make_node("Concat", ["batch", "tail"], ["out_shape"], axis=0),
        helper.make_node("Expand", ["pred", "out_shape"], ["output0"]),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
        helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        helper.make_tensor("tail", TensorProto.INT64, [2], [6, 8]),
        helper.make_tensor("pred", TensorProto.FLOAT, pred.shape, pred.ravel().tolist()),
    ]
    graph = helper.make_graph(
        nodes,
        "constant-detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 6, 8])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"names": "{0: 'cat', 1: 'dog'}", "imgsz": f"[{SIZE}, {SIZE}]"})
    onnx.save(model, str(path))
    return path


def _xywh(b: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    return (float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1]))


def write_dataset(root: Path, background: int = 0) -> Path:
    """Three val images with a cat (the third a dog too), then ``background`` images without a box."""
    records = []
    for i in range(1, 4 + background):
        name = f"img{i}.png"
        (root / "images" / "val").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((SIZE, SIZE, 3), 40 * i, np.uint8)).save(root / "images" / "val" / name)
        anns = [Annotation(7, _xywh(CAT_XYXY))] + ([Annotation(9, _xywh(DOG_XYXY))] if i == 3 else [])
        anns = anns if i <= 3 else []
        records.append(ImageRecord(id=100 + i, file_name=name, width=SIZE, height=SIZE, annotations=anns))
    write_labels_and_annotations(root, {"val": records}, [Category(7, "cat"), Category(9, "dog")], "test")
    return root


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "prepared")


def evaluate_onnx(model: Path, data: Path, params, deploy: DeploySettings | None = None, **kw: object):
    return _evaluate_onnx(model, data, params, deploy or DeploySettings(), **kw)


def params(**evaluate: object):
    return parse_params({"evaluate": {"cross_check": {"ultralytics": False}, **evaluate}}).evaluate


def test_known_model_scores_exactly(tmp_path: Path, data: Path) -> None:
    result = evaluate_onnx(write_model(tmp_path / "m.onnx"), data, params(batch=2))
    m = result.metrics
    rows = {r["name"]: r for r in m["per_class"]}
    assert rows["cat"]["ap"] == 1.0 and rows["dog"]["ap"] == 0.0 and m["map50_95"] == 0.5
    assert (m["n_images"], m["n_gt"], m["n_detections"]) == (3, 4, 6)
    assert m["n_background_images"] == 0
    assert {d["category_id"] for d in result.detections} == {7, 9}  # original ids, not class indices
    op = m["operating_point"]
    assert [(r["tp"], r["fp"], r["fn"]) for r in op["per_class"]] == [(3, 0, 0), (0, 3, 1)]
    assert op["overall"]["precision"] == 0.5 and op["overall"]["recall"] == 0.75
    assert op["confusion_matrix"]["counts"] == [[3, 0, 0], [0, 0, 3], [0, 1, 0]]
    cc = m["cross_check"]
    assert cc["pycocotools"] == 0.5 and cc["independent"] == 0.5 and cc["ultralytics"] is None
    assert cc["passed"] and "ultralytics" in cc["skipped"]
    assert m["thresholds"]["conf"] == 0.001 and m["thresholds"]["operating_point"]["conf"] == 0.25
    assert m["speed"]["images_per_s"] > 0 and m["speed"]["batch"] == 2
    assert m["speed"]["ultralytics_images_per_s"] is None and m["speed"]["ratio_vs_ultralytics"] is None


@pytest.mark.parametrize("streams, workers", [(1, 0), (3, 1)])
def test_parallel_streams_and_scoring_change_nothing(tmp_path: Path, data: Path, streams: int, workers: int) -> None:
    """Batches in flight at once and pycocotools in a worker process: same detections, order, metrics."""
    model = write_model(tmp_path / "m.onnx")
    one = evaluate_onnx(model, data, params(batch=1, streams=1, score_workers=0, intra_op_threads=1))
    many = evaluate_onnx(model, data, params(batch=1, streams=streams, score_workers=workers))
    assert many.detections == one.detections
    assert [d["image_id"] for d in many.detections] == [101, 101, 102, 102, 103, 103]
    assert many.plot_inputs.deploy.keys() == one.plot_inputs.deploy.keys()
    drop = ("speed", "images_per_s")
    assert {k: v for k, v in many.metrics.items() if k not in drop} == {
        k: v for k, v in one.metrics.items() if k not in drop
    }


def _plots(result, data: Path, folder: Path, **settings: object) -> list[Path]:
    """What the evaluate stage writes for the plots stage, read back from disk, then the plots stage."""
    saved = result.plot_inputs.save(folder / "inputs.npz")
    written = write_eval_plot_data(result.plot_inputs, folder / "pr_curve.csv", folder / "confusion.json")
    plots_params = parse_params({"plots": settings}).plots
    return written + draw_plots(result.metrics, PlotInputs.load(saved), data, PlotPaths.under(folder), plots_params)


def test_the_evaluation_says_how_many_of_its_images_are_background(tmp_path: Path) -> None:
    """The mAP's val set: 5 images, 2 of them without a box, where only false positives can be found."""
    data = write_dataset(tmp_path / "prepared", background=2)
    m = evaluate_onnx(write_model(tmp_path / "m.onnx"), data, params()).metrics
    assert (m["n_images"], m["n_background_images"], m["n_gt"]) == (5, 2, 4)


def test_plots_are_written(tmp_path: Path, data: Path) -> None:
    result = evaluate_onnx(write_model(tmp_path / "m.onnx"), data, params())
    files = _plots(result, data, tmp_path / "plots", mosaic_images=2, mosaic_columns=2, dpi=50, curve_points=11)
    names = {f.name for f in files}
    assert names == {
        "pr_curve.csv",
        "f1_confidence.csv",
        "confusion.json",
        "pr_curve.png",
        "f1_confidence.png",
        "confusion_matrix.png",
        "val_mosaic.jpg",
    }
    for f in files:
        if f.suffix in {".png", ".jpg"}:
            with Image.open(f) as im:
                im.verify()
    confusion = json.loads((tmp_path / "plots" / "confusion.json").read_text())
    assert len(confusion) == 7 and {"actual": "dog", "predicted": "background"} in confusion
    pr = (tmp_path / "plots" / "pr_curve.csv").read_text().splitlines()
    assert pr[0] == "class,recall,precision" and len(pr) == 1 + 3 * 101  # cat, dog, all
    f1 = (tmp_path / "plots" / "f1_confidence.csv").read_text().splitlines()
    assert f1[0] == "class,confidence,precision,recall,f1" and len(f1) == 1 + 3 * 11


def test_plot_inputs_round_trip_exactly(tmp_path: Path, data: Path) -> None:
    inputs = evaluate_onnx(write_model(tmp_path / "m.onnx"), data, params()).plot_inputs
    back = PlotInputs.load(inputs.save(tmp_path / "inputs.npz"))
    assert back.names == inputs.names and back.deploy.keys() == inputs.deploy.keys()
    for image_id, det in inputs.deploy.items():
        for field in ("boxes", "scores", "classes"):
            a, b = getattr(det, field), getattr(back.deploy[image_id], field)
            assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(back.confusion, inputs.confusion) and np.array_equal(back.recall_points, inputs.recall_points)
    assert all(np.array_equal(back.pr_curves[k], v) for k, v in inputs.pr_curves.items())


def test_zero_detections_do_not_crash(tmp_path: Path, data: Path, caplog: pytest.LogCaptureFixture) -> None:
    # evaluate.conf may not exceed deploy.conf (the operating point is judged at deploy.conf)
    both = parse_params({"evaluate": {"cross_check": {"ultralytics": False}, "conf": 0.95}, "deploy": {"conf": 0.95}})
    with caplog.at_level(logging.WARNING):
        result = evaluate_onnx(write_model(tmp_path / "m.onnx"), data, both.evaluate, both.deploy)
    m = result.metrics
    assert m["map50_95"] == 0.0 and m["n_detections"] == 0
    assert any("no detections" in w for w in m["warnings"]) and "no detections" in caplog.text
    assert m["cross_check"]["independent"] == 0.0
    _plots(result, data, tmp_path / "plots")
    assert (tmp_path / "plots" / "val_mosaic.jpg").stat().st_size > 0


def test_val_without_a_single_ground_truth_box_is_refused(tmp_path: Path, data: Path) -> None:
    """No box to score (all crowd here): every AP would be null, and the cross-check would compare nulls."""
    gt_path = data / "annotations" / "val.json"
    gt = json.loads(gt_path.read_text())
    for ann in gt["annotations"]:
        ann["iscrowd"] = 1
    gt_path.write_text(json.dumps(gt))
    with pytest.raises(ValueError, match=r"val.json: no ground-truth box to score .* in 3 image\(s\)"):
        evaluate_onnx(write_model(tmp_path / "m.onnx"), data, params())


def test_class_names_in_another_order_than_the_models_are_refused(tmp_path: Path, data: Path) -> None:
    """Same count, other names or order: class index 0 would be scored as another category."""
    meta_path = data / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["names"], meta["category_ids"] = ["dog", "cat"], [9, 7]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(
        ValueError, match=r"class names \['cat', 'dog'\] differ from .*meta.json names \['dog', 'cat'\]"
    ):
        evaluate_onnx(write_model(tmp_path / "m.onnx"), data, params())


def _stage_args(tmp_path: Path, data: Path, params_file: Path) -> list[str]:
    out = tmp_path / "out"
    return [
        *("--params", str(params_file), "--model", str(write_model(tmp_path / "m.onnx")), "--data", str(data)),
        *("--metrics", str(out / "eval.json"), "--detections", str(out / "det.json")),
        *("--pr-curve", str(out / "pr.csv"), "--confusion", str(out / "cm.json")),
        *("--plot-inputs", str(out / "inputs.npz")),
    ]


def test_the_plots_stage_draws_from_evaluate_outputs(tmp_path: Path, data: Path) -> None:
    from stages import plots as plots_stage

    params_file = tmp_path / "params.yaml"
    params_file.write_text("evaluate:\n  cross_check:\n    ultralytics: false\nplots:\n  dpi: 50\n  mosaic_images: 2\n")
    assert stage.main(_stage_args(tmp_path, data, params_file)) == 0
    out = tmp_path / "out"
    args = ["--params", str(params_file), "--eval", str(out / "eval.json"), "--plot-inputs", str(out / "inputs.npz")]
    args += ["--data", str(data), "--f1-curve", str(out / "f1.csv"), "--pr-png", str(out / "pr.png")]
    args += ["--f1-png", str(out / "f1.png"), "--confusion-png", str(out / "cm.png"), "--mosaic", str(out / "m.jpg")]
    sha = json.loads((out / "eval.json").read_text())["model_sha256"]  # ships the evaluated file
    release = {"build_profile": "cpu-ci", "profiles": {"cpu-ci": {"path": str(tmp_path / "m.onnx"), "sha256": sha}}}
    (out / "release.json").write_text(json.dumps(release))
    args += ["--release", str(out / "release.json"), "--shipped", str(out / "shipped")]
    assert plots_stage.main(args) == 0
    assert {"f1.csv", "pr.png", "f1.png", "cm.png", "m.jpg"} <= {p.name for p in out.iterdir()}
    assert {"pr_curve.png", "val_mosaic.jpg"} <= {p.name for p in (out / "shipped").iterdir()}


def test_stage_fails_on_disagreement_naming_both_numbers(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    params_file = tmp_path / "params.yaml"
    params_file.write_text("evaluate:\n  cross_check:\n    ultralytics: auto\n")
    ours = evaluate_onnx(write_model(tmp_path / "m0.onnx"), data, params()).detections
    dropped = [d for d in ours if d["category_id"] == 7][1:]  # ultralytics "misses" the first cat, finds no dog
    monkeypatch.setattr(run_module, "run_ultralytics", lambda *a: Finished({"detections": dropped}))
    assert stage.main(_stage_args(tmp_path, data, params_file)) == 2
    err = capsys.readouterr().err  # the stage logs to stderr
    assert "0.5000 vs ultralytics 0.3317" in err and "img1.png (id 101: 2 vs 0, 0 matched)" in err
    written = json.loads((tmp_path / "out" / "eval.json").read_text())  # kept for inspection
    assert written["cross_check"]["passed"] is False and written["cross_check"]["ultralytics"] == 0.331683
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cm.json",
        "det.json",
        "eval.json",
        "inputs.npz",
        "pr.csv",
    ]

    monkeypatch.setattr(run_module, "run_ultralytics", lambda *a: Finished({"detections": ours, "own_map50_95": 0.4}))
    assert stage.main(_stage_args(tmp_path, data, params_file)) == 0


def test_the_evaluate_command_fails_on_disagreement_like_the_stage(
    tmp_path: Path,
    data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Findings review, 3: ``edgeproof evaluate`` printed the metrics of a failed cross-check and exited 0."""
    from edgeproof.cli import main

    params_file = tmp_path / "params.yaml"
    params_file.write_text("evaluate:\n  cross_check:\n    ultralytics: auto\n")
    model = write_model(tmp_path / "m0.onnx")
    ours = evaluate_onnx(model, data, params()).detections
    dropped = [d for d in ours if d["category_id"] == 7][1:]
    monkeypatch.setattr(run_module, "run_ultralytics", lambda *a: Finished({"detections": dropped}))
    argv = ["--params", str(params_file), "evaluate", "--model", str(model), "--data", str(data)]
    assert main(argv) == 2
    assert json.loads(capsys.readouterr().out)["cross_check"]["passed"] is False  # the metrics are still printed
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert (
        len(errors) == 1
        and errors[0].startswith("mAP50-95 cross-check failed")
        and "0.5000 vs ultralytics 0.3317" in errors[0]
    )
    monkeypatch.setattr(run_module, "run_ultralytics", lambda *a: Finished({"detections": ours, "own_map50_95": 0.4}))
    assert main(argv) == 0


def test_ultralytics_validator_agrees_and_leaves_the_dataset_alone(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if importlib.util.find_spec("ultralytics") is None:  # not importorskip: importing it patches PIL
        pytest.skip("ultralytics is not installed (train extra)")
    from edgeproof.training.crosscheck import ultralytics_val

    pil_open = Image.open
    before = sorted((p.relative_to(data).as_posix(), p.stat().st_mtime_ns) for p in data.rglob("*"))
    state = tmp_path / "state"
    out = ultralytics_val(
        write_model(tmp_path / "m.onnx"), data, imgsz=SIZE, batch=2, conf=0.001, iou=0.7, max_det=300, state=state
    )
    assert out["own_map50_95"] == pytest.approx(0.5, abs=0.02)  # cat found everywhere, dog never
    assert out["n_images"] == 3 and out["images_per_s"] > 0
    ours = evaluate_onnx(write_model(tmp_path / "m.onnx"), data, params()).detections
    key = lambda d: (d["image_id"], d["category_id"], d["score"])  # noqa: E731
    assert sorted(out["detections"], key=key) == sorted(ours, key=key)  # like with like: same ids, boxes, scores
    assert sorted((p.relative_to(data).as_posix(), p.stat().st_mtime_ns) for p in data.rglob("*")) == before
    assert not any((state / "evaluate").iterdir())  # the private view is gone
    assert capsys.readouterr().out == ""  # ultralytics' console output goes to stderr, stdout stays ours
    assert Image.open is pil_open  # ultralytics' import-time patch of PIL is undone


def test_the_gates_own_scoring_gives_every_figure_it_holds_as_the_evaluation_wrote_it(
    tmp_path: Path, data: Path
) -> None:
    # the rule rescored holds each of these figures; one the gate's scoring lacks would hold eval.json's to None
    from edgeproof.gate_rescore import CLASS_FIGURES, RESCORED_FIGURES, Rescored, rescore_rule

    model = write_model(tmp_path / "m.onnx")
    written = evaluate_onnx(model, data, params()).metrics
    own = run_module.rescore_onnx(model, data, params(), DeploySettings())
    for key in RESCORED_FIGURES:
        assert key in own and own[key] == written[key], key
    assert own["map75"] == written["map75"] == 0.5  # a headline figure
    assert [{k: r[k] for k in CLASS_FIGURES} for r in own["per_class"]] == [
        {k: r[k] for k in CLASS_FIGURES} for r in written["per_class"]
    ]
    rule = rescore_rule(written, "eval.json", Rescored(own, "m.onnx", 0.0))
    assert rule["status"] == "pass", rule
