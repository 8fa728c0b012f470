"""The headline metrics: the one small file ``dvc exp show`` and ``dvc metrics diff`` compare.

``metrics/headline.json`` is the only file ``dvc.yaml`` declares as ``metrics``; every detailed
report (data, training, export, optimize, evaluation, benchmark, gate) is a plain ``cache: false``
output, still in git and readable with ``dvc metrics show <file>``. It holds only what decides a
release, under names that are stable (the PR comment and MLflow use the same ones):

==================  ==========================================================================
``mAP50-95``        pycocotools AP@[.5:.95] of the released variant
                    (``metrics/variants/<release_variant>/eval.json``; ``metrics/eval.json`` is the
                    fp32 reference, not read here)
``mAP50``           AP at IoU 0.5
``mAP75``           AP at IoU 0.75
``val_images``      the val images the mAP is over (``eval.json`` ``n_images``: the val size; how many
                    of them are background, and whether the data stage left some out, ``gate.md`` says)
``fps``             end-to-end frames per second, batch 1, of the released variant
                    (``metrics/variants/<release_variant>/bench.json`` ``fps_e2e``)
``latency_p95_ms``  end-to-end p95 latency in milliseconds
``gate_passed``     the release verdict (``reports/gate.json`` ``passed``)
``release_variant`` fp32 | fp16 | int8 | int8_trt: what ships (``reports/release.json``; without it the
                    gated model's variant, from its file name, null for a name that is no variant)
``model_mb``        size of the released variant's file, MB (10^6 bytes, two decimals)
``epochs``          training epochs run (``metrics/train.json``)
``measured_on``     the profile and machine that measured ``fps``/``latency_p95_ms`` (e.g. ``cpu-ci:
                    Intel Xeon Processor, 2 cores``): figures from another machine explain themselves
``devices``         per device profile, ``{profile: {fps, latency_p95_ms}}``, for each profile
                    with an on-device ``<device-reports>/<profile>/bench.json`` about the file
                    ``reports/release.json`` releases to that profile, beside a ``gate.json`` on that
                    file that holds no invalid rule, whose rules tying the figures to that file on
                    that board pass and that shows the run did not throttle; plus
                    ``energy_mj_per_frame`` (gross) and ``peak_memory_mb`` when the device measured
                    them (its ``energy``/``memory`` record says measurable, and the figure is
                    possible). One test decides, the energy chart's too
                    (:func:`edgeproof.verdict.shown.shown_device`); a report it leaves out is left out
                    with a warning naming the file and why
``withheld``        only when a figure above is null although its file holds one: ``{figure: why}``
==================  ==========================================================================

A figure the gate's rules hold impossible (``fps`` -5, ``mAP50`` 96.46: :func:`~edgeproof.verdict.rules.invalid_reason`)
is null, as a missing one is, and so is a possible one the gate contradicts: of a file that evaluated or
benchmarked another model, or that contradicts itself or the second scorer (:func:`~edgeproof.gate.unheld_files`;
``measured_on`` too with the speed figures). ``withheld`` says why (``impossible: ...``, ``gate rule
same_model_benchmarked: fail``); the headline never shows such a figure as the model's. A figure that
merely misses its threshold is the model's own, and shown.

Identities (sha256, byte sizes, host names) and timing details never go here: two runs of the
same commit differ only in the measured ``fps``/``latency_p95_ms``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeproof.gate import unheld_files
from edgeproof.io import read_json, size_mb, write_text
from edgeproof.profiles import VARIANTS
from edgeproof.verdict.boundary import rounded
from edgeproof.verdict.rules import OPS, invalid_reason, is_count
from edgeproof.verdict.shown import shown_device

log = logging.getLogger(__name__)

HEADLINE_KEYS = (
    "mAP50-95",
    "mAP50",
    "mAP75",
    "val_images",
    "fps",
    "latency_p95_ms",
    "gate_passed",
    "release_variant",
    "model_mb",
    "epochs",
    "measured_on",
)


def _figure(
    value: Any, digits: int, metric: str, gate_report: Mapping[str, Any] | None = None
) -> tuple[float | None, str | None]:
    """``(value rounded, None)``; ``(None, None)`` when it is missing, ``(None, why)`` when it is no possible
    ``metric`` (a BOUNDS key of the rule engine: not a finite number, negative, an mAP over 1...). Rounded to
    more digits where ``digits`` would put it on the wrong side of (or on) the threshold a rule of
    ``gate_report`` judged this very value against (fps 10.04 beside ``gate_passed`` true is not 10.0)."""
    if value is None:
        return None, None
    why = invalid_reason(metric, value)
    if why is not None:
        return None, f"impossible: {why}"
    return rounded(float(value), digits, _judged(gate_report or {}, metric, value)), None


def _judged(gate_report: Mapping[str, Any], metric: str, value: Any) -> list[tuple[str, Any]]:
    """``(op, threshold)`` of each order rule of the gate's over ``metric`` that judged ``value`` itself."""
    rules = gate_report.get("rules")
    return [
        (r["op"], r.get("threshold"))
        for r in (rules if isinstance(rules, list) else [])
        if isinstance(r, Mapping) and r.get("metric") == metric and r.get("measured") == value and r.get("op") in OPS
    ]


