"""A promotion record's key metrics: the headline's, else the gated file's own, never mixed with the reference's."""

from __future__ import annotations

from edgeproof.tracking.promotion import key_metrics

GATED = {"variant.eval.map50_95": 0.7717, "variant.bench.fps_e2e": 166.0}
REFERENCE = {"eval.map50_95": 0.7727, "bench.fps_e2e": 124.9, "eval.map50": 0.9606}


def test_the_headline_wins():
    assert key_metrics({"fps": 166.0, "mAP50-95": 0.7717, **GATED, **REFERENCE}) == {"fps": 166.0, "mAP50-95": 0.7717}


def test_without_a_headline_the_gated_files_figures_alone_not_the_fp32_references_beside_them():
    """eval.*/bench.* are metrics/eval.json and metrics/bench.json (the fp32 reference) since the MLflow
    names follow the files: an int8 version's record listed fp32's mAP and FPS next to its own."""
    assert key_metrics({**GATED, **REFERENCE}) == GATED


def test_a_record_of_the_reference_files_alone_keeps_them():
    assert key_metrics(REFERENCE) == REFERENCE
