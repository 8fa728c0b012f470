"""``reports/perf.md``'s "Where the time goes": per variant, the model's time per operator type, a frame's steps
and what the caches cost them (the figures :mod:`edgeproof.perf.anatomy` measures)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeproof.markdown import fixed, table

TOP_OPS = 6  # operator types listed per variant; the rest are summed in one row


def _gb_per_s(r: Mapping[str, Any]) -> float | None:
    return round(r["mbytes"] / r["ms"], 1) if r.get("mbytes") and r.get("ms") else None  # MB per ms = GB/s


def _op_rows(model: Mapping[str, Any]) -> list[list[str]]:
    ops = list(model["ops"].items())
    rows = [
        [op, fixed(r["ms"], 3), f"{r['share'] * 100:.1f} %", str(r["nodes"]), fixed(r["mbytes"], 2), fixed(gbs, 1)]
        for op, r, gbs in ((op, r, _gb_per_s(r)) for op, r in ops[:TOP_OPS])
    ]
    rest = ops[TOP_OPS:]
    if rest:
        ms, share = sum(r["ms"] for _, r in rest), sum(r["share"] for _, r in rest)
        nodes = str(sum(r["nodes"] for _, r in rest))
        rows.append([f"{len(rest)} other types", fixed(ms, 3), f"{share * 100:.1f} %", nodes, "", ""])
    return rows


def _mib(nbytes: int | None) -> float | None:
    return nbytes / 2**20 if nbytes else None


def _roof_line(roof: Mapping[str, Any] | None) -> list[str]:
    if not roof:
        return []
    return [
        f"Memory roof (one core's numpy copy, bytes read plus written): {fixed(roof.get('l2_resident_gb_per_s'), 1)} "
        f"GB/s for arrays filling half the L2, {fixed(roof.get('main_memory_gb_per_s'), 1)} GB/s from main memory; "
        f"L2 {fixed(_mib(roof.get('l2_bytes')), 2)} MiB as core 0 sees it. An operator's GB/s far below these is "
        "limited by its kernel, not by memory.",
        "",
    ]


def _cold_line(f: Mapping[str, Any], file_mb: float | None, l2: int | None) -> list[str]:
    inside, apart = f.get("outside_model_ms"), f.get("outside_model_alone_ms")
    if inside is None or apart is None:
        return []
    cold = round(inside - apart, 3)
    share = (
        f"{fixed(cold, 3)} ms of it is what the frame's other steps, the model above all, cost them through the "
        f"caches (the model file is {fixed(file_mb, 2)} MB, the L2 {fixed(_mib(l2), 2)} MiB)"
        if cold > 0
        else "no cost of the caches shows"
    )
    head = f"Outside the model: {fixed(inside, 3)} ms in a frame, {fixed(apart, 3)} ms with each step alone; "
    evicted = _evicted_clause(f, cold)
    return [head + f"{share}." + (f"{evicted}." if evicted else ""), ""]


def _evicted_clause(f: Mapping[str, Any], cold: float) -> str:
    """What a cache-evicting read alone (no model) costs the same steps, against what the model costs them."""
    evicted, apart = f.get("outside_model_evicted_ms"), f.get("outside_model_alone_ms")
    if evicted is None or apart is None or cold <= 0:
        return ""
    read = f" Right after reading {f.get('evicted_mib')} MiB instead"
    if evicted <= apart:
        return f"{read} they take {fixed(evicted, 3)} ms: no cost shows"
    if cold < 0.05 * apart:  # a share of a difference this small would be a share of noise
        return f"{read} they take {fixed(evicted, 3)} ms"
    return (
        f"{read} of running the model they take {fixed(evicted, 3)} ms: evicting the caches alone costs them "
        f"{fixed(evicted - apart, 3)} ms, {(evicted - apart) / cold * 100:.0f} % of what the model costs them"
    )


def _frame_lines(f: Mapping[str, Any], file_mb: float | None, l2: int | None) -> list[str]:
    alone = f.get("alone_ms") or {}
    rows = [["in a frame (median ms)", *f["steps_ms"].values(), f["frame_ms"], f["outside_model_ms"]]]
    if alone:
        rows.append(["alone, warm caches", *(alone.get(s) for s in f["steps_ms"]), "", f.get("outside_model_alone_ms")])
    evicted = f.get("evicted_ms")
    if evicted:
        label = f"after a {f.get('evicted_mib')} MiB read, no model"
        rows.append([label, *(evicted.get(s, "") for s in f["steps_ms"]), "", f.get("outside_model_evicted_ms")])
    lines = [*table(["frame step", *f["steps_ms"], "whole frame", "outside the model"], rows, digits=3), ""]
    return lines + (_cold_line(f, file_mb, l2) if alone else [])


def anatomy_lines(doc: Mapping[str, Any]) -> list[str]:
    """ "Where the time goes": per variant, the model's time per operator type and a frame's steps."""
    anatomy = doc.get("anatomy") or {}
    if not anatomy:
        return []
    rate = doc["details"]["matmul_gflop_per_s"]["best"]
    roof = doc["details"].get("memory_roof")
    lines = ["", "## Where the time goes", "", *_roof_line(roof)]
    for name, a in anatomy.items():
        m = a["model"]
        conv = m.get("conv_gflop_per_s")
        lines += [
            f"**{name}**: model p50 {fixed(m['model_ms_p50'], 3)} ms (unprofiled, this call). Convolutions "
            f"{m['conv_share'] * 100:.1f} % of it, {fixed(conv, 1)} G(FL)OP/s = "
            f"{fixed(conv / rate if conv else None, 2)}x the floor's MatMul rate ({rate}); everything else "
            f"{(1 - m['conv_share']) * 100:.1f} %.",
            "",
            *table(["operator type", "ms per run", "share", "nodes", "MB moved", "GB/s"], _op_rows(m)),
            "",
            *_frame_lines(a["frame"], m.get("file_mb"), (roof or {}).get("l2_bytes")),
        ]
    lines.append(
        "Per type: ONNX Runtime's profiler over the same session settings, after the timed rounds; milliseconds are "
        "its shares of the unprofiled p50. MB moved: inputs, outputs and weights as the profiler reports them; "
        "GB/s: those bytes over those milliseconds (which keep the profiler's few microseconds per node, so a "
        "type of many small nodes runs somewhat faster than its figure). Frame steps: the detector's own methods "
        "over the same val images, medians; alone (where measured): each step repeated back to back over the same "
        "images, its inputs prepared beforehand."
    )
    return lines
