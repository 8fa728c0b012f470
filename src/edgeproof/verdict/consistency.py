"""Does the device's bench.json agree with itself, the bundle and the board's other files?

The sha256 says which file was measured; the rest of ``bench.json`` must describe that same run:
the input size of the bundle's ``deploy.json``, the variant and path of the manifest's entry, one FPS
figure (``fps_e2e`` is the end-to-end run's ``e2e.fps``; over image files that is 1000 / mean latency;
the median of ``rounds_fps_e2e`` where the bench has rounds), an end to end no faster than its model pass
(:func:`_model_pass`), as many timed calls as the recorded settings ask, percentiles in order, a
``throttled`` flag that is a boolean, a ``measure.json`` that says what the results say, and -- where the
board says it measured them -- energy figures that are one integral over the FPS window (:func:`_energy`)
and a peak resident memory no lower than the resident memory it read (:func:`_memory`). The board writes
all of these from one run (:mod:`edgeproof.device.results`), so a disagreement is an edited file: the rule
``results_consistent`` is invalid, naming each key with both values. A section, or a run figure a copy
repeats (:func:`unchecked`), that is not there to cross-check leaves the rule inconclusive, never a pass.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from edgeproof.verdict.energy import readings_short
from edgeproof.verdict.rules import INCONCLUSIVE, INVALID, PASS, get_path, invalid_reason, is_number, result

# fps_e2e is e2e.fps copied; 1000 / e2e.mean differs from e2e.fps only by the mean's rounding to 4 decimals
# (at most 0.5 % at the 0.01 ms latency floor)
FPS_COPY_TOLERANCE = 1e-6
FPS_FROM_MEAN_TOLERANCE = 0.01
PERCENTILES = ("min", "p50", "p90", "p95", "p99", "max")
# The energy window is marked at the edges of the timed frames (device/gated.py), so window_s differs from
# frames / fps_e2e only by the loop's bookkeeping between frames (microseconds) and a reading of a sampler
# thread; 5 % is far above that and far below the 2x a window holding the warm-up frames gave.
WINDOW_TOLERANCE = 0.05
# mJ/frame x frames and mean W x 1000 x window_s are one integral divided two ways: they differ only by
# the rounding the board writes (energy and power to 4 decimals, window_s to 6), allowed for in _rounding.
INTEGRAL_TOLERANCE = 1e-3
# A frame end to end includes its model pass, but the two runs are timed one after the other, and on a shared
# machine a burst of load can slow one of them alone: main's own int8_trt bench (2-core build machine) has
# e2e.mean 40.2 ms under model.mean 53.5 ms (1.33x), and one variant's rounds spread up to 1.9x (21.8 to 40.5
# FPS). 3x is above both; a speed edited to flatter (10x: review launder12 #6) is far above it.
MODEL_PASS_MARGIN = 3.0


def _differs(key: str, found: Any, other: str, expected: Any) -> Optional[str]:
    if found == expected and type(found) is type(expected):
        return None
    return "{} {!r} differs from {} {!r}".format(key, found, other, expected)


def _identity(bench: Dict[str, Any], got: Dict[str, Any]) -> List[Optional[str]]:
    setup, entry, ev = got.get("setup") or {}, got.get("entry") or {}, got.get("eval")
    out = [
        _differs("bench.json input_size", bench.get("input_size"), "deploy.json input_size", setup.get("input_size")),
        _differs("bench.json variant", bench.get("variant"), "manifest.json variant", entry.get("variant")),
        _differs("bench.json model_path", bench.get("model_path"), "manifest.json model", entry.get("model")),
    ]
    if isinstance(ev, dict):  # the on-device detections' file names the run it came from too
        for key in ("profile", "variant", "model_path"):
            out.append(_differs("eval.json " + key, ev.get(key), "bench.json " + key, bench.get(key)))
    return out


def _fps(bench: Dict[str, Any], e2e: Dict[str, Any]) -> List[Optional[str]]:
    fps, copy, mean = bench.get("fps_e2e"), e2e.get("fps"), e2e.get("mean")
    over_images, timed = e2e.get("source") == "images", is_number(mean) and mean > 0
    # the run's own figures, where present, must be figures: no rule but this one reads them (an e2e.fps that
    # is fps_e2e's very value is the fps rule's to name, not twice)
    out = [None if repr(copy) == repr(fps) else _not_a_figure("e2e.fps", copy, "frames per second")]
    if over_images and mean is not None and not timed:
        out.append("bench.json e2e.mean {!r} is not a latency in ms".format(mean))
    if not (is_number(fps) and is_number(copy)):
        return out  # the fps rule judges an fps_e2e that is no number; a missing e2e.fps is unchecked()'s
    if not math.isclose(fps, copy, rel_tol=FPS_COPY_TOLERANCE, abs_tol=1e-3):
        out.append("bench.json fps_e2e {!r} differs from e2e.fps {!r}".format(fps, copy))
    if over_images and timed and not math.isclose(copy, 1000.0 / mean, rel_tol=FPS_FROM_MEAN_TOLERANCE):
        out.append("bench.json e2e.fps {!r} differs from 1000 / e2e.mean {!r}".format(copy, mean))
    return out


def _not_a_figure(key: str, value: Any, unit: str) -> Optional[str]:
    """Why a present ``bench.json`` figure ``key`` (``e2e.fps``) is none (None: absent, or a positive number)."""
    if value is None or (is_number(value) and value > 0):
        return None
    return "bench.json {} {!r} is not a figure ({} > 0)".format(key, value, unit)


def _counts(bench: Dict[str, Any], e2e: Dict[str, Any], model: Dict[str, Any]) -> List[Optional[str]]:
    settings = bench.get("settings") if isinstance(bench.get("settings"), dict) else {}
    return [
        _differs("bench.json e2e.samples", e2e.get("samples"), "settings.e2e_images", settings.get("e2e_images")),
        _differs("bench.json e2e.images", e2e.get("images"), "settings.e2e_images", settings.get("e2e_images")),
        _differs("bench.json model.samples", model.get("samples"), "settings.runs", settings.get("runs")),
        _differs("bench.json model.batch", model.get("batch"), "settings.batch", settings.get("batch")),
        _source(e2e.get("source"), settings.get("e2e_input")),
    ]


def _source(source: Any, e2e_input: Any) -> Optional[str]:
    """The end-to-end run timed what its settings say: image files (``images``) or the bundle's clip
    (``clip:<file name>``). A missing source is :func:`unchecked`'s; a missing setting ``measured_as_judged``'s."""
    clip = e2e_input == "clip" and isinstance(source, str) and source.startswith("clip:")
    if source is None or e2e_input not in ("images", "clip") or clip or source == e2e_input == "images":
        return None
    return "bench.json e2e.source {!r} is not what settings.e2e_input {!r} times".format(source, e2e_input)


def _ordered(bench: Dict[str, Any]) -> List[str]:
    """Percentiles that go down (p95 under p50): no timed run gives them, whatever keys the file has."""
    out = []
    for section in ("latency_ms", "latency_model_ms", "e2e", "model"):
        stats = bench.get(section)
        if not isinstance(stats, dict):
            continue
        present = [(k, stats[k]) for k in PERCENTILES if is_number(stats.get(k))]
        for (ka, a), (kb, b) in zip(present[:-1], present[1:]):  # noqa: RUF007 (3.8)
            if a > b:
                out.append("bench.json {}.{} {!r} is above {}.{} {!r}".format(section, ka, a, section, kb, b))
    for key in ("p50", "p90", "p95", "p99", "mean"):
        copy, run = get_path(bench, "latency_ms.{}".format(key)), get_path(bench, "e2e.{}".format(key))
        if copy is not None and run is not None and copy != run:
            out.append("bench.json latency_ms.{} {!r} differs from e2e.{} {!r}".format(key, copy, key, run))
    return out


def _rounds(bench: Dict[str, Any]) -> List[str]:
    """``fps_e2e`` is its median round's (``timing.median_round``: the upper middle of ``rounds_fps_e2e``, sorted),
    where the bench has rounds (a device's has none); its best round is then no slower than it."""
    rounds, fps = bench.get("rounds_fps_e2e"), bench.get("fps_e2e")
    if rounds is None:
        return []
    if not (isinstance(rounds, list) and rounds and all(is_number(r) and r > 0 for r in rounds)):
        return [
            "bench.json rounds_fps_e2e {} is not a list of figures (frames per second > 0)".format(str(rounds)[:80])
        ]
    median = sorted(rounds)[len(rounds) // 2]
    if is_number(fps) and not math.isclose(fps, median, rel_tol=FPS_COPY_TOLERANCE, abs_tol=1e-3):
        return ["bench.json fps_e2e {!r} differs from the median of rounds_fps_e2e {!r}".format(fps, median)]
    return []


def _model_pass(bench: Dict[str, Any], e2e: Dict[str, Any]) -> List[str]:
    """A frame end to end includes a model pass at batch 1: no faster than the model-only run, beyond the
    noise :data:`MODEL_PASS_MARGIN` allows. Only at a model-only batch of 1 (one call of N images has no bound
    against one frame), and only the figures the bench has."""
    model = bench.get("model") if isinstance(bench.get("model"), dict) else {}
    settings = bench.get("settings") if isinstance(bench.get("settings"), dict) else {}
    if model.get("batch", settings.get("batch")) != 1:
        return []
    out, mean, seen = [], e2e.get("mean"), set()
    for key in ("latency_model_ms.mean", "model.mean"):
        model_mean = get_path(bench, key)
        if is_number(mean) and mean > 0 and is_number(model_mean) and model_mean not in seen:
            seen.add(model_mean)
            if mean * MODEL_PASS_MARGIN < model_mean:
                why = "bench.json e2e.mean {!r} is under 1/{:g} of {} {!r} (a frame end to end includes its model pass)"
                out.append(why.format(mean, MODEL_PASS_MARGIN, key, model_mean))
    fps, model_fps = bench.get("fps_e2e"), bench.get("fps_model")
    if is_number(fps) and is_number(model_fps) and model_fps > 0 and fps > MODEL_PASS_MARGIN * model_fps:
        why = "bench.json fps_e2e {!r} is over {:g} x fps_model {!r} (a frame end to end includes its model pass)"
        out.append(why.format(fps, MODEL_PASS_MARGIN, model_fps))
    return out


def _speed(bench: Dict[str, Any], e2e: Dict[str, Any]) -> List[Optional[str]]:
    """The figures of one run: one FPS (:func:`_fps`), ordered percentiles (:func:`_ordered`), the median
    round (:func:`_rounds`) and an end to end no faster than its model pass (:func:`_model_pass`)."""
    return [*_fps(bench, e2e), *_ordered(bench), *_rounds(bench), *_model_pass(bench, e2e)]


def _run(bench: Dict[str, Any], over_images: bool) -> Dict[str, Any]:
    """``bench.json``'s end-to-end run (``{}`` where it has none); ``over_images``: it timed image files where
    ``e2e.source`` says nothing (the build machine's benchmark)."""
    e2e = bench.get("e2e") if isinstance(bench.get("e2e"), dict) else {}
    return dict(e2e, source="images") if over_images and "source" not in e2e else e2e


def bench_problems(bench: Dict[str, Any], over_images: bool = False) -> List[str]:
    """What one ``bench.json`` says against itself (:func:`_speed`): one FPS figure, percentiles in order and
    ``latency_ms`` the end-to-end run's, ``fps_e2e`` its median round's, end to end no faster than the model
    alone. The part of ``results_consistent`` that needs no other file, which the build gate judges too
    (:mod:`edgeproof.gate`). ``over_images``: see :func:`_run`."""
    return [p for p in _speed(bench, _run(bench, over_images)) if p]


def unchecked(bench: Dict[str, Any], over_images: bool = False) -> List[str]:
    """The end-to-end run's figures the copies in ``bench.json`` cannot be checked against, being absent:
    ``e2e.fps`` (``fps_e2e`` copies it), ``e2e.mean`` over image files (a numeric ``e2e.fps`` is 1000 / it), and each
    ``e2e`` percentile a ``latency_ms`` figure copies. One benchmark run writes them all, so their absence
    leaves ``results_consistent`` inconclusive, never a pass (a bench without an ``e2e`` section at all is
    its callers' to say)."""
    if not isinstance(bench.get("e2e"), dict):
        return []
    e2e = _run(bench, over_images)
    out = ["e2e.fps (fps_e2e's run)"] if e2e.get("fps") is None else []
    if e2e.get("source") is None:  # over image files, fps_e2e is 1000 / e2e.mean: unsaid, nothing is checked
        out.append("e2e.source (what the run timed)")
    if e2e.get("source") == "images" and is_number(e2e.get("fps")) and e2e.get("mean") is None:
        out.append("e2e.mean (e2e.fps is 1000 / it)")
    copies = bench.get("latency_ms") if isinstance(bench.get("latency_ms"), dict) else {}
    for key in ("p50", "p90", "p95", "p99", "mean"):
        if copies.get(key) is not None and e2e.get(key) is None:
            out.append("e2e.{} (latency_ms.{}'s run)".format(key, key))
    return ["bench.json has no {}".format(", ".join(out))] if out else []


def _board_files(name: str, bench: Dict[str, Any], got: Dict[str, Any]) -> List[Optional[str]]:
    """measure.json (the run's status) and conditions.json's flag against the results."""
    cond, status = got.get("conditions") or {}, got.get("measure") or {}
    flag = cond.get("throttled")
    out: List[Optional[str]] = []
    if "throttled" in cond and not isinstance(flag, bool):
        out.append("conditions.json throttled {!r} is not a boolean".format(flag))
    out.append(_differs("measure.json exit_code", status.get("exit_code"), "a finished measurement's", 0))
    out.append(_differs("measure.json profile", status.get("profile"), "the profile judged", name))
    if isinstance(flag, bool):
        out.append(_differs("measure.json throttled", status.get("throttled"), "conditions.json throttled", flag))
    fps, said = bench.get("fps_e2e"), status.get("fps_e2e")
    if "fps_e2e" in status and said != fps:
        out.append("measure.json fps_e2e {!r} differs from bench.json fps_e2e {!r}".format(said, fps))
    return out


def _possible(key: str, value: Any) -> bool:
    """A figure its own rule will not hold invalid (an impossible one is named there, not twice)."""
    return value is not None and invalid_reason(key, value) is None


def _rounding(frames: float, window: float, power: float) -> float:
    """The most ``mJ/frame x frames`` and ``W x 1000 x window_s`` can differ by the board's rounding."""
    return 5e-5 * frames + 1000.0 * (5e-5 * window + 5e-7 * power) + 1e-9


def _energy(bench: Dict[str, Any], e2e: Dict[str, Any]) -> List[Optional[str]]:
    """A record that says energy was measured: frames, window, integral, peak and readings that one run gives."""
    record = bench.get("energy")
    if not isinstance(record, dict) or record.get("measurable") is not True:
        return []  # the energy rules judge a record that is not there or not measurable
    frames, window, images = record.get("frames"), record.get("window_s"), e2e.get("images")
    out = [_differs("bench.json energy.frames", frames, "e2e.images", images)]
    if not (is_number(window) and window > 0):
        why = "bench.json energy.window_s {!r} with energy.measurable true, expected seconds > 0"
        return [*out, why.format(window)]
    fps = bench.get("fps_e2e")
    if is_number(images) and is_number(fps) and fps > 0:
        timed = images / fps
        if not math.isclose(window, timed, rel_tol=WINDOW_TOLERANCE, abs_tol=1e-6):
            out.append("bench.json energy.window_s {!r} differs from e2e.images / fps_e2e {!r}".format(window, timed))
    mj, mean, peak = bench.get("energy_mj_per_frame"), bench.get("power_w_mean"), bench.get("power_w_peak")
    if type(frames) is int and frames > 0 and _possible("energy_mj_per_frame", mj) and _possible("power_w_mean", mean):
        lhs, rhs = mj * frames, mean * 1000.0 * window
        if abs(lhs - rhs) > INTEGRAL_TOLERANCE * max(abs(lhs), abs(rhs)) + _rounding(frames, window, mean):
            why = "bench.json energy_mj_per_frame {!r} x energy.frames {!r} differs from power_w_mean {!r} x "
            out.append((why + "energy.window_s {!r} (one integral)").format(mj, frames, mean, window))
    if _possible("power_w_peak", peak) and _possible("power_w_mean", mean) and peak < mean - 1e-4:
        out.append("bench.json power_w_peak {!r} is below power_w_mean {!r}".format(peak, mean))
    if peak is not None and not _possible("power_w_peak", peak):  # no rule judges it: this one names it
        out.append("bench.json {} with energy.measurable true".format(invalid_reason("power_w_peak", peak)))
    return out + _readings(record)


def _readings(record: Dict[str, Any]) -> List[Optional[str]]:
    """As many readings as the board itself needs to call the window measurable (one home for every
    energy reader: :func:`~edgeproof.verdict.energy.readings_short`, which also holds ``inside_samples`` to
    at most ``samples``). A count that is no integer is the energy rules' to name (invalid there), not twice."""
    counts = type(record.get("samples")) is int and type(record.get("inside_samples")) in (int, type(None))
    return [readings_short(record)] if counts else []


def _memory(bench: Dict[str, Any]) -> List[str]:
    """VmHWM is the peak of the resident memory the board sampled: never below any of its readings, each a
    possible resident memory (null: no reading)."""
    record, peak = bench.get("memory"), bench.get("peak_memory_mb")
    if not isinstance(record, dict) or record.get("measurable") is not True:
        return []
    out = []
    for key in ("rss_start_mb", "rss_end_mb"):
        rss, why = record.get(key), invalid_reason("memory." + key, record.get(key))
        if rss is not None and why is not None:
            out.append("bench.json {} with memory.measurable true".format(why))
        elif rss is not None and _possible("peak_memory_mb", peak) and peak < rss:
            out.append("bench.json peak_memory_mb {!r} (VmHWM) is below memory.{} {!r}".format(peak, key, rss))
    return out


def _sections(bench: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any], List[str]]:
    e2e, model = bench.get("e2e"), bench.get("model")
    missing = [k for k, v in (("e2e", e2e), ("model", model)) if not isinstance(v, dict)]
    return (e2e if isinstance(e2e, dict) else {}), (model if isinstance(model, dict) else {}), missing


def consistency_rule(name: str, bench: Dict[str, Any], got: Dict[str, Any]) -> Dict[str, Any]:
    """The rule ``results_consistent`` over one measurement's files (see the module docstring)."""
    rule, metric = "results_consistent", "bench.json vs deploy.json, manifest, settings, measure.json"
    e2e, model, missing = _sections(bench)
    found = _identity(bench, got) + _speed(bench, e2e) + _board_files(name, bench, got)
    found += _energy(bench, e2e) + _memory(bench)
    if not missing:
        found += _counts(bench, e2e, model)
    problems = [p for p in found if p]
    if problems:
        return result(rule, metric, "==", "agree", problems[0], "device", INVALID, "; ".join(problems))
    absent = ["bench.json has no {} section to cross-check".format(" or ".join(missing))] if missing else []
    absent += unchecked(bench)
    if absent:
        return result(rule, metric, "==", "agree", None, "device", INCONCLUSIVE, "; ".join(absent))
    return result(rule, metric, "==", "agree", "agree", "device", PASS)
