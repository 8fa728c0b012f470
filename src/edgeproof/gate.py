"""The release gate: explicit rules over the measured files, for exactly the artifact measured."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import Field

from edgeproof.verdict.report import rule_table
from edgeproof.schema import Section as _Section


class GateParams(_Section):
    """Release rules. A model ships only if every rule holds for the exact artifact measured."""

    min_fps: float = Field(10.0, ge=0.0)
    min_map50: float = Field(0.8, ge=0.0, le=1.0)
    min_map50_95: float | None = Field(None, ge=0.0, le=1.0)
    max_latency_p95_ms: float = Field(100.0, gt=0.0)


_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq}

# What each measurement can physically be: (low, high, low included). Anything else (``map50: 7``,
# ``p95: -3``, ``Infinity``, NaN, a bool or a string) is a corrupt or forged file and fails its rule.
_VALID = {
    "fps_e2e": (0.0, math.inf, False),
    "map50": (0.0, 1.0, True),
    "map50_95": (0.0, 1.0, True),
    "latency_ms.p95": (0.0, math.inf, False),
}


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome, as it appears in ``reports/gate.json`` and ``reports/gate.md``."""

    name: str
    metric: str
    op: str
    threshold: Any
    measured: Any
    passed: bool
    source: str
    invalid: str | None = None  # why the measured value cannot be a real measurement


def _invalid(metric: str, measured: Any) -> str | None:
    """Why ``measured`` is not a possible value of ``metric`` (None if it is)."""
    if measured is None:
        return "missing"
    if isinstance(measured, bool) or not isinstance(measured, int | float):
        return f"not a number ({type(measured).__name__})"
    if not math.isfinite(measured):
        return "not finite"
    low, high, low_ok = _VALID.get(metric, (-math.inf, math.inf, True))
    if measured < low or (measured == low and not low_ok) or measured > high:
        bounds = f"{'[' if low_ok else '('}{low:g}, {high:g}]"
        return f"outside the possible range {bounds}"
    return None


def _rule(name: str, metric: str, op: str, threshold: Any, measured: Any, source: str) -> RuleResult:
    # a missing, non-numeric or impossible measurement fails the rule: a release is never granted by default
    if op == "==":
        return RuleResult(name, metric, op, threshold, _json_safe(measured), measured == threshold, source)
    invalid = _invalid(metric, measured)
    ok = invalid is None and bool(_OPS[op](measured, threshold))
    return RuleResult(name, metric, op, threshold, _json_safe(measured), ok, source, invalid)


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as strings, so the report can always be written as strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def cross_check_problems(eval_metrics: Mapping[str, Any]) -> list[str]:
    """Why ``eval.json``'s mAP cross-check does not vouch for its mAP (empty: it does).

    The differences are recomputed from the recorded numbers rather than taken from the file: the
    pycocotools mAP50-95 must be the one reported, every comparison that ran must agree within its
    tolerance, and a comparison that did not run must say why (``skipped``).
    """
    cc = eval_metrics.get("cross_check")
    if not isinstance(cc, Mapping):
        return ["no cross_check in the evaluation"]
    problems = []
    if cc.get("passed") is not True:
        problems.append("the evaluation's own cross-check did not pass")
    reference = cc.get("pycocotools")
    if not _finite(reference) or reference != eval_metrics.get("map50_95"):
        problems.append(f"cross_check.pycocotools {reference!r} is not the reported map50_95")
        return problems
    tolerance, skipped = cc.get("tolerance"), cc.get("skipped")
    tolerance = tolerance if isinstance(tolerance, Mapping) else {}
    skipped = skipped if isinstance(skipped, Mapping) else {}
    for name in ("independent", "ultralytics"):
        value, tol = cc.get(name), tolerance.get(name)
        if value is None:
            if not (isinstance(skipped.get(name), str) and skipped[name]):
                problems.append(f"cross_check.{name} is missing and not skipped with a reason")
        elif not _finite(value) or not _finite(tol) or not 0 <= tol <= 1:
            problems.append(f"cross_check.{name} {value!r} (tolerance {tol!r}) is not a valid comparison")
        elif abs(value - reference) > tol + 1e-9:
            problems.append(f"{name} {value:.4f} vs pycocotools {reference:.4f} differs by more than {tol}")
    return problems


def _cross_check_rule(eval_metrics: Mapping[str, Any], source: str) -> RuleResult:
    problems = cross_check_problems(eval_metrics)
    cc = eval_metrics.get("cross_check")
    ran = [n for n in ("independent", "ultralytics") if isinstance(cc, Mapping) and cc.get(n) is not None]
    measured = "; ".join(problems) if problems else f"agrees ({', '.join(ran) or 'no second scorer ran'})"
    invalid = problems[0] if problems else None
    ok = not problems
    return RuleResult("cross_check", "cross_check", "agrees", "within tolerance", measured, ok, source, invalid)


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def check_gate(
    params: GateParams,
    eval_metrics: Mapping[str, Any],
    bench_metrics: Mapping[str, Any],
    model_sha256: str,
    sources: tuple[str, str] = ("metrics/eval.json", "metrics/bench.json"),
) -> dict[str, Any]:
    """Apply every rule; the verdict passes only if all pass.

    The identity rules tie the verdict to one file: the model being released must have the sha256
    that was evaluated and the one that was benchmarked. ``sources`` names the two files in the
    report.
    """
    ev, bench = sources
    for data, source in ((eval_metrics, ev), (bench_metrics, bench)):
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a JSON object of metrics, got {type(data).__name__}")
    rules = [
        _rule("fps", "fps_e2e", ">=", params.min_fps, _get(bench_metrics, "fps_e2e"), bench),
        _rule("map50", "map50", ">=", params.min_map50, _get(eval_metrics, "map50"), ev),
    ]
    if params.min_map50_95 is not None:
        rules.append(_rule("map50_95", "map50_95", ">=", params.min_map50_95, _get(eval_metrics, "map50_95"), ev))
    p95 = _get(bench_metrics, "latency_ms.p95")
    rules.append(_rule("latency_p95", "latency_ms.p95", "<=", params.max_latency_p95_ms, p95, bench))
    rules.append(_cross_check_rule(eval_metrics, ev))
    for what, data, source in (("evaluated", eval_metrics, ev), ("benchmarked", bench_metrics, bench)):
        rules.append(_rule(f"same_model_{what}", "model_sha256", "==", model_sha256, data.get("model_sha256"), source))
    failed = [r.name for r in rules if not r.passed]
    return {
        "passed": not failed,
        "failed": failed,
        "rules": [asdict(r) for r in rules],
        "model_sha256": model_sha256,
        "device": _json_safe(_get(bench_metrics, "device.cpu_model")),
        "providers": _json_safe(_get(bench_metrics, "device.providers_used")),
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and len(value) == 64:
        return f"`{value[:12]}…`"
    return "—" if value is None else f"{value}"


def render_markdown(report: Mapping[str, Any]) -> str:
    """The human-readable gate report: a verdict line and a rule table."""
    verdict = "PASSED ✅ — release" if report["passed"] else "FAILED ❌ — do not release"
    lines = [
        "# Release gate",
        "",
        f"**Verdict: {verdict}**",
        "",
        f"Model sha256: `{report['model_sha256']}`  ",
        f"Device: {report.get('device') or 'unknown'} ({', '.join(report.get('providers') or []) or 'n/a'})",
        "",
        *rule_table(report, _fmt),
    ]
    return "\n".join(lines) + "\n"
