"""Plots of what ships (issue 21.6): every chart names its model (variant + sha prefix), the
latency chart has honest axes and names unmeasured variants, the mosaic has a legend, outlined
boxes and labels inside the image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeproof.evaluation import figures, mosaic
from edgeproof.release import plot

SHA = "b3fd4af86be8763a7a15cb94ad4f5aae0675e3484b3d527c1f5522ba2839cbcb"


@pytest.fixture
def drawn(monkeypatch):
    """The figures passed to ``save`` (instead of files)."""
    seen = []
    monkeypatch.setattr(figures, "save", lambda fig, path, dpi: seen.append(fig) or path)
    return seen


def test_model_label_names_the_variant_and_the_sha_prefix():
    metrics = {"model_path": "models/optimized/int8.onnx", "model_sha256": SHA}
    assert figures.model_label(metrics) == "int8 · sha256 b3fd4af86be8"


def test_every_evaluation_chart_is_titled_with_its_model(drawn, tmp_path):
    label = "int8 · sha256 b3fd4af86be8"
    curves = {"cat": np.linspace(1, 0, 11)}
    figures.pr_figure(tmp_path / "pr.png", np.linspace(0, 1, 11), curves, {"cat": 0.5, "all": 0.5}, 50, label)
    rows = [{"class": "all", "confidence": c, "f1": 0.5} for c in (0.0, 0.5, 1.0)]
    figures.f1_figure(tmp_path / "f1.png", rows, 0.25, 50, label)
    figures.confusion_figure(tmp_path / "cm.png", np.eye(2, dtype=int), ["cat"], 0.25, 0.5, 50, label)
    assert [fig.get_suptitle() for fig in drawn] == [f"model: {label}"] * 3


def test_mosaic_boxes_are_outlined_and_labels_stay_inside_the_image():
    fig = figures.new_figure(3, 3)
    ax = fig.add_subplot()
    ax.imshow(np.zeros((100, 100, 3), np.uint8))
    mosaic._box(ax, np.array([10, 1, 50, 40]), "prediction, correct", "cat 0.90")  # touches the top edge
    mosaic._box(ax, np.array([10, 50, 50, 90]), "ground truth, missed", "cat")
    at_top, lower = ax.texts
    assert at_top.get_va() == "top" and lower.get_va() == "bottom"  # inside the box at the top edge
    assert all(patch.get_path_effects() for patch in ax.patches)  # black stroke under the colour
    assert {k.split(",")[0] for k in mosaic.STYLES} == {"ground truth", "prediction"}  # the legend says which


def test_latency_chart_axes_are_honest_and_unmeasured_variants_are_named(drawn, tmp_path):
    variants = {
        "fp32": {"evaluated": True, "fps_e2e": 152.8, "latency_model_ms_p50": 5.05, "map50_95": 0.7722},
        "int8": {"evaluated": True, "fps_e2e": 181.8, "latency_model_ms_p50": 4.07, "map50_95": 0.7716},
        "fp16": {"evaluated": False, "reason": "fp16 numerics need a GPU provider"},
    }
    rows = plot.rows(variants, "int8")
    assert [r["latency_e2e_ms"] for r in rows] == [pytest.approx(6.545, abs=1e-3), pytest.approx(5.501, abs=1e-3)]
    plot.write_png(tmp_path / "l.png", rows, "t", 50, plot.unmeasured(variants))
    (ax,) = drawn[0].axes
    lo, hi = ax.get_ylim()
    assert hi - lo >= plot.MIN_SPAN and lo <= 0.7716 and hi >= 0.7722  # not 0.7716-0.7728
    assert ax.get_xlim()[0] == 0 and "1000 / end-to-end FPS" in ax.get_xlabel()
    assert "fp16: not measured here: fp16 numerics need a GPU provider" in drawn[0].texts[0].get_text()


def test_y_range_stays_within_0_and_1():
    assert plot.y_range([0.99]) == (pytest.approx(0.9), 1.0)
    assert plot.y_range([0.001, 0.002])[0] == 0.0
    lo, hi = plot.y_range([0.2, 0.7])
    assert lo < 0.2 and hi > 0.7


def test_release_rows_write_the_columns_dvc_yaml_plots(tmp_path):
    import yaml

    dvc = yaml.safe_load((Path(__file__).resolve().parents[2] / "dvc.yaml").read_text())
    scatter = next(
        next(iter(e.values())) for e in dvc["plots"] if isinstance(e, dict) and next(iter(e)).startswith("Release")
    )
    assert scatter["x"] in plot.FIELDS and scatter["y"]["plots/release/latency_map.csv"] in plot.FIELDS


def test_the_shipped_model_gets_its_own_charts_titled_with_it(tmp_path, monkeypatch):
    """release.json ships another file than the evaluated one: its charts come from its own evaluation."""
    from edgeproof.config import parse_params
    from edgeproof.evaluation.draw import draw_shipped
    from edgeproof.evaluation.run import evaluate_onnx
    from edgeproof.io import sha256_file
    from tests.unit.test_eval_run import write_dataset, write_model

    data = write_dataset(tmp_path / "data")
    p = parse_params({"evaluate": {"cross_check": {"independent": False, "ultralytics": False}}})
    fp32 = write_model(tmp_path / "fp32.onnx")
    shipped = write_model(tmp_path / "int8.onnx", cat_score=0.8)  # another file, other scores
    evaluated = evaluate_onnx(fp32, data, p.evaluate, p.deploy)
    release = {
        "build_profile": "cpu-ci",
        "profiles": {"cpu-ci": {"path": str(shipped), "sha256": sha256_file(shipped)}},
    }
    titles = []
    monkeypatch.setattr(figures, "_model_title", lambda fig, model: titles.append(model))
    files = draw_shipped(
        release, evaluated.metrics, evaluated.plot_inputs, data, tmp_path / "s", p.plots, p.evaluate, p.deploy
    )
    assert {f.name for f in files} >= {"pr_curve.png", "confusion_matrix.png", "val_mosaic.jpg"}
    assert titles == [f"int8 · sha256 {sha256_file(shipped)[:12]}"] * 3  # pr, f1, confusion
    titles.clear()
    release["profiles"]["cpu-ci"] |= {"path": str(fp32), "sha256": sha256_file(fp32)}  # ships the evaluated file
    draw_shipped(release, evaluated.metrics, evaluated.plot_inputs, data, tmp_path / "t", p.plots, p.evaluate, p.deploy)
    assert titles == [f"fp32 · sha256 {sha256_file(fp32)[:12]}"] * 3


def test_latency_chart_labels_never_overlap(tmp_path, monkeypatch):
    """Two variants with close mAP (fp32 0.773 at 12 ms, int8 0.772 at 6.8 ms): their labels, written
    beside the points, overlapped; each is now a legend entry naming its variant."""
    from edgeproof.evaluation import figures

    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, path, dpi: drawn.append(fig) or path)
    rows = [
        {"variant": "fp32", "latency_e2e_ms": 11.965, "fps_e2e": 83.6, "map50_95": 0.77266, "released": False},
        {"variant": "int8", "latency_e2e_ms": 6.757, "fps_e2e": 148.0, "map50_95": 0.771745, "released": True},
        {"variant": "int8_trt", "latency_e2e_ms": 27.45, "fps_e2e": 36.4, "map50_95": 0.767745, "released": False},
    ]
    plot.write_png(tmp_path / "l.png", rows, "t", 50)
    (fig,) = drawn
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    ax = fig.axes[0]
    texts = list(ax.texts) + (list(ax.get_legend().get_texts()) if ax.get_legend() else [])
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert [t.get_text().split(":")[0] for t in texts] == ["fp32", "int8", "int8_trt"]


def test_the_interactive_release_chart_names_each_variant_and_marks_the_released_one(tmp_path):
    """The Vega scatter colours by ``variant`` and marks ``released``: both are columns the CSV writes."""
    import csv

    import yaml

    root = Path(__file__).resolve().parents[2]
    dvc = yaml.safe_load((root / "dvc.yaml").read_text())
    released = [e for e in dvc["plots"] if isinstance(e, dict) and next(iter(e)).startswith("Release - end-")]
    entry = next(iter(released[0].values()))
    template = json.loads((root / entry["template"]).read_text())
    text = json.dumps(template)
    points, labels = template["layer"]
    assert points["encoding"]["color"]["field"] == "variant" and "variant" in plot.FIELDS
    assert "datum['released'] === 'True'" in json.dumps(points["encoding"]["size"]) and "released" in plot.FIELDS
    assert labels["encoding"]["text"]["field"] == "label" and "(released)" in text
    # DVC hands the CSV's cells over as strings: the template's test must compare with what write_csv writes
    variants = {v: {"evaluated": True, "fps_e2e": 100.0, "map50_95": 0.7} for v in ("fp32", "int8")}
    plot.write_csv(tmp_path / "l.csv", plot.rows(variants, "int8"))
    with (tmp_path / "l.csv").open() as f:
        assert {r["variant"]: r["released"] for r in csv.DictReader(f)} == {"fp32": "False", "int8": "True"}


def test_the_interactive_evaluation_charts_say_they_are_the_fp32_references():
    import yaml

    dvc = yaml.safe_load((Path(__file__).resolve().parents[2] / "dvc.yaml").read_text())
    titles = [next(iter(e)) for e in dvc["plots"] if isinstance(e, dict) and "plots/eval/" in json.dumps(e)]
    assert titles and all("fp32 reference" in t for t in titles)


def test_a_shipped_file_that_is_not_the_released_one_is_refused_not_charted(tmp_path):
    """records11 finding 7, the plots side: other bytes at release.json's path (a re-export, a swapped file)
    were evaluated and charted as the shipped model; refused naming the file and both sha256, as the gate does."""
    from edgeproof.config import parse_params
    from edgeproof.evaluation.draw import draw_shipped
    from edgeproof.evaluation.run import evaluate_onnx
    from edgeproof.io import sha256_file
    from tests.unit.test_eval_run import write_dataset, write_model

    data = write_dataset(tmp_path / "data")
    p = parse_params({"evaluate": {"cross_check": {"independent": False, "ultralytics": False}}})
    evaluated = evaluate_onnx(write_model(tmp_path / "fp32.onnx"), data, p.evaluate, p.deploy)
    shipped = write_model(tmp_path / "int8.onnx", cat_score=0.8)
    released = sha256_file(shipped)
    write_model(shipped, cat_score=0.6)  # other bytes at the released path
    release = {"build_profile": "cpu-ci", "profiles": {"cpu-ci": {"path": str(shipped), "sha256": released}}}
    message = rf"int8\.onnx: sha256 {sha256_file(shipped)} is not {released} recorded in reports/release\.json"
    with pytest.raises(ValueError, match=message):  # io.Sha256Mismatch
        draw_shipped(
            release, evaluated.metrics, evaluated.plot_inputs, data, tmp_path / "s", p.plots, p.evaluate, p.deploy
        )
    assert not (tmp_path / "s").exists()
