"""Which of a device's figures are shown as the released model's on that board: the one test the headline
(``metrics/headline.json`` ``devices.<profile>``, so MLflow and ``dvc metrics``) and the energy chart
(``plots/release/energy_map.*``) both ask, so they cannot show different figures.

A device's ``reports/device/<profile>/bench.json`` is a CI artifact, not a DVC dep. Its figures are
shown only when (:func:`device_left_out`) it measured the very file ``reports/release.json`` releases
to the profile, beside a ``gate.json`` on that file whose ``passed`` and ``verdict`` agree, that holds
no invalid rule, whose rules tying the figures to that file on that board pass
(:data:`~edgeproof.verdict.rules.FIGURE_TIES`), and that shows the run did not throttle
(``conditions.throttled`` false: a hot, down-clocked or loaded run's numbers say nothing about the
model, :mod:`edgeproof.device.conditions`). Of such a report, each figure is shown where it is possible,
and energy and memory only where the board's record says it measured them
(:func:`~edgeproof.verdict.energy.shown_measured`); never an estimate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

from edgeproof.io import read_json
from edgeproof.tracking.verdicts import verdict_problem
from edgeproof.verdict.energy import shown_measured
from edgeproof.verdict.flags import throttle_problem
from edgeproof.verdict.rules import FIGURE_TIES, INVALID, PASS, get_figure, invalid_reason

# The figures shown of a device, by their headline name: (bench.json key, the record that must say the
# board measured it, or None for the speed figures every run times).
DEVICE_FIGURES: Dict[str, Tuple[str, Optional[str]]] = {
    "fps": ("fps_e2e", None),
    "latency_p95_ms": ("latency_ms.p95", None),
    "energy_mj_per_frame": ("energy_mj_per_frame", "energy"),
    "peak_memory_mb": ("peak_memory_mb", "memory"),
}


class Shown(NamedTuple):
    """What may be shown of one device report."""

    figures: Dict[str, Any]
    """``{headline name: value}`` of each figure shown (as measured, unrounded)."""
    missing: Dict[str, str]
    """``{headline name: why}`` for each figure of :data:`DEVICE_FIGURES` not shown."""
    left_out: Optional[str]
    """Why none of the report's figures is shown (None: the report is shown)."""


def shown_device(profile: str, bench: Mapping[str, Any], gate: Path, release: Optional[Mapping[str, Any]]) -> Shown:
    """What the headline and the chart show of ``profile``'s device ``bench`` beside its verdict ``gate``
    (``<folder>/gate.json``), given ``reports/release.json`` (``release``, None when there is none)."""
    why = device_left_out(profile, bench, gate, release)
    if why is not None:
        return Shown({}, {name: why for name in DEVICE_FIGURES}, why)
    return Shown(*bench_figures(bench), None)


def bench_figures(bench: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """``({headline name: value}, {headline name: why not})`` over :data:`DEVICE_FIGURES` of a device
    report :func:`device_left_out` takes: each figure that is possible, energy and memory only where
    the board's record says it measured them."""
    figures, missing = {}, {}
    for name, (key, record) in DEVICE_FIGURES.items():
        value, problem = shown_measured(bench, key, record) if record else _speed_figure(bench, key)
        if problem is None:
            figures[name] = value
        else:
            missing[name] = problem
    return figures, missing


def _speed_figure(bench: Mapping[str, Any], key: str) -> Tuple[Any, Optional[str]]:
    value = get_figure(bench, key)
    if value is None:
        return None, "not measured (no {})".format(key)
    why = invalid_reason(key, value)
    return (None, "impossible ({})".format(why)) if why else (value, None)


def device_left_out(
    profile: str, bench: Mapping[str, Any], gate: Path, release: Optional[Mapping[str, Any]]
) -> Optional[str]:
    """Why none of a device's ``bench`` figures is shown (None: they are, figure by figure): not about
    the file released to ``profile``, or not vouched for by its ``gate`` (see the module docstring)."""
    chosen = ((release or {}).get("profiles") or {}).get(profile)
    sha = chosen.get("sha256") if isinstance(chosen, Mapping) else None
    if not sha:
        return "reports/release.json releases no file to the profile {}".format(profile)
    if bench.get("model_sha256") != sha:
        return "model_sha256 {}… is not the file released to {} ({}…)".format(
            str(bench.get("model_sha256"))[:12], profile, sha[:12]
        )
    try:
        verdict = read_json(gate)
    except (OSError, ValueError) as exc:
        return "no readable device verdict beside it ({}: {})".format(gate, exc)
    if not isinstance(verdict, Mapping):
        return "{}: expected a JSON object, found {}".format(gate, type(verdict).__name__)
    if verdict.get("model_sha256") != sha:
        return "{} judged model_sha256 {}…, not {}…".format(gate, str(verdict.get("model_sha256"))[:12], sha[:12])
    why = (
        verdict_problem(verdict) or _rules_against(verdict.get("rules")) or throttle_problem(verdict.get("conditions"))
    )
    return "{}: {}".format(gate, why) if why else None


def _rules_against(listed: Any) -> Optional[str]:
    """Why a device verdict's rules do not vouch for its bench figures: a rule invalid (an impossible or
    edited figure), or one of :data:`~edgeproof.verdict.rules.FIGURE_TIES` not passed (possible figures,
    but of another file, bundle, machine or settings); None when they do."""
    rules = [r for r in listed if isinstance(r, Mapping)] if isinstance(listed, list) else []
    invalid = [str(r.get("name")) for r in rules if r.get("status") == INVALID]
    if invalid:
        return "rules {} invalid".format(", ".join(invalid))
    untied = [
        "{} {}".format(r["name"], r.get("status"))
        for r in rules
        if r.get("name") in FIGURE_TIES and r.get("status") != PASS
    ]
    return "rules {}: not the released file's figures on this board".format(", ".join(untied)) if untied else None
