"""Gate reports for humans (``gate.md``): the device gate's PR-comment section and the build gate's rule table."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from edgeproof.markdown import cell, inline, one_line, table
from edgeproof.verdict.boundary import cells
from edgeproof.verdict.energy import shown_measured
from edgeproof.verdict.eval_size import described, left_out
from edgeproof.verdict.flags import throttle_problem
from edgeproof.verdict.rules import PASS, SPEED_RULES
from edgeproof.verdict.timed_frames import described as frames_described

_VERDICT = {
    "pass": "PASSED ✅ — release",
    "fail": "FAILED ❌ — do not release",
    # some rules may have passed: what is wrong is that one could not be judged, never the model
    "inconclusive": "INCONCLUSIVE ⚠️ — not every rule could be judged; see why below, fix and rerun",
}
_MARK = {"pass": "pass", "fail": "**FAIL**", "invalid": "**INVALID**", "inconclusive": "inconclusive"}
# A figure of a run whose conditions do not show it did not throttle (flags.throttle_problem, the headline's
# test too): never shown as the model's, here as in the headline (which leaves the whole report out).
WITHHELD = "withheld (throttled)"


def verdict_line(verdict: str) -> str:
    """The bold verdict line of a report."""
    return "**Verdict: {}**".format(_VERDICT[verdict])


def rule_table(report: Mapping[str, Any], hot: Optional[str] = None) -> List[str]:
    """The rule table of a gate report (build side and device alike; an mAP rule's metric cell says what val set
    its figure is over, a timing rule's how many timed frames), then the rules that did not pass;
    ``hot``: why the run's conditions do not show it did not throttle (the device gate's), which marks the
    figure of each rule a throttled run leaves inconclusive (:data:`~edgeproof.verdict.rules.SPEED_RULES`)."""
    rows = []
    for r in report["rules"]:
        status = r.get("status") or ("pass" if r.get("passed") else "fail")
        mark = _MARK[status]  # the reason, in full, is listed under the table
        # more digits where 4 would misread: 100.004 and 100 both read "100" beside "<= 100"
        measured, threshold = cells(r["measured"], r["op"], r["threshold"])
        threshold = "{} {}".format(r["op"], threshold)
        if hot and r["name"] in SPEED_RULES and r["measured"] is not None:
            measured += " (throttled)"  # the verdict cannot rest on it: it was timed on a hot board
        metric = "`{}` ({})".format(cell(r["metric"]), cell(r["source"]))
        # what its figure comes from: an mAP rule's val set, a timing rule's timed frames
        size = described(r.get("over")) or frames_described(r.get("over"))
        metric += ", {}".format(cell(size)) if size else ""
        note = left_out(r.get("over"))  # our own words and a count: not cut to a cell's length
        metric += "; {}".format(note) if note else ""
        rows.append([cell(r["name"]), metric, threshold, measured, mark])
    lines = table(["rule", "metric", "threshold", "measured", "result"], rows)
    if report["failed"]:
        lines += ["", "Rules not passed: {}".format(", ".join(report["failed"]))]
        lines += [
            "- {} ({}): {}".format(r["name"], r.get("status"), one_line(r["reason"]))
            for r in report["rules"]
            if r.get("reason") and not r.get("passed")
        ]
    return lines


def _figures(m: Mapping[str, Any], hot: Optional[str]) -> List[str]:
    """FPS next to energy and memory: the comment's one-line summary of what was measured. An energy or
    memory figure is shown only where the board's record says it measured it and it is possible
    and the energy rules could judge it (:func:`~edgeproof.verdict.energy.shown_measured`); otherwise the
    cell says why. Of a run that throttled (``hot`` says why), the figures the headline would show are
    withheld and the line under the table says why; the detections' mAP is not timed and stays."""
    row = [
        _timed(m.get("fps_e2e"), hot),
        _timed(m.get("latency_ms_p95"), hot),
        m.get("map50_95"),
        _shown(m, "energy_mj_per_frame", "energy", hot),
        _shown(m, "power_w_mean", "energy", hot),
        _shown(m, "peak_memory_mb", "memory", hot),
    ]
    header = ["FPS (e2e)", "p95 ms", "mAP50-95", "mJ/frame", "W mean", "peak MB"]
    lines = ["", *table(header, [row])]
    if WITHHELD in row:  # a run whose results never arrived measured nothing to withhold
        lines += ["", "Figures withheld: {}; `gate.json` keeps them under `measured`.".format(one_line(hot))]
    return lines


def _timed(value: Any, hot: Optional[str]) -> Any:
    """A figure as the table shows it: :data:`WITHHELD` where the run throttled (and measured it)."""
    return WITHHELD if hot and value is not None else value


