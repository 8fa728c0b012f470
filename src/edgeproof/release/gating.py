"""The gate stage's work: judge exactly the release candidate, write the verdict and the headline, draw
the energy chart, say which rules failed, and record the run in MLflow.

``stages/gate.py`` parses its arguments into :class:`GateRun` and calls :func:`run_gate`. The release
candidate is the build profile's variant in ``reports/release.json``; its file must have the sha256 the
release choice recorded. The thresholds are ``profiles.<release.build_profile>.gate``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeproof.evaluation.run import rescore_onnx
from edgeproof.gate import build_thresholds, check_gate, render_markdown
from edgeproof.gate_consistency import Released
from edgeproof.gate_rescore import Rescored
from edgeproof.headline import headline_from_files, write_headline
from edgeproof.io import read_json, sha256_file, write_json, write_text
from edgeproof.markdown import cell, table
from edgeproof.paths import state_dir
from edgeproof.release.eligible import release_choice_rule
from edgeproof.release.energy_plot import draw as draw_energy_plot
from edgeproof.release.rescore import rescore
from edgeproof.stage_clock import STAGE_TIMES
from edgeproof.tracking.pipeline import record_pipeline_run
from edgeproof.tracking.record import RecordSources
from edgeproof.tracking.verdicts import HAND_RUN
from edgeproof.val_identity import val_identity_rule
from edgeproof.verdict.rules import EXIT, is_count

log = logging.getLogger("edgeproof.stage")


@dataclass(frozen=True)
class GateRun:
    """The gate stage's inputs and outputs (paths as ``dvc.yaml`` passes them)."""

    params: Path
    report_json: Path
    report_md: Path
    headline: Path
    train_metrics: Path
    release: Path | None = None
    model: Path | None = None
    eval: Path | None = None
    bench: Path | None = None
    device_reports: Path | None = None
    data_metrics: Path | None = None  # metrics/data.json: how val was selected (background images left out)
    data: Path | None = None  # data/prepared: the gate scores the gated file on its val split itself
    reference_eval: Path | None = None  # metrics/eval.json: fp32's mAP, the release choice's budget is against
    reference_model: Path | None = None  # models/optimized/fp32.onnx: the reference the gate scores itself
    parity: Path | None = None  # metrics/parity.json: the release choice's parity (release_choice)
    optimize: Path | None = None  # metrics/optimize.json: the sha256 of each variant file (release_choice)
    energy_plot: tuple[Path, Path] | None = None
    track_metrics: list[Path] = field(default_factory=list)
    track_curve: Path | None = None
    track_plots: list[Path] = field(default_factory=list)
    track_shipped_plots: list[Path] = field(default_factory=list)


def _record(args: GateRun, params_path: Path) -> RecordSources:
    # eval.*/bench.* are the gated file's own files, as every run logged them; a tracked file of those names
    # (metrics/eval.json, metrics/bench.json: the fp32 reference) goes apart as reference.eval.*/.bench.*
    gated = {"eval": args.eval, "bench": args.bench, "gate": args.report_json, "headline": args.headline}
    metrics = {p.stem: p for p in args.track_metrics if p.stem not in gated}
    return RecordSources(
        reference_metrics={p.stem: p for p in args.track_metrics if p.stem in ("eval", "bench")},
        params=params_path,
        metrics={**metrics, **gated},
        reports=[args.report_md],
        curves=args.track_curve,
        plots=list(args.track_plots),
        shipped_plots=list(args.track_shipped_plots),
        model=args.model,
        dvc_lock=Path("dvc.lock"),
        stage="gate",  # this stage's dvc.lock entry is still the previous run's
        summary=args.report_md,
        release=args.release,
        device_reports=args.device_reports,
        stage_times=state_dir() / STAGE_TIMES,
        not_chosen=None if args.release is not None else HAND_RUN,
    )


