"""Cross-checking edgeproof's mAP50-95 against finished results of two other tools.

* **independent** — the very same detections scored by faster-coco-eval (a separate C++
  implementation of the COCO protocol): must agree within ``independent_tolerance`` (0.001).
* **ultralytics** — ultralytics' validator runs the same ONNX file on the same images with its own
  loading, letterbox and NMS; its detections (``save_json``, in the dataset's ids) are scored by
  pycocotools, the same scorer as edgeproof's, so two *pipelines* are compared, not two AP formulas.
  The two mAP50-95 must agree within ``ultralytics_tolerance`` (0.001); detection-level agreement
  (:mod:`edgeproof.evaluation.agreement`) is reported next to it and names the likely cause when
  they do not. ultralytics' own AP is recorded as information only (:data:`OWN_AP_NOTE`).

The checks run elsewhere (:mod:`edgeproof.evaluation.run`); here they arrive finished, as a
:class:`Finished` value or a skip with its reason, and are only compared. Both are optional at run
time (``true`` = required, ``false`` = off, ``auto`` = when installed); a skipped check is ``null``
with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgeproof.evaluation import agreement
from edgeproof.evaluation.coco import score_coco
from edgeproof.evaluation.params import CheckMode, CrossCheckParams

log = logging.getLogger(__name__)

OWN_AP_NOTE = (
    "ultralytics' own AP interpolates the PR curve differently (continuous envelope integrated at 101 "
    "points after its own matching) from COCO's 101-point precision sampling, so on a weak model or a "
    "small val set the two formulas differ even on identical detections; informational, never a failure"
)
_SHOWN_IMAGES = 5


class CrossCheckError(RuntimeError):
    """Two scorers or pipelines disagree by more than the tolerance."""


@dataclass(frozen=True)
class Finished:
    """A cross-check's finished result (``value``), or why it did not run (``skipped``)."""

    value: Mapping[str, Any] | None = None
    skipped: str | None = None

    @classmethod
    def skip(cls, reason: str) -> Finished:
        """A check that did not run, and why."""
        return cls(None, reason)


def skip_reason(mode: CheckMode, available: bool, key: str, missing: str) -> str | None:
    """``None`` when the check runs; otherwise why not. A required but missing package is an error."""
    if mode is False:
        return f"disabled (evaluate.cross_check.{key}: false)"
    if available:
        return None
    if mode is True:
        raise RuntimeError(f"evaluate.cross_check.{key} is true but {missing}")
    return missing


def _ultralytics_part(
    gt: Mapping[str, Any],
    ours: Sequence[Mapping[str, Any]],
    ours_map: float | None,
    done: Finished,
    params: CrossCheckParams,
) -> dict[str, Any]:
    if done.value is None:
        return {"ultralytics": None, "ultralytics_map50": None, "detection_agreement": None, "ultralytics_own_ap": None}
    theirs = list(done.value["detections"])
    scored = score_coco(gt, theirs).metrics
    images = agreement.per_image(ours, theirs, [int(im["id"]) for im in gt["images"]])
    own = _rounded(done.value.get("own_map50_95"))
    part = {
        "ultralytics": _rounded(scored["map50_95"]),
        "ultralytics_map50": _rounded(scored["map50"]),
        "detection_agreement": agreement.summary(images),
        "ultralytics_own_ap": {
            "map50_95": own,
            "map50": _rounded(done.value.get("own_map50")),
            "difference_vs_pycocotools": _diff(ours_map, own),
            "note": OWN_AP_NOTE,
        },
        "ultralytics_images_per_s": done.value.get("images_per_s"),
        "ultralytics_read": done.value.get("read", "the same file"),
    }
    tolerance = params.ultralytics_tolerance
    differing = [i for i in images if i.share < 1.0]
    if differing and (_diff(ours_map, part["ultralytics"]) or 0.0) > tolerance + 1e-9:  # explain a failure
        part["differing_images"] = _describe(gt, ours, theirs, differing[:_SHOWN_IMAGES])
    return part


