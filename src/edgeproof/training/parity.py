"""Parity: does each variant compute what the trained PyTorch model computes?

Two questions on the same fixed, letterboxed val images. Raw outputs, PyTorch against the ONNX
FP32 file: a gap larger than reordering noise is a bug (export or graph optimization), so it fails
the stage. Detections, every variant against PyTorch, both decoded by the runtime's own
post-processing at the deployment thresholds: boxes matched (same class, IoU >= ``match_iou``),
lost and added. That one is a trade-off, recorded for the release choice, and judged both ways:
``matched_share`` is the matched count over the larger of the two counts, so a variant that loses
boxes and one that adds boxes both lower it. It is judged pooled (``min_matched_share``) and per
class (``min_class_share`` for each class with at least ``min_class_detections`` boxes on either
side, so a rare class lost entirely is not hidden by the others). With fewer than
``min_detections`` boxes on both sides there is nothing to judge: ``passed`` is null with the
reason, never a pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.evaluation.agreement import match_count
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.detector import Detector
from edgeproof.runtime.postprocess import Detections, Postprocess
from edgeproof.runtime.preprocess import Letterbox, as_float_nchw, load_image
from edgeproof.training.params import ParityParams
from edgeproof.training.parity_judge import figures, judge

log = logging.getLogger(__name__)

#: raw model output for a preprocessed ``(B, 3, H, W)`` batch -> ``(B, 4 + nc, anchors)``
Reference = Callable[[np.ndarray], np.ndarray]


class ParityError(RuntimeError):
    """The FP32 ONNX model does not compute what the PyTorch model computes."""


def torch_reference(weights: Path, state: Path) -> Reference:
    """The trained PyTorch model as a raw-output function (CPU, eval mode, no gradients)."""
    import torch

    from edgeproof.training.ultralytics_env import configure

    model = configure(state)(str(weights)).model.float().eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.from_numpy(batch))
        out = out[0] if isinstance(out, list | tuple) else out
        return out.detach().cpu().numpy().astype(np.float32)

    return run


def deploy_detector(model: Path, deploy: DeploySettings) -> Detector:
    """A runtime detector on the CPU provider at the deployment operating point."""
    return Detector(model, Postprocess.deployed(deploy))


def _match_class(reference: Detections, candidate: Detections, cls: int, iou: float) -> int:
    """One-to-one matches of class ``cls`` (highest scores first): IoU >= ``iou``, any score
    (a variant's scores may move; :func:`edgeproof.evaluation.agreement.match_count`)."""
    sets = []
    for det in (reference, candidate):
        sel = np.flatnonzero(det.classes == cls)
        sel = sel[np.argsort(-det.scores[sel], kind="stable")]
        sets.append((det.boxes[sel], det.scores[sel]))
    return match_count(sets[0], sets[1], iou, score_tolerance=None)


def compare_detections(reference: Sequence[Detections], candidate: Sequence[Detections], iou: float) -> dict[str, Any]:
    """Detections matched, lost and added over all images, pooled and per class (``classes``, keyed by class id)."""
    pairs = list(zip(reference, candidate, strict=True))
    ids = sorted({int(c) for det in (*reference, *candidate) for c in det.classes})
    per_class = {
        cls: figures(
            sum(int(np.sum(r.classes == cls)) for r, _ in pairs),
            sum(int(np.sum(c.classes == cls)) for _, c in pairs),
            sum(_match_class(r, c, cls, iou) for r, c in pairs),
        )
        for cls in ids
    }
    counts = ("reference_detections", "detections", "matched")
    pooled = figures(*(sum(f[k] for f in per_class.values()) for k in counts))
    return {**pooled, "classes": {str(cls): f for cls, f in per_class.items()}}


def raw_parity(reference: np.ndarray, fp32: np.ndarray, params: ParityParams) -> dict[str, Any]:
    """Max/mean absolute difference of raw outputs; raise :class:`ParityError` above the thresholds."""
    if reference.shape != fp32.shape:
        raise ParityError(f"output shapes differ: PyTorch {reference.shape}, ONNX fp32 {fp32.shape}")
    diff = np.abs(reference.astype(np.float64) - fp32.astype(np.float64))
    result = {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff_limit": params.max_abs_diff,
        "mean_abs_diff_limit": params.mean_abs_diff,
    }
    if not (result["max_abs_diff"] <= params.max_abs_diff and result["mean_abs_diff"] <= params.mean_abs_diff):
        raise ParityError(
            f"ONNX fp32 differs from the PyTorch model: max |diff| {result['max_abs_diff']:.3g} "
            f"(limit optimize.parity.max_abs_diff {params.max_abs_diff}), mean {result['mean_abs_diff']:.3g} "
            f"(limit optimize.parity.mean_abs_diff {params.mean_abs_diff})"
        )
    return result


def _judge_variant(
    name: str,
    det: Detector,
    pixels: Sequence[np.ndarray],
    boxes: Sequence[Letterbox],
    ref_det: Sequence[Detections],
    params: ParityParams,
) -> dict[str, Any]:
    """One variant's detections on ``pixels`` against PyTorch's (``ref_det``), judged and logged."""
    own = det.preprocess(pixels)[0]  # in the variant's own input form (optimize.input)
    raw_out = np.concatenate([det.infer(own[i : i + 1]) for i in range(len(pixels))])
    result = compare_detections(ref_det, det.postprocess(raw_out, boxes), params.match_iou)
    passed, reason = judge(result, params)
    log.info(
        "parity %s: %s (matched_share %s: %d matched, %d lost, %d added)%s",
        name,
        {True: "kept", False: "broken", None: "not judged"}[passed],
        result["matched_share"],
        result["matched"],
        result["lost"],
        result["added"],
        f": {reason}" if reason else "",
    )
    return {"measured": True, **result, "passed": passed, **({"reason": reason} if reason else {})}


def check_parity(
    reference: Reference,
    variants: Mapping[str, Path],
    images: Sequence[Path],
    params: ParityParams,
    deploy: DeploySettings,
    not_measured: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``metrics/parity.json`` document; raises :class:`ParityError` when fp32's raw outputs drift.

    ``not_measured`` names variants whose detections cannot be judged here, with the reason.
    """
    if not images:
        raise ValueError("parity needs val images; the val split has none")
    fp32 = deploy_detector(variants["fp32"], deploy)
    pixels = [load_image(p) for p in images]
    batch, boxes = fp32.preprocess(pixels)
    ref_raw = np.concatenate([reference(as_float_nchw(batch[i : i + 1])) for i in range(len(images))])
    raw = raw_parity(ref_raw, np.concatenate([fp32.infer(batch[i : i + 1]) for i in range(len(images))]), params)
    ref_det = fp32.postprocess(ref_raw, boxes)
    per_variant: dict[str, Any] = {}
    for name, path in variants.items():
        if not_measured and name in not_measured:
            per_variant[name] = {"measured": False, "passed": None, "reason": not_measured[name]}
            continue
        per_variant[name] = _judge_variant(name, deploy_detector(path, deploy), pixels, boxes, ref_det, params)
    return {
        "images": len(images),
        "reference": "PyTorch (models/best.pt)",
        "raw_outputs": {"variant": "fp32", **raw, "passed": True},
        "detections": {
            "thresholds": {"conf": deploy.conf, "iou": deploy.iou, "max_det": deploy.max_det},
            "match_iou": params.match_iou,
            "min_detections": params.min_detections,
            "min_matched_share": params.min_matched_share,
            "min_class_detections": params.min_class_detections,
            "min_class_share": params.min_class_share,
            "variants": per_variant,
        },
    }
