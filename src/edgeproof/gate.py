"""The release gate: explicit rules over the measured files, for exactly the artifact measured."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import Field

from edgeproof.schema import Section as _Section


class GateParams(_Section):
    """Release rules. A model ships only if every rule holds for the exact artifact measured."""

    min_fps: float = Field(10.0, ge=0.0)
    min_map50: float = Field(0.8, ge=0.0, le=1.0)
    min_map50_95: float | None = Field(None, ge=0.0, le=1.0)
    max_latency_p95_ms: float = Field(100.0, gt=0.0)


_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq}


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


def _rule(name: str, metric: str, op: str, threshold: Any, measured: Any, source: str) -> RuleResult:
    # a missing or non-numeric measurement fails the rule: a release is never granted by default
    if op == "==":
        ok = measured == threshold
    else:
        numeric = isinstance(measured, int | float) and not isinstance(measured, bool)
        ok = numeric and measured == measured and bool(_OPS[op](measured, threshold))
    return RuleResult(name, metric, op, threshold, measured, ok, source)


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
    for what, data, source in (("evaluated", eval_metrics, ev), ("benchmarked", bench_metrics, bench)):
        rules.append(_rule(f"same_model_{what}", "model_sha256", "==", model_sha256, data.get("model_sha256"), source))
    failed = [r.name for r in rules if not r.passed]
    return {
        "passed": not failed,
        "failed": failed,
        "rules": [asdict(r) for r in rules],
        "model_sha256": model_sha256,
        "device": _get(bench_metrics, "device.cpu_model"),
        "providers": _get(bench_metrics, "device.providers_used"),
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
        "| rule | metric | threshold | measured | result |",
        "|---|---|---|---|---|",
    ]
    for r in report["rules"]:
        mark = "pass" if r["passed"] else "**FAIL**"
        lines.append(
            f"| {r['name']} | `{r['metric']}` ({r['source']}) | {r['op']} {_fmt(r['threshold'])} "
            f"| {_fmt(r['measured'])} | {mark} |"
        )
    if report["failed"]:
        lines += ["", f"Failing rules: {', '.join(report['failed'])}"]
    return "\n".join(lines) + "\n"
