"""The build gate's ``results_consistent`` rule: the measured files against themselves and the release's
other variants.

One benchmark run writes ``bench.json``'s copies of its ``e2e`` run (``fps_e2e``, ``latency_ms``) and its
``device``; one evaluation writes ``eval.json``'s mAP figures and the per-class rows they are the mean of,
its box count ``n_gt``, the sum of theirs, and its image counts; a release's variants are all measured on one machine. A
figure that disagrees with them is an edited file (invalid, naming file and key); a figure a copy would
be checked against that is not there makes the rule inconclusive, never a pass. The release stage's run
that wrote the gated ``eval.json`` and ``bench.json`` also wrote ``reports/release.json``, whose record of
the gated variant copies their figures (:data:`RELEASE_COPIES`): a file edited after that run (and made
"clean" again with ``dvc commit``) disagrees with it. The bench.json checks are the device gate's own
(:mod:`edgeproof.verdict.consistency`); the per-class, peer-device and release-record checks are the build
gate's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from edgeproof.verdict.consistency import bench_problems, unchecked
from edgeproof.verdict.eval_size import contradictions, size_record
from edgeproof.verdict.rules import INCONCLUSIVE, INVALID, PASS, get_path, is_number, result

CONSISTENT = "results_consistent"
# pycocotools' mAP50 (mAP50-95, mAP75) is the mean, over the classes with boxes, of each class's AP50 (AP,
# AP75): the per-class rows give it back within their rounding to 6 decimals (1e-6); an edit is far above
PER_CLASS_TOLERANCE = 1e-5
_PER_CLASS = (("map50", "ap50"), ("map50_95", "ap"), ("map75", "ap75"))
# release.json's variant record key -> (the gated file, its key): the figures the release stage copies into
# the record unrounded (edgeproof.release.measure.records), so they must be equal
RELEASE_COPIES = {
    "map50": ("eval", "map50"),
    "map50_95": ("eval", "map50_95"),
    "fps_e2e": ("bench", "fps_e2e"),
    "latency_ms_p95": ("bench", "latency_ms.p95"),
}


class Released(NamedTuple):
    """``reports/release.json``'s record of the gated variant: the file, the variant and the record."""

    path: str
    variant: str
    record: Mapping[str, Any]

    def key(self, key: str) -> str:
        """How a message names one of the record's keys: ``reports/release.json variants.int8.map50``."""
        return f"{self.path} variants.{self.variant}.{key}"


def _per_class_problems(eval_metrics: Mapping[str, Any], source: str) -> list[str]:
    """Each mAP figure against the mean of its per-class rows (``per_class[].ap50`` ...), where they exist; a
    row's AP that is present must be one (a number in [0, 1]: no row is left out of the mean unsaid)."""
    rows = eval_metrics.get("per_class")
    if rows is not None and not isinstance(rows, list):  # missing: _per_class_unchecked's (nothing to check)
        return [f"{source} per_class {str(rows)[:80]} is not a list of class rows"]
    rows = rows or []
    out = [
        f"{source} per_class[{i}] {str(r)[:80]} is not a class's row"
        for i, r in enumerate(rows)
        if not isinstance(r, Mapping)
    ]
    for figure, key in _PER_CLASS if rows else ():
        value, aps = eval_metrics.get(figure), []
        for i, row in enumerate(rows):
            ap = row.get(key) if isinstance(row, Mapping) else None
            if ap is not None and (not is_number(ap) or not 0.0 <= ap <= 1.0):
                out.append(f"{source} per_class[{i}].{key} {repr(ap)[:80]} is not an AP (a number in [0, 1])")
            elif ap is not None:
                aps.append(ap)
        if aps and is_number(value) and abs(sum(aps) / len(aps) - value) > PER_CLASS_TOLERANCE:
            mean = sum(aps) / len(aps)
            out.append(f"{source} {figure} {value!r} differs from the mean of per_class[].{key} {mean:.6f}")
    return out


def _box_count_problems(eval_metrics: Mapping[str, Any], source: str) -> list[str]:
    """The evaluation's counts that contradict each other (:func:`~edgeproof.verdict.eval_size.contradictions`,
    the one check both gates make)."""
    return [f"{source} {clash}" for clash in contradictions(eval_metrics)]


