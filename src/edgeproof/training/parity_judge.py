"""The detections parity rule, apart from measuring it: torch-free, so the build gate re-judges
``metrics/parity.json``'s counts with the very rule the optimize stage set ``passed`` by.

:func:`figures` turns counts into shares, :func:`judge` holds them to params' ``optimize.parity``,
:func:`rejudge` does both from a recorded variant's counts (never its recorded shares or flag),
:func:`share_contradictions` names recorded shares its counts do not give, and
:func:`fp16_judgeable` says whether this machine can measure fp16 at all (a GPU provider).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeproof.runtime.session import import_ort
from edgeproof.training.params import ParityParams

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
FP16_CPU_REASON = (
    "fp16 numerics need a GPU provider (CUDA/TensorRT), and this onnxruntime has none: "
    "CPU results would be CPU-cast numbers, not fp16"
)
_COUNTS = ("reference_detections", "detections", "matched")


def fp16_judgeable() -> str | None:
    """``None`` when a GPU provider can run fp16 here, else the reason fp16 is not judged here."""
    available = import_ort().get_available_providers()
    return None if any(p in available for p in GPU_PROVIDERS) else FP16_CPU_REASON


def measurable_here(variant: str) -> bool:
    """Whether this machine measures ``variant``'s detections parity (all but fp16 without a GPU provider)."""
    return variant != "fp16" or fp16_judgeable() is None


def figures(n_ref: int, n_cand: int, matched: int) -> dict[str, Any]:
    """Matched, lost and added of ``matched`` boxes between ``n_ref`` reference and ``n_cand`` variant boxes."""
    larger = max(n_ref, n_cand)
    return {
        "reference_detections": n_ref,
        "detections": n_cand,
        "matched": matched,
        "lost": n_ref - matched,
        "added": n_cand - matched,
        # both ways: a box lost and a box added count alike (None: neither side found anything)
        "matched_share": round(matched / larger, 4) if larger else None,
    }


def judge(result: Mapping[str, Any], params: ParityParams) -> tuple[bool | None, str | None]:
    """``(passed, reason)`` of detections figures (pooled, and per class under ``classes``): ``None`` when
    too few boxes to judge."""
    n_ref, n_cand = result["reference_detections"], result["detections"]
    if max(n_ref, n_cand) < params.min_detections:
        return None, (
            f"PyTorch found {n_ref} and the variant {n_cand} detections on the parity images, fewer than "
            f"optimize.parity.min_detections ({params.min_detections}): too few to judge agreement"
        )
    if result["matched_share"] < params.min_matched_share:
        return False, (
            f"{result['matched']} matched of {n_ref} PyTorch and {n_cand} variant detections: matched_share "
            f"{result['matched_share']} < optimize.parity.min_matched_share {params.min_matched_share}"
        )
    lost_classes = [
        f"class {cls}: {f['matched']} matched of {f['reference_detections']} PyTorch and {f['detections']} variant "
        f"detections (matched_share {f['matched_share']})"
        for cls, f in result["classes"].items()
        if max(f["reference_detections"], f["detections"]) >= params.min_class_detections
        and f["matched_share"] < params.min_class_share
    ]
    if lost_classes:
        return False, f"{'; '.join(lost_classes)} < optimize.parity.min_class_share {params.min_class_share}"
    return True, None


def _counts(record: Any) -> tuple[int, int, int] | None:
    """A figures record's three counts, or ``None`` unless all are non-negative integers."""
    if not isinstance(record, Mapping):
        return None
    values = [record.get(k) for k in _COUNTS]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        return None
    n_ref, n_cand, matched = values
    return (n_ref, n_cand, matched) if matched <= min(n_ref, n_cand) else None


def rejudge(record: Mapping[str, Any], params: ParityParams) -> tuple[bool | None, str | None]:
    """:func:`judge` of a recorded variant (a ``parity.json`` ``detections.variants`` entry) from its counts
    alone, the shares derived again; ``(None, why)`` where the counts are missing or impossible."""
    classes = record.get("classes")
    pooled = _counts(record)
    per_class = {str(c): _counts(f) for c, f in classes.items()} if isinstance(classes, Mapping) else None
    if pooled is None or per_class is None or None in per_class.values():
        return None, "its detection counts (pooled and per class) are missing or impossible"
    summed = tuple(sum(c[i] for c in per_class.values()) for i in range(3))  # type: ignore[index]
    if per_class and summed != pooled:
        return None, f"its pooled counts {pooled} are not the sum of its classes' {summed}"
    result = {**figures(*pooled), "classes": {c: figures(*n) for c, n in per_class.items()}}  # type: ignore[misc]
    return judge(result, params)


def share_contradictions(record: Mapping[str, Any]) -> list[str]:
    """The ``matched_share`` figures of a recorded variant (pooled and per class) that its own counts do not
    give (:func:`figures`); counts missing or impossible are :func:`rejudge`'s to report."""
    classes = record.get("classes") if isinstance(record.get("classes"), Mapping) else {}
    named = [("matched_share", record), *((f"classes.{c}.matched_share", f) for c, f in classes.items())]
    wrong = []
    for key, f in named:
        counts = _counts(f)
        if counts is not None and f.get("matched_share") != figures(*counts)["matched_share"]:
            wrong.append(f"{key} {f.get('matched_share')!r} is not its counts' {figures(*counts)['matched_share']}")
    return wrong
