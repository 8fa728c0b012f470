"""The device's detections, checked before they are believed: where they are, what they refer to, and
whether the bundled model produces them.

A results folder is written by the board, i.e. by whatever ran there. What can be checked here:

- the file ``eval.json`` names stays inside the results folder (resolved, symlinks followed);
- every detection is well formed and refers to an image and a category of the bundle's ground truth;
- **they come from the measured model** (:func:`reproduce`): the bundled model file (sha256-verified)
  is run here on the CPU over every bundled val image (at most ``bundle.max_val_images``, 200 by
  default: seconds for a small detector), and (1) its confident detections must be found again among
  the device's, and the other way round, and (2) the device's mAP50-95 must not be above the mAP50-95
  of the model's own detections here by more than :data:`MAP_TOLERANCE`. TensorRT FP16 moves boxes
  and scores a little and never makes a model systematically better; copying the ground truth in
  (mAP 1.0), faking scores or substituting another model's output fails (1), and forging a few
  images only, to stay under (1)'s tolerance, gains at most :data:`MAP_TOLERANCE` before (2) fails.
  What this cannot catch: a board that runs this very model honestly but reports wrong *timings*;
  timings are bounded by :data:`edgeproof.verdict.rules.BOUNDS` only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from edgeproof.verdict.rules import is_number

log = logging.getLogger(__name__)

MAP_TOLERANCE = 0.02  # the device's mAP50-95 above the model's own mAP here by more than this: not its output
SPOT_CONF = 0.35  # confident detections on one side ...
SPOT_FLOOR = 0.15  # ... must be found among the other side's detections above this score
SPOT_IOU = 0.5  # same category and IoU >= this: found
MIN_SHARE = 0.9  # TensorRT FP16 moves boxes and scores a little; a forgery moves them a lot


def inside(results: Path, name: Any) -> Optional[Path]:
    """``results/name`` if it resolves inside ``results`` (symlinks followed), else None."""
    if not isinstance(name, str) or not name:
        return None
    root = Path(results).resolve()
    path = (root / name).resolve()
    try:
        path.relative_to(root)
    except ValueError:
        return None
    return path


def problems(detections: Any, gt: Dict[str, Any], limit: int = 3) -> List[str]:
    """Why ``detections`` is not a COCO result list for the bundle's ground truth ``gt`` (empty: it is)."""
    if not isinstance(detections, list):
        return ["detections are not a list ({})".format(type(detections).__name__)]
    images = {im.get("id") for im in gt.get("images", [])}
    categories = {c.get("id") for c in gt.get("categories", [])}
    found: List[str] = []
    for i, d in enumerate(detections):
        why = _problem(d, images, categories)
        if why is not None:
            found.append("detection {}: {}".format(i, why))
            if len(found) >= limit:
                break
    return found


def _one_of(value: Any, ids: set) -> bool:
    """``value`` is one of the ground truth's ``ids`` (a bool is not an id, nor is a list or an object, which
    no set can hold: asking would raise)."""
    return not isinstance(value, (bool, list, dict)) and value in ids


def _problem(d: Any, images: set, categories: set) -> Optional[str]:
    if not isinstance(d, dict):
        return "not an object"
    if not _one_of(d.get("image_id"), images):
        return "image_id {!r} is not an image of the bundle".format(d.get("image_id"))
    if not _one_of(d.get("category_id"), categories):
        return "category_id {!r} is not a category of the bundle".format(d.get("category_id"))
    box = d.get("bbox")
    if not isinstance(box, list) or len(box) != 4 or not all(is_number(v) for v in box):
        return "bbox {!r} is not four finite numbers".format(box)
    if box[2] < 0 or box[3] < 0:
        return "bbox {!r} has a negative width or height".format(box)
    score = d.get("score")
    if not is_number(score) or not 0.0 <= score <= 1.0:
        return "score {!r} is not a number in [0, 1]".format(score)
    return None


