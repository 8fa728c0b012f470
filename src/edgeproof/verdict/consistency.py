"""Does the device's bench.json agree with itself, the bundle and the board's other files?

The sha256 says which file was measured; the rest of ``bench.json`` must describe that same run:
the input size of the bundle's ``deploy.json``, the variant and path of the manifest's entry, one FPS
figure (``fps_e2e`` is the end-to-end run's ``e2e.fps``; over image files that is 1000 / mean latency),
as many timed calls as the recorded settings ask, percentiles in order, a ``throttled`` flag that is a
boolean, and a ``measure.json`` that says what the results say. The board writes all of these from one
run (:mod:`edgeproof.device.results`), so a disagreement is an edited file: the rule
``results_consistent`` is invalid, naming each key with both values. A section that is not there to
cross-check leaves the rule inconclusive, never a pass.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from edgeproof.verdict.rules import INCONCLUSIVE, INVALID, PASS, get_path, is_number, result

# fps_e2e is e2e.fps copied; 1000 / e2e.mean differs from e2e.fps only by the mean's rounding to 4 decimals
# (at most 0.5 % at the 0.01 ms latency floor)
FPS_COPY_TOLERANCE = 1e-6
FPS_FROM_MEAN_TOLERANCE = 0.01
PERCENTILES = ("min", "p50", "p90", "p95", "p99", "max")


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
    if not (is_number(fps) and is_number(copy)):
        return []  # the fps rule judges a figure that is no number
    out = []
    if not math.isclose(fps, copy, rel_tol=FPS_COPY_TOLERANCE, abs_tol=1e-3):
        out.append("bench.json fps_e2e {!r} differs from e2e.fps {!r}".format(fps, copy))
    over_images = e2e.get("source") == "images" and is_number(mean) and mean > 0
    if over_images and not math.isclose(copy, 1000.0 / mean, rel_tol=FPS_FROM_MEAN_TOLERANCE):
        out.append("bench.json e2e.fps {!r} differs from 1000 / e2e.mean {!r}".format(copy, mean))
    return out


def _counts(bench: Dict[str, Any], e2e: Dict[str, Any], model: Dict[str, Any]) -> List[Optional[str]]:
    settings = bench.get("settings") if isinstance(bench.get("settings"), dict) else {}
    return [
        _differs("bench.json e2e.samples", e2e.get("samples"), "settings.e2e_images", settings.get("e2e_images")),
        _differs("bench.json e2e.images", e2e.get("images"), "settings.e2e_images", settings.get("e2e_images")),
        _differs("bench.json model.samples", model.get("samples"), "settings.runs", settings.get("runs")),
        _differs("bench.json model.batch", model.get("batch"), "settings.batch", settings.get("batch")),
    ]


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


def _sections(bench: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any], List[str]]:
    e2e, model = bench.get("e2e"), bench.get("model")
    missing = [k for k, v in (("e2e", e2e), ("model", model)) if not isinstance(v, dict)]
    return (e2e if isinstance(e2e, dict) else {}), (model if isinstance(model, dict) else {}), missing


def consistency_rule(name: str, bench: Dict[str, Any], got: Dict[str, Any]) -> Dict[str, Any]:
    """The rule ``results_consistent`` over one measurement's files (see the module docstring)."""
    rule, metric = "results_consistent", "bench.json vs deploy.json, manifest, settings, measure.json"
    e2e, model, missing = _sections(bench)
    found = _identity(bench, got) + _fps(bench, e2e) + _ordered(bench) + _board_files(name, bench, got)
    if not missing:
        found += _counts(bench, e2e, model)
    problems = [p for p in found if p]
    if problems:
        return result(rule, metric, "==", "agree", problems[0], "device", INVALID, "; ".join(problems))
    if missing:
        why = "bench.json has no {} section to cross-check".format(" or ".join(missing))
        return result(rule, metric, "==", "agree", None, "device", INCONCLUSIVE, why)
    return result(rule, metric, "==", "agree", "agree", "device", PASS)
