"""Cross-checking pycocotools' mAP50-95 against two other scorers.

* **independent** — the very same detections scored by faster-coco-eval (a separate C++
  implementation of the COCO protocol): must agree within ``independent_tolerance`` (0.001).
* **ultralytics** — ultralytics' own validator running the same ONNX file on the same images
  (its own letterbox, NMS and AP interpolation): must agree within ``ultralytics_tolerance`` (0.02).

Both are optional at run time (``true`` = required, ``false`` = off, ``auto`` = when installed); a
skipped check is recorded as ``null`` with the reason. The ultralytics validator lives behind the
train extra (:mod:`edgeproof.training.crosscheck`) and is imported only when it is going to run, so
this module, like the whole evaluation package, imports neither torch nor ultralytics.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeproof.evaluation.independent import INSTALL_HINT, independent_available, independent_stats
from edgeproof.evaluation.params import CheckMode, EvaluateParams

log = logging.getLogger(__name__)

#: Runs ultralytics' validator and returns at least ``{"map50_95": float}``.
ExternalScorer = Callable[[], Mapping[str, Any]]
#: Scores COCO results against ground truth independently of pycocotools: the 12 summary stats.
IndependentScorer = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], Mapping[str, Any]]


class CrossCheckError(RuntimeError):
    """Two scorers disagree by more than the tolerance."""


def _skip_reason(mode: CheckMode, available: bool, key: str, missing: str) -> str | None:
    """``None`` when the check runs; otherwise why not. A required but missing package is an error."""
    if mode is False:
        return f"disabled (evaluate.cross_check.{key}: false)"
    if available:
        return None
    if mode is True:
        raise RuntimeError(f"evaluate.cross_check.{key} is true but {missing}")
    return missing


def ultralytics_scorer(
    model: Path, data_root: Path, params: EvaluateParams, imgsz: int | list[int]
) -> ExternalScorer | str:
    """A callable running ultralytics ``val`` on ``model`` and ``data_root``, or why it will not run."""
    available = importlib.util.find_spec("ultralytics") is not None
    missing = "ultralytics is not installed (it comes with the `train` extra)"
    reason = _skip_reason(params.cross_check.ultralytics, available, "ultralytics", missing)
    if reason is not None:
        return reason

    def run() -> Mapping[str, Any]:
        from edgeproof.training.crosscheck import ultralytics_val  # torch + ultralytics: only from here on

        return ultralytics_val(
            model,
            data_root,
            imgsz=imgsz,
            batch=params.batch,
            conf=params.conf,
            iou=params.iou,
            max_det=params.max_det,
            device=params.cross_check.ultralytics_device,
        )

    return run


def independent_runs(params: EvaluateParams) -> bool:
    """Whether the independent re-scoring will run (raises when it is required but not installed)."""
    return _skip_reason(params.cross_check.independent, independent_available(), "independent", INSTALL_HINT) is None


def _independent(
    gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]], mode: CheckMode, scorer: IndependentScorer
) -> tuple[Any, str]:
    reason = _skip_reason(mode, independent_available(), "independent", INSTALL_HINT)
    if reason is not None:
        return None, reason
    return scorer(gt, results)["map50_95"], ""


def _ultralytics(scorer: ExternalScorer | str | None, mode: CheckMode) -> tuple[Mapping[str, Any], str]:
    if not callable(scorer):
        return {}, scorer or "not requested by this caller"
    try:
        return scorer(), ""
    except ImportError as exc:  # installed but broken (e.g. torch missing): like not installed
        missing = f"ultralytics cannot be imported ({exc})"
        if mode is True:
            raise RuntimeError(f"evaluate.cross_check.ultralytics is true but {missing}") from exc
        return {}, missing


def cross_check(
    pycocotools_map: float | None,
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    params: EvaluateParams,
    ultralytics: ExternalScorer | str | None,
    independent_scorer: IndependentScorer = independent_stats,
) -> dict[str, Any]:
    """The three mAP50-95 numbers side by side, their differences, tolerances and any skip reasons.

    ``ultralytics`` is a scorer to run, or the reason it is skipped (``None``: not requested here);
    ``independent_scorer`` re-scores the detections (faster-coco-eval unless a caller ran it already).
    """
    cc = params.cross_check
    skipped: dict[str, str] = {}
    independent, reason = _independent(gt, results, cc.independent, independent_scorer)
    if reason:
        skipped["independent"] = reason
    ultra, reason = _ultralytics(ultralytics, cc.ultralytics)
    if reason:
        skipped["ultralytics"] = reason
    for name, why in skipped.items():
        log.warning("cross-check %s skipped: %s", name, why)
    report: dict[str, Any] = {
        "metric": "map50_95",
        "pycocotools": pycocotools_map,
        "independent": independent,
        "independent_implementation": "faster-coco-eval (same detections)",
        "ultralytics": _rounded(ultra.get("map50_95")),
        "ultralytics_map50": _rounded(ultra.get("map50")),
        "ultralytics_images_per_s": ultra.get("images_per_s"),
        "tolerance": {"independent": cc.independent_tolerance, "ultralytics": cc.ultralytics_tolerance},
        "skipped": skipped,
    }
    report["difference"] = {k: _diff(pycocotools_map, report[k]) for k in ("independent", "ultralytics")}
    report["passed"] = not disagreements(report)
    return report


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(abs(float(a) - float(b)), 6)


def disagreements(report: Mapping[str, Any]) -> list[str]:
    """One message per scorer whose mAP50-95 differs from pycocotools' by more than its tolerance."""
    problems = []
    for name in ("independent", "ultralytics"):
        diff = report["difference"].get(name)
        if diff is not None and diff > report["tolerance"][name] + 1e-9:
            problems.append(
                f"mAP50-95 cross-check failed: pycocotools {report['pycocotools']:.4f} vs {name} "
                f"{report[name]:.4f} (|difference| {diff:.4f} > tolerance {report['tolerance'][name]})"
            )
    return problems


def raise_on_disagreement(report: Mapping[str, Any]) -> None:
    """Raise :class:`CrossCheckError` naming both numbers of every failed comparison."""
    problems = disagreements(report)
    if problems:
        raise CrossCheckError("; ".join(problems))