def _per_class_unchecked(eval_metrics: Mapping[str, Any], source: str) -> list[str]:
    """Why the mAP figures went unchecked against their per-class rows (empty: they were checked).

    Every evaluation writes ``per_class`` (:func:`edgeproof.evaluation.coco.score_coco`; the release's
    variants' evaluations too, while the device's ``eval.json`` reports no mAP and is the device gate's), so
    an ``eval.json`` without it, or whose rows give no AP for a mAP figure it reports, left that figure
    unchecked: never a pass. Nor is a row of a class with ground-truth boxes without its APs: pycocotools
    gives every such class an AP (0 where nothing was detected), so the mean is not all there."""
    rows = eval_metrics.get("per_class")
    if rows is None:
        figures = ", ".join(figure for figure, _key in _PER_CLASS)
        return [f"{source} has no per_class: {figures} not checked against the class rows they are the mean of"]
    listed = rows if isinstance(rows, list) else []  # not a list: invalid (_per_class_problems)
    by_index = {i: row for i, row in enumerate(listed) if isinstance(row, Mapping)}
    missing = [
        f"per_class[{i}].{key}"
        for i, row in by_index.items()
        if is_number(row.get("n_gt")) and row["n_gt"] > 0
        for _figure, key in _PER_CLASS
        if row.get(key) is None
    ]
    out = [f"{source} has no {', '.join(missing)} (a class with boxes)"] if missing else []
    unmatched = [
        (figure, key)
        for figure, key in _PER_CLASS
        if is_number(eval_metrics.get(figure)) and all(row.get(key) is None for row in by_index.values())
    ]
    if unmatched:
        keys, figures = ", ".join(f"per_class[].{k}" for _f, k in unmatched), ", ".join(f for f, _k in unmatched)
        out.append(f"{source} has no {keys} to check {figures} against")
    return out


def _same(found: Any, recorded: Any) -> bool:
    """One JSON value copied unchanged (``True`` is no copy of ``1``, nor ``1.0`` of ``True``)."""
    return found == recorded and isinstance(found, bool) == isinstance(recorded, bool)


def _release_copies(
    eval_metrics: Mapping[str, Any], bench: Mapping[str, Any], sources: tuple[str, str], released: Released
) -> tuple[dict[str, list[str]], list[str]]:
    """The gated files against the release record's copies of their figures: ``({"eval" | "bench": problems},
    unchecked)``. A figure of :data:`RELEASE_COPIES` missing on either side is unchecked; the evaluation's
    counts (:func:`~edgeproof.verdict.eval_size.size_record`) and the best round (:func:`_best_round`) are
    compared where the record has them (a release.json written before they were copied has none)."""
    docs, names = {"eval": eval_metrics, "bench": bench}, dict(zip(("eval", "bench"), sources, strict=True))
    pairs = [(key, role, get_path(docs[role], path), path) for key, (role, path) in RELEASE_COPIES.items()]
    counts = size_record(eval_metrics)
    pairs += [(key, "eval", counts[key], key) for key in counts if released.record.get(key) is not None]
    best = _best_round(bench)
    if best is not None and released.record.get("fps_e2e_best_round") is not None:
        pairs.append(("fps_e2e_best_round", "bench", best, "max of rounds_fps_e2e"))
    problems: dict[str, list[str]] = {"eval": [], "bench": []}
    absent = []
    for key, role, found, path in pairs:
        recorded = released.record.get(key)
        if found is None:
            absent.append(f"{names[role]} has no {path}: not checked against {released.key(key)}")
        elif recorded is None:
            absent.append(f"{released.key(key)} is missing: {names[role]} {path} not checked against it")
        elif not _same(found, recorded):
            shown, copy = str(found)[:120], str(recorded)[:120]
            problems[role].append(f"{names[role]} {path} {shown} differs from {released.key(key)} {copy}")
    return problems, absent


def _best_round(bench: Mapping[str, Any]) -> Any:
    """The bench's best round as the release stage records it (``fps_e2e_best_round``: the max of
    ``rounds_fps_e2e``, :func:`edgeproof.release.measure.records`); None where its rounds are no FPS figures
    (``bench_problems`` names them) or the bench has none."""
    rounds = bench.get("rounds_fps_e2e")
    if isinstance(rounds, list) and rounds and all(is_number(r) for r in rounds):
        return max(rounds)
    return None


