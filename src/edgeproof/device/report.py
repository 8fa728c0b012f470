"""The device gate's human-readable report (``gate.md``): what the pull-request comment shows."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping

_VERDICT = {
    "pass": "PASSED ✅ — release",
    "fail": "FAILED ❌ — do not release",
    "inconclusive": "INCONCLUSIVE ⚠️ — the device throttled; rerun on a cool board at full clocks",
}


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and len(value) == 64:
        return f"`{value[:12]}…`"
    if isinstance(value, str) and len(value) > 80:
        return value[:77].replace("\n", " ").replace("|", "/") + "…"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return "—" if value is None else str(value).replace("|", "/").replace("\n", " ")


def _placement(nodes: Any) -> str:
    return ", ".join(f"{p} {n}" for p, n in sorted(nodes.items())) if nodes else "—"


def _sweep(report: Dict[str, Any]) -> List[str]:
    rows = report["measured"].get("batch_sweep") or []
    if not rows:
        return []
    lines = ["", "| batch | images/s | latency p50 (ms) |", "|---|---|---|"]
    lines += [f"| {r['batch']} | {_fmt(r['images_per_s'])} | {_fmt(r['latency_model_ms_p50'])} |" for r in rows]
    return lines


def rule_table(report: Mapping[str, Any], fmt: Callable[[Any], str]) -> List[str]:
    """The rule table of a gate report (build side and device alike) and the failing rules' line."""
    lines = ["| rule | metric | threshold | measured | result |", "|---|---|---|---|---|"]
    for r in report["rules"]:
        mark = "pass" if r["passed"] else "**FAIL**"
        if r.get("invalid") and r["name"] != "cross_check":
            mark += f" ({r['invalid']})"
        lines.append(
            f"| {r['name']} | `{r['metric']}` ({r['source']}) | {r['op']} {fmt(r['threshold'])} "
            f"| {fmt(r['measured'])} | {mark} |"
        )
    if report["failed"]:
        lines += ["", f"Failing rules: {', '.join(report['failed'])}"]
    return lines


def render_markdown(report: Dict[str, Any]) -> str:
    """A verdict line, the identity of the model and device, the rule table, conditions and the sweep."""
    m, c = report["measured"], report["conditions"]
    jetson = c.get("jetson") or {}
    lines = [
        f"# Device gate: `{report['profile']}`",
        "",
        f"**Verdict: {_VERDICT[report['verdict']]}**",
        "",
        f"Model: `{report.get('model_path')}` ({report.get('variant')}), sha256 `{report.get('model_sha256')}`  ",
        f"Device: {report.get('device') or 'unknown'} ({_fmt(report.get('providers')) or 'n/a'})  ",
        f"Jetson: {jetson.get('model') or '—'}, L4T {jetson.get('l4t') or '—'}, "
        f"power mode {(jetson.get('power_mode') or {}).get('mode') or '—'}  ",
        f"Nodes run per provider (ORT profiler): {_placement(report.get('node_placement'))}  ",
        f"Session + engine build, first inference (not in the timings): {_fmt(m.get('engine_build_s'))} s",
        "",
        *rule_table(report, _fmt),
    ]
    if c.get("throttled"):
        lines += ["", "Throttling during the run:"] + [f"- {why}" for why in c.get("reasons", [])]
    temps = c.get("max_temp_c") or {}
    if temps:
        hottest = max(temps.items(), key=lambda kv: kv[1])
        lines += ["", f"Hottest reading during the run: {hottest[0]} {hottest[1]:.1f} C"]
    return "\n".join(lines + _sweep(report)) + "\n"