def measured_on(bench: Mapping[str, Any], release: Mapping[str, Any] | None) -> str | None:
    """``<build profile>: <CPU or Jetson model>, <n> cores`` from the bench report's device facts
    (a model name and a core count, never a host name: the same on every run of one machine)."""
    device = bench.get("device")
    if not isinstance(device, Mapping):
        return None
    jetson = device.get("jetson")
    name = jetson.get("model") if isinstance(jetson, Mapping) else device.get("cpu_model")
    name = re.sub(r"\((R|TM)\)|\bCPU\b|@.*", "", str(name or device.get("machine") or "unknown machine"))
    cores = device.get("cpu_cores")
    machine = " ".join(name.split()) + (f", {cores} cores" if isinstance(cores, int) else "")
    profile = (release or {}).get("build_profile")
    return f"{profile}: {machine}" if isinstance(profile, str) and profile else machine


def release_variant(release: Mapping[str, Any] | None, model: Path | None = None) -> str | None:
    """The variant ``reports/release.json`` releases at its build profile; without one, the gated model's
    (its file name: ``models/optimized/int8.onnx`` is int8), None for a name that is no variant."""
    variant = (release or {}).get("release_variant")
    if isinstance(variant, str) and variant:
        return variant
    return model.stem if model is not None and model.stem in VARIANTS else None