def _device_problems(bench: Mapping[str, Any], source: str, peers: Mapping[str, Any]) -> list[str]:
    """The bench's ``device`` against every other variant's measured on the same machine (``peers``)."""
    mine, out = bench.get("device"), []
    for other, peer in sorted(peers.items()):
        theirs = peer.get("device") if isinstance(peer, Mapping) else None
        if other == source or theirs == mine:
            continue
        if not (isinstance(mine, Mapping) and isinstance(theirs, Mapping)):
            out.append(f"{source} device {str(mine)[:80]} differs from {other} device {str(theirs)[:80]}")
            continue
        for key in sorted(k for k in {*mine, *theirs} if mine.get(k) != theirs.get(k)):
            found, other_value = str(mine.get(key))[:80], str(theirs.get(key))[:80]
            out.append(f"{source} device.{key} {found} differs from {other} device.{key} {other_value}")
    return out


def consistency_rule(
    eval_metrics: Mapping[str, Any],
    bench_metrics: Mapping[str, Any],
    sources: tuple[str, str],
    peers: Mapping,
    released: Released | None = None,
) -> dict[str, Any]:
    """``results_consistent``: the measured files against themselves and the release's other variants.

    One benchmark run writes ``fps_e2e`` (a copy of ``e2e.fps``, 1000 / ``e2e.mean``), ``latency_ms``
    (the ``e2e`` percentiles, in order) and ``device``; one evaluation writes ``map50`` and the per-class
    rows it is the mean of; the release's variants were all measured on one machine. A figure that
    disagrees with them is an edited file: invalid, naming file and key (the device gate's rule of the
    same name, :mod:`edgeproof.verdict.consistency`, refuses the same edits). ``peers``: the other
    variants' ``bench.json`` by path; ``released``: ``release.json``'s record of the gated variant, whose
    copies of the files' figures must be theirs (:func:`_release_copies`). A bench without the ``e2e`` run
    to cross-check, or without one of its figures that a copy is checked against
    (:func:`~edgeproof.verdict.consistency.unchecked`), is inconclusive, and so is an evaluation without its
    per-class rows, or whose row of a class with boxes has no AP (:func:`_per_class_unchecked`), and a
    figure the release record copies that either side lacks.
    """
    ev, bench = sources
    copied, uncopied = _release_copies(eval_metrics, bench_metrics, sources, released) if released else ({}, [])
    of_bench = _of(bench, bench_problems(dict(bench_metrics), over_images=True))
    of_eval = _per_class_problems(eval_metrics, ev) + _box_count_problems(eval_metrics, ev) + copied.get("eval", [])
    of_bench += _device_problems(bench_metrics, bench, peers) + copied.get("bench", [])
    problems = of_bench + of_eval
    metric, where = "fps_e2e, latency_ms, mAP and device vs the files' own figures", f"{ev}, {bench}"
    metric += f" and {released.path}'s copies" if released else ""
    if problems:  # the source: the files at fault (unheld_files withholds their figures from the headline)
        where = ", ".join(s for s, found in ((ev, of_eval), (bench, of_bench)) if found)
        return result(CONSISTENT, metric, "==", "agree", problems[0], where, INVALID, "; ".join(problems))
    absent = _of(bench, unchecked(dict(bench_metrics), over_images=True))
    if not isinstance(bench_metrics.get("e2e"), Mapping):
        absent = [f"{bench} has no e2e section to cross-check fps_e2e and latency_ms against"]
    absent += _per_class_unchecked(eval_metrics, ev) + uncopied
    if absent:  # nothing to check a copy against: never a pass
        return result(CONSISTENT, metric, "==", "agree", None, where, INCONCLUSIVE, "; ".join(absent))
    return result(CONSISTENT, metric, "==", "agree", "agree", where, PASS)


def _of(bench: str, found: list[str]) -> list[str]:
    """The consistency module's ``bench.json ...`` messages, naming the gated file's path ``bench`` instead."""
    return [bench + p[len("bench.json") :] for p in found]