def score(gt: Dict[str, Any], detections: List[Dict[str, Any]]) -> Dict[str, Any]:
    """pycocotools mAP of valid ``detections`` against ``gt``, and what it is over as an ``eval.json`` says it
    (``n_images``, ``n_background_images``: those without a non-crowd box, ``n_gt``: non-crowd boxes,
    ``per_class`` with each class's ``n_gt``), which the accuracy rules need and show
    (:mod:`edgeproof.verdict.eval_size`)."""
    from edgeproof.evaluation.coco import background_images, gt_counts, score_coco

    metrics = score_coco(gt, detections).metrics
    out = {k: metrics.get(k) for k in ("map50_95", "map50", "map75")}
    out["n_detections"] = len(detections)
    out.update(n_images=len(gt.get("images", [])), n_background_images=background_images(gt))
    out.update(n_gt=sum(gt_counts(gt).values()), per_class=metrics["per_class"])
    return out


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    h = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _found(wanted: List[Dict[str, Any]], pool: List[Dict[str, Any]]) -> int:
    """How many confident detections of ``wanted`` have a match in ``pool`` (above the floor)."""
    hits = 0
    for w in (d for d in wanted if d["score"] >= SPOT_CONF):
        if any(
            p["image_id"] == w["image_id"]
            and p["category_id"] == w["category_id"]
            and p["score"] >= SPOT_FLOOR
            and _iou(p["bbox"], w["bbox"]) >= SPOT_IOU
            for p in pool
        ):
            hits += 1
    return hits


def agreement(device: List[Dict[str, Any]], here: List[Dict[str, Any]]) -> Tuple[float, int]:
    """Share of confident detections (either side) found again on the other side; and how many there were."""
    total = sum(1 for d in device if d["score"] >= SPOT_CONF) + sum(1 for d in here if d["score"] >= SPOT_CONF)
    if total == 0:
        return 1.0, 0
    return (_found(device, here) + _found(here, device)) / total, total


def base_setup(bundle: Path, scoring: Dict[str, Any]) -> Dict[str, Any]:
    """How a bundled model is re-run here: ``deploy.json``'s input size and categories, scored at ``scoring``
    (the base params' ``evaluate`` conf/iou/max_det/multi_label), never the bundle's own."""
    from edgeproof.device.manifest import read_json_file

    setup = {**read_json_file(bundle / "deploy.json"), "map": scoring}
    setup["map_from"] = "the base params' evaluate section"
    return setup


def rerun_here(bundle: Path, model_rel: str, gt: Dict[str, Any], setup: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The bundled model's detections on ``gt``'s images, run here on the CPU at ``setup["map"]``'s scoring
    settings (the base params' ``evaluate``; ``setup["map_from"]`` names where they come from)."""
    from edgeproof.device.timing import coco_detections
    from edgeproof.runtime.detector import Detector
    from edgeproof.runtime.postprocess import Postprocess
    from edgeproof.runtime.scoring import ScoringSettings

    path = bundle / model_rel
    scoring = ScoringSettings.parse(setup["map"], where=setup.get("map_from", "the mAP scoring settings"))
    model = Detector(path, Postprocess.scoring(scoring))
    if tuple(model.input_size) != tuple(setup["input_size"]):
        raise ValueError(f"{path}: input {model.input_size} differs from deploy.json's {setup['input_size']}")
    results, _ = coco_detections(model, gt, bundle / "val" / "images", setup["category_ids"])
    return results


def reproduce(
    bundle: Path, model_rel: str, gt: Dict[str, Any], setup: Dict[str, Any], detections: List[Dict[str, Any]]
) -> Dict[str, Any]:
    """The bundled model re-run here on the CPU over every bundled val image, compared with the device's.

    Returns ``{"share", "confident", "map50_95_here", "note"}``; ``share`` and ``map50_95_here`` are
    None when the model cannot run here (``note`` says why).
    """
    try:
        here = rerun_here(bundle, model_rel, gt, setup)
    except Exception as exc:
        log.warning("the bundled model did not run here: %s", exc)
        why = "the bundled model did not run here ({}: {})".format(type(exc).__name__, exc)
        return {"share": None, "confident": None, "map50_95_here": None, "note": why}
    share, total = agreement(detections, here)
    note = "{} confident detections on {} images".format(total, len(gt.get("images", [])))
    own = score(gt, here)["map50_95"] if here else 0.0
    return {"share": round(share, 4), "confident": total, "map50_95_here": own, "note": note}