def release_candidate(args: GateRun, build_profile: str) -> GateRun:
    """``args`` with ``model/eval/bench`` pointing at the build profile's release variant in ``release.json``.

    The release record must be params' ``release.build_profile``'s and agree with itself about the file
    released (:func:`_disagreements`), and that file must have the sha256 it records: else a ValueError (the
    stage's exit 2), never a verdict on another file or another profile's choice.
    """
    release = read_json(args.release)
    try:
        chosen = release["profiles"][release["build_profile"]]
        measured = release["variants"][chosen["variant"]]
        model, ev, bench = Path(chosen["path"]), Path(measured["eval_json"]), Path(measured["bench_json"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{args.release}: no measured release variant for the build profile ({exc!r})") from None
    disagree = _disagreements(release, chosen, measured, build_profile)
    if disagree:
        raise ValueError(f"{args.release}: {'; '.join(disagree)}: not the release of one measured file")
    for path, what in ((model, "file"), (ev, "eval_json"), (bench, "bench_json")):
        if not path.is_file():  # "" is the working directory: a crash, not the stage's refusal
            raise FileNotFoundError(f"{path}: the release variant's {what}, named in {args.release}, is no file")
    if sha256_file(model) != chosen.get("sha256"):
        raise ValueError(f"{model}: sha256 differs from the release choice in {args.release}")
    log.info("gating the %s release variant %s", release["build_profile"], model)
    return replace(args, model=model, eval=ev, bench=bench)


def _disagreements(
    release: dict[str, Any], chosen: dict[str, Any], measured: dict[str, Any], build_profile: str
) -> list[str]:
    """Where ``release.json`` contradicts itself or params about the released file: its ``build_profile`` is
    params' ``release.build_profile``, its ``release_variant`` the profile's ``variant``, and that variant's
    record (what the release stage measured: ``evaluated`` true) names the profile's ``path`` and ``sha256``."""
    name, variant = release.get("build_profile"), chosen.get("variant")
    out = [] if name == build_profile else [f"build_profile {name!r} is not params' release.build_profile"]
    if release.get("release_variant") != variant:
        out.append(f"release_variant {release.get('release_variant')!r} is not profiles.{name}.variant {variant!r}")
    for key in ("path", "sha256"):
        if measured.get(key) != chosen.get(key):
            out.append(
                f"variants.{variant}.{key} {measured.get(key)!r} is not profiles.{name}.{key} {chosen.get(key)!r}"
            )
    if measured.get("evaluated") is not True:
        out.append(f"variants.{variant}.evaluated is {measured.get('evaluated')!r}, not true: not measured")
    return out


def released_record(release_path: Path) -> Released:
    """``release.json``'s record of the variant it releases (:func:`release_candidate` checked it is there):
    the same release-stage run wrote the gated files, so its copies of their figures must be theirs."""
    release = read_json(release_path)
    variant = release["release_variant"]
    return Released(release_path.as_posix(), variant, release["variants"][variant])


def variant_benches(release_path: Path) -> dict[str, Any]:
    """Every measured variant's ``bench.json`` that ``release.json`` names, by path: the release's variants
    were measured on one machine, so the gated one's ``device`` must be theirs (:func:`check_gate`)."""
    variants = read_json(release_path).get("variants") or {}
    measured = {
        name: v
        for name, v in variants.items()
        if isinstance(v, dict) and (v.get("evaluated") is True or v.get("bench_json") is not None)
    }
    unnamed = sorted(
        name for name, v in measured.items() if not (isinstance(v.get("bench_json"), str) and v["bench_json"])
    )
    if unnamed:  # left out, it would leave that variant's machine unchecked, unsaid
        raise ValueError(f"{release_path}: measured variants {unnamed} name no bench_json to check the machine by")
    return {path: read_json(Path(path)) for path in sorted({v["bench_json"] for v in measured.values()})}


VARIANT_COLUMNS = (
    "variant",
    "mAP50-95",
    "mAP drop",
    "FPS end to end",
    "FPS, a frame per core (one run)",
    "p95 ms",
    "peak memory MB",
    "of which the model MB",
    "parity matched",
    "",
)


def variants_section(release: dict[str, Any]) -> list[str]:
    """Every variant measured on this machine (``release.json``), so the report shows what the choice weighed:
    speed, accuracy and memory (each model in a process of its own, so their memory compares)."""
    chosen = release["profiles"][release["build_profile"]]["variant"]
    rows = []
    for name, v in release["variants"].items():
        note = "released" if name == chosen else ("" if v.get("evaluated") else f"not measured: {v.get('reason')}")
        figures = (
            "map50_95",
            "map_drop",
            "fps_e2e",
            "fps_e2e_parallel",
            "latency_ms_p95",
            "peak_memory_mb",
            "model_memory_mb",
        )
        rows.append([name, *(v.get(k) for k in figures), v.get("parity_matched_share"), cell(note or None)])
    return ["", f"## Variants measured on {release['build_profile']} (this machine)", "", *table(VARIANT_COLUMNS, rows)]


def val_negatives_dropped(data_metrics: Path | None) -> int | None:
    """How many background images the data stage left out of val (``val_keep_negatives: false``), from
    ``metrics/data.json``'s ``selection.val_negatives_dropped``; None without the file or the count (a
    source that selects nothing, a data.json older than the count)."""
    if data_metrics is None:
        return None
    report = read_json(data_metrics)
    if not isinstance(report, dict):
        raise ValueError(f"{data_metrics}: expected a JSON object, found {type(report).__name__}")
    selection = report.get("selection")
    dropped = selection.get("val_negatives_dropped") if isinstance(selection, dict) else None
    if dropped is not None and not is_count(dropped):
        raise ValueError(f"{data_metrics}: selection.val_negatives_dropped {dropped!r} is not a count")
    return dropped


def _rescored(args: GateRun, params: Any) -> Rescored | None:
    """The gate's own scoring of the gated file on ``args.data``'s val (None without the data: a hand run's
    or a library caller's choice; the stage requires it with ``--release``)."""
    if args.data is None or args.model is None or args.bench is None:
        return None
    return rescore(args.model, args.data, params.evaluate, params.deploy, read_json(args.bench))


def _val_identity(args: GateRun) -> list[dict[str, Any]]:
    """The ``val_identity`` rule: ``args.data``'s val as ``args.data_metrics`` records it (none without the
    data: nothing is scored on it)."""
    if args.data is None or args.eval is None:
        return []
    return [val_identity_rule(read_json(args.eval), args.eval.as_posix(), args.data, args.data_metrics)]


def _reference_scored(args: GateRun, params: Any) -> float | None:
    """The gate's own mAP50-95 of the fp32 reference file (``--reference-model``, which the stage requires with
    ``--release``; a library caller without it or the val data gets None: the reference file's figure alone)."""
    if args.reference_model is None or args.data is None:
        return None
    return rescore_onnx(args.reference_model, args.data, params.evaluate, params.deploy)["map50_95"]


def _release_choice(args: GateRun, params: Any, eval_metrics: Any, rescored: Rescored | None) -> list[dict[str, Any]]:
    """The ``release_choice`` rule (:mod:`edgeproof.release.eligible`) of a ``--release`` run given the fp32
    reference, ``parity.json`` and ``optimize.json`` (the stage requires them; a library caller without the
    first two gets none, without ``optimize.json`` no file identity check)."""
    name = params.release.build_profile
    if args.release is None or args.reference_eval is None or args.parity is None or name not in params.profiles:
        return []
    variant = read_json(args.release)["release_variant"]
    files = (args.reference_eval, args.parity, args.optimize)
    ev = eval_metrics if isinstance(eval_metrics, dict) else {}
    reference = _reference_scored(args, params) if variant != "fp32" else None  # fp32: its own reference
    ref_sha = sha256_file(args.reference_model) if args.reference_model is not None else None
    shas = (ref_sha, sha256_file(args.model) if args.model is not None else None)
    held = (reference, params.optimize.parity, shas)
    return [release_choice_rule(variant, params.profiles[name], name, files, ev, rescored, held)]


def run_gate(args: GateRun, params: Any) -> int:
    """Judge, report, record; the exit code (0 pass, 1 fail, 3 inconclusive). ``params``: the loaded params."""
    if args.release is not None:
        args = release_candidate(args, params.release.build_profile)
    elif None in (args.model, args.eval, args.bench):
        raise ValueError("give --release, or all of --model, --eval and --bench")
    eval_metrics, rescored = read_json(args.eval), _rescored(args, params)
    report = check_gate(
        build_thresholds(params.profiles, params.release.build_profile),
        eval_metrics,
        read_json(args.bench),
        sha256_file(args.model),
        sources=(args.eval.as_posix(), args.bench.as_posix()),
        cross_check=params.evaluate.cross_check,  # the tolerances of params, never the measured file's
        peers=variant_benches(args.release) if args.release is not None else None,
        profile=params.release.build_profile,
        released=released_record(args.release) if args.release is not None else None,
        val_negatives_dropped=val_negatives_dropped(args.data_metrics),
        rescored=rescored,
        more_rules=[*_val_identity(args), *_release_choice(args, params, eval_metrics, rescored)],
    )
    report["model_path"] = args.model.as_posix()
    # the headline is written whatever the verdict: a failed candidate stays comparable in `dvc exp show`;
    # it is made before anything is written, so a device report it refuses (exit 2) leaves no verdict
    # beside a headline of the run before
    headline = headline_from_files(
        args.eval, args.bench, report, args.train_metrics, args.model, args.release, args.device_reports
    )
    variants = variants_section(read_json(args.release)) if args.release is not None else []
    write_json(args.report_json, report)
    write_text(args.report_md, render_markdown(report) + "".join(f"{line}\n" for line in variants))
    write_headline(args.headline, headline)
    if args.energy_plot:  # beside the latency chart: measured device energy vs mAP (or why there is none)
        draw_energy_plot(args.device_reports, args.release, *args.energy_plot)
    code = _log_verdict(report, args.report_md)
    if params.track.enabled:  # after the verdict's lines: a record that cannot be kept fails the stage (exit 2)
        # git info from the cwd: under `dvc exp run --temp/--queue` that is the experiment's own checkout
        # (the code that ran); the outbox and the default mlflow.db go to the main repo (paths.repo_root)
        record_pipeline_run(_record(args, args.params), Path.cwd(), state_dir(), params.track)
    return code


def _log_verdict(report: dict[str, Any], report_md: Path) -> int:
    """Log the verdict (each rule not passed, then the outcome); its exit code."""
    if not report["passed"]:
        for r in (r for r in report["rules"] if not r["passed"]):
            log.error(
                "gate rule %s %s: %s = %s, required %s %s%s",
                r["name"],
                {"fail": "failed"}.get(r["status"], r["status"]),  # failed | invalid | inconclusive
                r["metric"],
                r["measured"],
                r["op"],
                r["threshold"],
                f" ({r['reason']})" if r["reason"] else "",
            )
        failed = ", ".join(report["failed"])
        word = "FAILED" if report["verdict"] == "fail" else "INCONCLUSIVE"
        log.error("release gate %s (%s); see %s", word, failed, report_md)
        return EXIT[report["verdict"]]
    log.info("release gate PASSED for model %s", report["model_sha256"])
    return 0