def _shown(m: Mapping[str, Any], key: str, record: str, hot: Optional[str]) -> Any:
    value, why = shown_measured(m, key, record)
    return _timed(value, hot) if why is None else cell(why)


def _sweep(m: Mapping[str, Any], hot: Optional[str]) -> List[str]:
    rows = m.get("batch_sweep") or []
    if not isinstance(rows, list) or not rows:
        return []
    if hot:  # timed in the same run as the gated figures
        return ["", "Batch sweep: {}.".format(WITHHELD)]
    body = [[r.get("batch"), r.get("images_per_s"), r.get("latency_model_ms_p50")] for r in rows if isinstance(r, dict)]
    return ["", *table(["batch", "images/s", "latency p50 (ms)"], body)]


def _proposed(report: Mapping[str, Any]) -> List[str]:
    from edgeproof.verdict.proposal import describe

    changes = report.get("proposed_changes") or []
    if not changes:
        return []
    return ["", "Rule changes proposed by this pull request (judged with the base branch's rules):"] + [
        "- {}".format(describe(c)) for c in changes
    ]


def _jetson(report: Mapping[str, Any]) -> str:
    jetson = (report.get("conditions") or {}).get("jetson") or {}
    mode = (jetson.get("power_mode") or {}).get("mode") if isinstance(jetson.get("power_mode"), dict) else None
    return "Jetson: {}, L4T {}, power mode {}  ".format(cell(jetson.get("model")), cell(jetson.get("l4t")), cell(mode))


def candidate_lines(candidates: Optional[List[Dict[str, Any]]], hot: Optional[str] = None) -> List[str]:
    """The gate report's section: each candidate's figures and verdict (never the profile's verdict); of a
    run that throttled (``hot`` says why: the board measures the candidates in the same run), their
    timed figures are :data:`WITHHELD`."""
    if not candidates:
        return []
    rows = []
    for c in candidates:
        failed = [r["name"] for r in c.get("rules") or [] if r["status"] != PASS]
        why = c.get("advice") or c.get("next_step") or c.get("reason") or (", ".join(failed) if failed else "")
        rows.append(
            [
                c.get("variant"),
                _timed(c.get("fps_e2e"), hot),
                _timed(c.get("speedup"), hot),
                _timed(c.get("latency_ms_p95"), hot),
                c.get("map50_95"),
                c.get("verdict"),
                cell(why or None),
            ]
        )
    header = ["candidate", "FPS", "x released", "p95 ms", "mAP50-95", "would be", "why / next step"]
    return ["", "Also measured on this board, not gated (profile `candidates`):", "", *table(header, rows)]


def render_markdown(report: Dict[str, Any]) -> str:
    """A verdict line, the identity of the model and device, measured figures, the rules, notes and conditions."""
    m, c = report["measured"], report["conditions"]
    hot = throttle_problem(c)  # the headline's test: a figure it withholds is not shown here either
    nodes = report.get("node_placement") or {}
    placement = ", ".join("{} {}".format(p, n) for p, n in sorted(nodes.items())) if isinstance(nodes, dict) else ""
    lines = [
        "# Device gate: `{}`".format(report["profile"]),
        "",
        verdict_line(report["verdict"]),
        "",
        "Model: {} ({}), sha256 {}  ".format(
            inline(report.get("model_path")), inline(report.get("variant")), inline(report.get("model_sha256"))
        ),
        "Device: {} ({})  ".format(cell(report.get("device")), cell(report.get("providers"))),
        _jetson(report),
        "Nodes run per provider (ORT profiler): {}  ".format(placement or "—"),
        "Session + engine build, first inference (not in the timings): {} s".format(cell(m.get("engine_build_s"))),
        *_figures(m, hot),
        "",
        *rule_table(report, hot),
    ]
    lines += ["", *("Note: {}".format(one_line(n)) for n in report.get("notes") or [])] if report.get("notes") else []
    lines += _proposed(report)
    if c.get("throttled"):
        lines += ["", "Throttling during the run:"] + ["- {}".format(one_line(why)) for why in c.get("reasons", [])]
    temps = c.get("max_temp_c") or {}
    if isinstance(temps, dict) and temps:
        hottest = max(temps.items(), key=lambda kv: kv[1] if isinstance(kv[1], (int, float)) else float("-inf"))
        lines += ["", "Hottest reading during the run: {} {} C".format(hottest[0], cell(hottest[1], 3))]
    return "\n".join(lines + _sweep(m, hot) + candidate_lines(report.get("candidates"), hot)) + "\n"
