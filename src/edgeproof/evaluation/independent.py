"""The same detections scored by an independent COCO implementation (faster-coco-eval, C++).

faster-coco-eval is an optional dependency: it is imported only here, only when asked for, and
:func:`independent_available` lets callers degrade with a note instead of failing.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeproof.evaluation.coco import STAT_NAMES, detections_coco, none_if_negative, quiet

log = logging.getLogger(__name__)

PACKAGE = "faster_coco_eval"
INSTALL_HINT = "faster-coco-eval is not installed (`pip install faster-coco-eval`, or the `dev` extra)"


def independent_available() -> bool:
    """Whether faster-coco-eval can be imported (checked without importing it)."""
    return importlib.util.find_spec(PACKAGE) is not None


def independent_stats(gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """The 12 COCO summary stats (``map50_95`` ...) of ``results`` as faster-coco-eval computes them."""
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError as exc:
        raise RuntimeError(INSTALL_HINT) from exc

    coco_gt = COCO(copy.deepcopy(dict(gt)), print_function=log.debug)
    coco_dt = detections_coco(coco_gt, gt, results, COCO)
    with quiet():
        coco_eval = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=log.debug)
        coco_eval.params.imgIds = [im["id"] for im in gt["images"]]
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    stats = np.asarray(coco_eval.stats, dtype=float)[: len(STAT_NAMES)]
    return {name: none_if_negative(v) for name, v in zip(STAT_NAMES, stats, strict=True)}
