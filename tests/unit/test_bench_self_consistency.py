"""One bench.json against itself (``verdict.consistency.bench_problems``, both gates' check): ``fps_e2e`` is its
median round's, and a frame end to end is no faster than its model pass beyond the timing noise (review
launder12 #6: a 10x speed edit passed beside rounds and a model-only run that contradict it)."""

from __future__ import annotations

import copy

import pytest

from edgeproof.verdict.consistency import bench_problems, unchecked

MARGIN = 3.0  # consistency.MARGIN

# main's int8_trt bench as measured on the 2-core build machine: e2e 1.33x faster than the model-only run
MEASURED = {
    "fps_e2e": 24.888,
    "rounds_fps_e2e": [23.832, 21.77, 24.888, 32.174, 40.541],
    "fps_model": 18.695,
    "e2e": {"fps": 24.888, "mean": 40.1807, "p50": 38.0, "p95": 60.0},
    "latency_ms": {"mean": 40.1807, "p50": 38.0, "p95": 60.0},
    "latency_model_ms": {"mean": 53.4912, "p50": 52.1732},
    "model": {"batch": 1, "fps": 18.695, "mean": 53.4912, "p50": 52.1732},
}


def _with(**changes) -> dict:
    out = copy.deepcopy(MEASURED)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = out
        for key in path:
            node = node[key]
        node[last] = value
    return out


def test_a_measured_bench_within_the_timing_noise_has_no_problem():
    assert bench_problems(MEASURED, over_images=True) == []
    assert bench_problems(_with(rounds_fps_e2e=[24.888, 30.0]), over_images=True) == [  # even count: upper middle
        "bench.json fps_e2e 24.888 differs from the median of rounds_fps_e2e 30.0"
    ]
    assert bench_problems(_with(rounds_fps_e2e=[20.0, 24.888]), over_images=True) == []


@pytest.mark.parametrize(
    ("rounds", "named"),
    [
        ([23.832, 21.77, 2.4888, 3.2174, 4.0541], "fps_e2e 24.888 differs from the median of rounds_fps_e2e 4.0541"),
        ([23.832, 21.77, 24.888, "fast", 40.541], "rounds_fps_e2e [23.832, 21.77, 24.888, 'fast', 40.541] is not"),
        ([], "rounds_fps_e2e [] is not a list of figures"),
    ],
)
def test_fps_e2e_that_is_not_its_median_round_is_named(rounds, named):
    (problem,) = bench_problems(_with(rounds_fps_e2e=rounds), over_images=True)
    assert problem.startswith("bench.json " + named), problem


def test_end_to_end_faster_than_its_model_pass_beyond_the_noise_is_named():
    mean = round(53.4912 / MARGIN - 0.01, 4)  # just past the margin; fps kept 1000 / mean
    fps = round(1000 / mean, 3)
    bench = _with(e2e__mean=mean, e2e__fps=fps, fps_e2e=fps, latency_ms__mean=mean, rounds_fps_e2e=[fps])
    assert bench_problems(bench, over_images=True) == [
        f"bench.json e2e.mean {mean!r} is under 1/3 of latency_model_ms.mean 53.4912 (a frame end to end includes "
        "its model pass)",
        f"bench.json fps_e2e {fps!r} is over 3 x fps_model 18.695 (a frame end to end includes its model pass)",
    ]
    inside = round(53.4912 / MARGIN + 0.01, 4)
    fps = round(1000 / inside, 3)
    ok = _with(e2e__mean=inside, e2e__fps=fps, fps_e2e=fps, latency_ms__mean=inside, rounds_fps_e2e=[fps])
    assert bench_problems(ok, over_images=True) == []


def test_a_model_only_run_at_a_larger_batch_is_no_bound_on_one_frame():
    """One call of 8 images may take longer than one frame end to end: not compared."""
    bench = _with(model__batch=8, model__mean=500.0, latency_model_ms__mean=500.0, fps_model=1.0)
    assert bench_problems(bench, over_images=True) == []


def test_a_bench_without_rounds_or_a_model_run_is_not_held_to_them():
    """A device's bench.json has no rounds: nothing to check, and nothing missing (not inconclusive)."""
    bench = {k: v for k, v in MEASURED.items() if k not in ("rounds_fps_e2e", "model", "latency_model_ms", "fps_model")}
    assert bench_problems(bench, over_images=True) == [] and unchecked(bench, over_images=True) == []
