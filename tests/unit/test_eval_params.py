"""The ``evaluate`` params section: defaults, compatibility and strictness."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgeproof.config import ParamsError, load_params, parse_params
from edgeproof.evaluation.params import resolve_parallelism


def test_defaults_keep_the_old_keys_and_the_issue_tolerances() -> None:
    ev = parse_params(
        {"evaluate": {"conf": 0.001, "iou": 0.7, "max_det": 300, "multi_label": True, "batch": 8}}
    ).evaluate
    assert (ev.conf, ev.iou, ev.max_det, ev.batch) == (0.001, 0.7, 300, 8)
    assert ev.cross_check.independent_tolerance == 0.001
    assert ev.cross_check.ultralytics_tolerance == 0.001
    assert ev.cross_check.independent == "auto" and ev.cross_check.ultralytics == "auto"
    assert ev.operating_point.match_iou == 0.5


@pytest.mark.parametrize("text, expected", [("true", True), ("false", False), ("auto", "auto")])
def test_check_modes_from_yaml(text: str, expected: object) -> None:
    raw = yaml.safe_load(f"evaluate:\n  cross_check:\n    ultralytics: {text}\n")
    assert parse_params(raw).evaluate.cross_check.ultralytics == expected


@pytest.mark.parametrize(
    "section, message",
    [
        ({"cross_check": {"ultralytics": "maybe"}}, "evaluate.cross_check.ultralytics"),
        ({"cross_check": {"independent_tolerence": 0.01}}, "did you mean 'independent_tolerance'"),
        ({"operating_point": {"match_iou": 1.5}}, "evaluate.operating_point.match_iou"),
        ({"operating_point": {"conf": 0.25}}, "evaluate.operating_point.conf: unknown key"),
        ({"plots": {"dpi": 100}}, "evaluate.plots: unknown key"),
        ({"streams": 0}, "evaluate.streams"),
        ({"streams": "many"}, "evaluate.streams"),
        ({"score_workers": -1}, "evaluate.score_workers"),
        ({"intra_op_threads": -2}, "evaluate.intra_op_threads"),
    ],
)
def test_bad_values_name_the_key(section: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        parse_params({"evaluate": section})


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"benchmark": {"conf": 0.3}}, "benchmark.conf"),
        ({"benchmark": {"iou": 0.5}}, "benchmark.iou"),
        ({"evaluate": {"operating_point": {"iou": 0.5}}}, "evaluate.operating_point.iou"),
    ],
)
def test_the_deployment_thresholds_live_only_in_deploy(raw: dict, key: str) -> None:
    """One home: `dvc exp run -S benchmark.conf=0.3` cannot drift from the evaluated operating point."""
    with pytest.raises(ParamsError, match=rf"{key}: unknown key"):
        parse_params(raw)
    assert load_params(Path(__file__).resolve().parents[2] / "params.yaml").deploy.conf == 0.25


@pytest.mark.parametrize(
    "section, cpus, images, expected",
    [
        ({}, 2, 5000, (2, 1, 0)),  # this 2-core machine: two batches at once, one thread each, no core to spare
        ({}, 1, 5000, (1, 1, 0)),
        ({}, 16, 5000, (4, 4, 4)),
        ({}, 16, 50, (4, 4, 0)),  # too few images to pay for starting a process
        ({}, 6, 5000, (4, 1, 1)),
        ({"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}, 16, 5000, (1, 0, 4)),
        ({"streams": 3, "intra_op_threads": 2, "score_workers": 0}, 16, 5000, (3, 2, 0)),
        ({"streams": 1, "score_workers": 2}, 8, 10, (1, 8, 2)),
    ],
)
def test_auto_parallelism(section: dict, cpus: int, images: int, expected: tuple[int, int, int]) -> None:
    assert resolve_parallelism(parse_params({"evaluate": section}).evaluate, images, cpus) == expected


def test_plot_settings_are_their_own_section() -> None:
    """Changing a plot setting must not rerun inference: the plots stage owns them, not evaluate."""
    assert parse_params({"plots": {"dpi": 72, "curve_points": 21}}).plots.dpi == 72
    with pytest.raises(ParamsError, match=r"plots\.mosaic_images"):
        parse_params({"plots": {"mosaic_images": -1}})
