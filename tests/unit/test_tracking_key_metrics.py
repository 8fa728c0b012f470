"""A promotion record's key metrics: the headline's, else the gated file's own eval/bench, never the
reference's (``reference.*``: the fp32 files, logged beside them)."""

from __future__ import annotations

from edgeproof.tracking.promotion import key_metrics

GATED = {"eval.map50_95": 0.7717, "bench.fps_e2e": 166.0, "eval.map50": 0.9601}
REFERENCE = {"reference.eval.map50_95": 0.7727, "reference.bench.fps_e2e": 124.9, "reference.eval.map50": 0.9606}


def test_the_headline_wins():
    assert key_metrics({"fps": 166.0, "mAP50-95": 0.7717, **GATED, **REFERENCE}) == {"fps": 166.0, "mAP50-95": 0.7717}


def test_without_a_headline_the_gated_files_figures_alone_not_the_fp32_references_beside_them():
    assert key_metrics({**GATED, **REFERENCE}) == GATED


def test_a_record_of_the_reference_alone_has_no_key_metrics():
    """eval.*/bench.* always were the gated file's: the reference's figures never stand in for them."""
    assert key_metrics(REFERENCE) == {}