def headline_metrics(
    evaluation: Mapping[str, Any],
    bench: Mapping[str, Any],
    gate_report: Mapping[str, Any],
    train: Mapping[str, Any],
    model_path: Path,
    release: Mapping[str, Any] | None = None,
    devices: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The headline dict, in :data:`HEADLINE_KEYS` order, from the files the gate judged.

    ``devices`` maps a profile name to the figures shown of its on-device report (:func:`device_benches`:
    ``{fps, latency_p95_ms, energy_mj_per_frame, peak_memory_mb}``, each where shown); the key
    ``devices`` is present only when at least one profile has one.
    """
    epochs = train.get("epochs")
    figures, withheld = _measured_figures(evaluation, bench, gate_report)
    headline: dict[str, Any] = {
        **figures,
        "gate_passed": bool(gate_report.get("passed")),
        "release_variant": release_variant(release, Path(model_path)),
        "model_mb": size_mb(Path(model_path).stat().st_size, 2),
        "epochs": epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None,
        # the machine that measured the figures withheld as not this model's is not this model's either
        "measured_on": None if "bench" in unheld_files(gate_report) else measured_on(bench, release),
    }
    if devices:
        headline["devices"] = {name: _device(report) for name, report in sorted(devices.items())}
    if withheld:
        headline[WITHHELD] = withheld
    return headline


WITHHELD = "withheld"
"""Headline key: ``{figure: why}`` for each figure the measured file holds that the headline shows as null."""


def _measured_figures(
    evaluation: Mapping[str, Any], bench: Mapping[str, Any], gate_report: Mapping[str, Any]
) -> tuple[dict[str, float | None], dict[str, str]]:
    """The mAP and speed figures, and why each one the files hold is null: impossible, or of a file the
    gate does not hold as the gated model's (:func:`~edgeproof.gate.unheld_files`: evaluated or
    benchmarked another file, contradicting itself or the second scorer)."""
    latency = bench.get("latency_ms")
    p95 = latency.get("p95") if isinstance(latency, Mapping) else None
    read = {
        "mAP50-95": ("eval", evaluation.get("map50_95"), 6, "map50_95"),
        "mAP50": ("eval", evaluation.get("map50"), 6, "map50"),
        "mAP75": ("eval", evaluation.get("map75"), 6, "map75"),
        "val_images": ("eval", evaluation.get("n_images"), None, "n_images"),  # a count: digits None
        "fps": ("bench", bench.get("fps_e2e"), 1, "fps_e2e"),
        "latency_p95_ms": ("bench", p95, 2, "latency_ms.p95"),
    }
    unheld = unheld_files(gate_report)
    figures: dict[str, float | None] = {}
    withheld: dict[str, str] = {}
    for key, (role, value, digits, metric) in read.items():
        figures[key], why = _figure(value, digits, metric, gate_report) if digits is not None else _count(value, metric)
        if figures[key] is not None and role in unheld:
            figures[key], why = None, unheld[role]
        if why is not None:
            withheld[key] = why
    return figures, withheld


def _count(value: Any, key: str) -> tuple[int | None, str | None]:
    """``(value, None)`` for a count (a whole number >= 0), ``(None, None)`` when missing, else ``(None, why)``."""
    if value is None:
        return None, None
    if not is_count(value):
        return None, f"impossible: {key} {str(value)[:40]} is not a count"
    return value, None


# how many digits the headline keeps of each device figure (edgeproof.verdict.shown decides which are shown)
_DEVICE_DIGITS = {"fps": 1, "latency_p95_ms": 2, "energy_mj_per_frame": 3, "peak_memory_mb": 1}


def _device(figures: Mapping[str, Any]) -> dict[str, float | None]:
    """A shown device's figures, rounded: its speed always (null where not shown), its energy and memory
    only where it measured them (never estimated)."""
    shown = {name: round(float(figures[name]), digits) for name, digits in _DEVICE_DIGITS.items() if name in figures}
    return {"fps": None, "latency_p95_ms": None, **shown}


def device_benches(folder: Path | None, release: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The figures the headline shows of each on-device report ``<folder>/<profile>/bench.json``, by profile
    (none without ``folder``): :func:`~edgeproof.verdict.shown.shown_device`'s, the energy chart's test; a
    report it leaves out is left out with a warning saying why. A ``bench.json`` that is no JSON object
    raises :class:`ValueError` naming it (the stage's exit 2)."""
    if folder is None or not Path(folder).is_dir():
        return {}
    shown = {}
    for path in sorted(Path(folder).glob("*/bench.json")):
        bench = read_json(path)
        if not isinstance(bench, Mapping):
            raise ValueError(f"{path}: expected a JSON object, found {type(bench).__name__}")
        device = shown_device(path.parent.name, bench, path.parent / "gate.json", release)
        if device.left_out is not None:
            log.warning("headline: the device figures of %s are left out: %s", path, device.left_out)
            continue
        shown[path.parent.name] = device.figures
    return shown


def _object(data: Any) -> Mapping[str, Any]:
    return data if isinstance(data, Mapping) else {}


def headline_from_files(
    evaluation: Path,
    bench: Path,
    gate_report: Mapping[str, Any],
    train: Path,
    model: Path,
    release: Path | None = None,
    device_reports: Path | None = None,
) -> dict[str, Any]:
    """:func:`headline_metrics` from the files the gate stage is given (``release`` only if it exists)."""
    release_data = read_json(release) if release is not None and Path(release).is_file() else None
    return headline_metrics(
        _object(read_json(evaluation)),  # a file that is no object: the gate's rules say so, nulls here
        _object(read_json(bench)),
        gate_report,
        _object(read_json(train)),
        model,
        release=release_data,
        devices=device_benches(device_reports, release_data),
    )


def write_headline(path: Path, headline: Mapping[str, Any]) -> Path:
    """Atomically write ``headline`` keeping its key order (the column order of ``dvc exp show``)."""
    log.info("headline metrics: %s", ", ".join(f"{k}={v}" for k, v in headline.items() if k != "devices"))
    return write_text(path, json.dumps(headline, indent=2, allow_nan=False) + "\n")