def _describe(
    gt: Mapping[str, Any],
    ours: Sequence[Mapping[str, Any]],
    theirs: Sequence[Mapping[str, Any]],
    shown: Sequence[agreement.ImageAgreement],
) -> dict[str, Any]:
    names = {int(im["id"]): im["file_name"] for im in gt["images"]}
    ids = {i.image_id for i in shown}
    return {
        "first": [
            {
                "image_id": i.image_id,
                "file_name": names.get(i.image_id),
                "edgeproof": i.ours,
                "ultralytics": i.theirs,
                "matched": i.matched,
            }
            for i in shown
        ],
        "likely_cause": agreement.likely_cause(
            [r for r in ours if int(r["image_id"]) in ids], [r for r in theirs if int(r["image_id"]) in ids]
        ),
    }


def cross_check(
    pycocotools_map: float | None,
    gt: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    params: CrossCheckParams,
    independent: Finished,
    ultralytics: Finished,
) -> dict[str, Any]:
    """edgeproof's mAP50-95 next to the finished checks: values, differences, tolerances, skip reasons.

    ``independent.value``: faster-coco-eval's stats of ``results``; ``ultralytics.value``: its
    ``detections`` (COCO results in the dataset's ids) and ``own_map50_95``/``own_map50``.
    """
    skipped = {k: f.skipped for k, f in (("independent", independent), ("ultralytics", ultralytics)) if f.skipped}
    for name, why in skipped.items():
        log.warning("cross-check %s skipped: %s", name, why)
    report: dict[str, Any] = {
        "metric": "map50_95",
        "pycocotools": pycocotools_map,
        "independent": _rounded(independent.value["map50_95"]) if independent.value is not None else None,
        "independent_implementation": "faster-coco-eval (same detections)",
        "ultralytics_implementation": "pycocotools on ultralytics' own detections (val save_json, same ONNX file)",
        "ultralytics_images_per_s": None,
        **_ultralytics_part(gt, results, pycocotools_map, ultralytics, params),
        "tolerance": {"independent": params.independent_tolerance, "ultralytics": params.ultralytics_tolerance},
        "skipped": skipped,
    }
    report["difference"] = {k: _diff(pycocotools_map, report[k]) for k in ("independent", "ultralytics")}
    # no mAP (no ground truth) is nothing checked: never a pass
    report["passed"] = pycocotools_map is not None and not disagreements(report)
    return report


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(abs(float(a) - float(b)), 6)


def disagreements(report: Mapping[str, Any]) -> list[str]:
    """One message per check whose mAP50-95 differs from edgeproof's by more than its tolerance."""
    problems = []
    for name in ("independent", "ultralytics"):
        diff = report["difference"].get(name)
        if diff is None or diff <= report["tolerance"][name] + 1e-9:
            continue
        what = (
            "pycocotools vs faster-coco-eval on the same detections"
            if name == "independent"
            else ("edgeproof's detections vs ultralytics' detections, both scored by pycocotools")
        )
        msg = (
            f"mAP50-95 cross-check failed ({what}): {report['pycocotools']:.4f} vs {name} "
            f"{report[name]:.4f} (|difference| {diff:.4f} > tolerance {report['tolerance'][name]})"
        )
        if name == "ultralytics":
            msg += _pipeline_details(report)
        problems.append(msg)
    return problems


def _pipeline_details(report: Mapping[str, Any]) -> str:
    agree = report.get("detection_agreement") or {}
    out = f"; detections matched one to one: {100 * agree.get('share', 0):.1f} %"
    out += f" ({agree.get('matched')} of {agree.get('edgeproof')} edgeproof / {agree.get('ultralytics')} ultralytics)"
    differing = report.get("differing_images")
    if differing:
        first = ", ".join(
            f"{d['file_name']} (id {d['image_id']}: {d['edgeproof']} vs {d['ultralytics']}, {d['matched']} matched)"
            for d in differing["first"]
        )
        out += f"; first differing images: {first}; likely cause: {differing['likely_cause']}"
    return out


def raise_on_disagreement(report: Mapping[str, Any]) -> None:
    """Raise :class:`CrossCheckError` naming both numbers of every failed comparison."""
    problems = disagreements(report)
    if problems:
        raise CrossCheckError("; ".join(problems))
