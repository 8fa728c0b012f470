"""DVC stage ``gate``: the release verdict for exactly the measured artifact, then its MLflow record.

Exits 1 when a rule fails and 3 when one could not be judged (a figure missing), naming the rules,
after writing the reports and recording the run, so failed candidates are as visible in MLflow as
released ones. The thresholds are ``profiles.<release.build_profile>.gate``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.gate import build_thresholds, check_gate, render_markdown
from edgeproof.headline import headline_from_files, write_headline
from edgeproof.io import read_json, sha256_file, write_json, write_text
from edgeproof.paths import state_dir
from edgeproof.release.energy_plot import draw as draw_energy_plot
from edgeproof.tracking.pipeline import record_pipeline_run
from edgeproof.tracking.record import RecordSources
from edgeproof.verdict.rules import EXIT
from stages._common import parser, run

log = logging.getLogger("edgeproof.stage")


def _record(args: argparse.Namespace, params_path: Path) -> RecordSources:
    metrics = {p.stem: p for p in args.track_metrics}
    metrics["eval"], metrics["bench"], metrics["gate"] = args.eval, args.bench, args.report_json
    metrics["headline"] = args.headline
    return RecordSources(
        params=params_path,
        metrics=metrics,
        reports=[args.report_md],
        curves=args.track_curve,
        plots=list(args.track_plots),
        model=args.model,
        dvc_lock=Path("dvc.lock"),
        stage="gate",  # this stage's dvc.lock entry is still the previous run's
        summary=args.report_md,
        release=args.release,
        device_reports=args.device_reports,
    )


def _release_candidate(args: argparse.Namespace) -> None:
    """Point ``args.model/eval/bench`` at the build profile's release variant in ``reports/release.json``."""
    release = read_json(args.release)
    try:
        chosen = release["profiles"][release["build_profile"]]
        measured = release["variants"][chosen["variant"]]
        args.model, args.eval, args.bench = (
            Path(chosen["path"]),
            Path(measured["eval_json"]),
            Path(measured["bench_json"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{args.release}: no measured release variant for the build profile ({exc!r})") from None
    if sha256_file(args.model) != chosen["sha256"]:
        raise ValueError(f"{args.model}: sha256 differs from the release choice in {args.release}")
    log.info("gating the %s release variant %s", release["build_profile"], args.model)


def _body(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    if args.release is not None:
        _release_candidate(args)
    elif None in (args.model, args.eval, args.bench):
        raise ValueError("give --release, or all of --model, --eval and --bench")
    report = check_gate(
        build_thresholds(params.profiles, params.release.build_profile),
        read_json(args.eval),
        read_json(args.bench),
        sha256_file(args.model),
        sources=(args.eval.as_posix(), args.bench.as_posix()),
    )
    report["model_path"] = args.model.as_posix()
    write_json(args.report_json, report)
    write_text(args.report_md, render_markdown(report))
    # the headline is written whatever the verdict: a failed candidate stays comparable in `dvc exp show`
    headline = headline_from_files(
        args.eval, args.bench, report, args.train_metrics, args.model, args.release, args.device_reports
    )
    write_headline(args.headline, headline)
    if args.energy_plot:  # beside the latency chart: measured device energy vs mAP (or why there is none)
        draw_energy_plot(args.device_reports, args.release, *args.energy_plot)
    if params.track.enabled:
        # git info from the cwd: under `dvc exp run --temp/--queue` that is the experiment's own checkout
        # (the code that ran); the outbox and the default mlflow.db go to the main repo (paths.repo_root)
        record_pipeline_run(_record(args, Path(args.params)), Path.cwd(), state_dir(), params.track)
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
        log.error("release gate %s (%s); see %s", word, failed, args.report_md)
        return EXIT[report["verdict"]]
    log.info("release gate PASSED for model %s", report["model_sha256"])
    return 0


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--release", type=Path, default=None, help="reports/release.json: gate its build-profile variant")
    p.add_argument("--model", type=Path, default=None, help="the release candidate ONNX model (without --release)")
    p.add_argument("--eval", type=Path, default=None, help="its evaluation JSON (without --release)")
    p.add_argument("--bench", type=Path, default=None, help="its benchmark JSON (without --release)")
    p.add_argument("--report-json", type=Path, required=True, help="output: machine-readable verdict")
    p.add_argument("--report-md", type=Path, required=True, help="output: human-readable verdict")
    p.add_argument("--headline", type=Path, required=True, help="output: metrics/headline.json (dvc exp show)")
    p.add_argument("--train-metrics", type=Path, required=True, help="metrics/train.json (epochs, for the headline)")
    p.add_argument(
        "--device-reports",
        type=Path,
        default=Path("reports/device"),
        help="device results <profile>/{bench,gate}.json for the headline and the MLflow record, where present "
        "(CI artifacts, not DVC deps)",
    )
    p.add_argument(
        "--energy-plot",
        type=Path,
        nargs=2,
        metavar=("CSV", "PNG"),
        default=None,
        help="outputs: device mJ/frame vs mAP50-95 per profile and variant, plot data and chart",
    )
    p.add_argument("--track-metrics", type=Path, nargs="*", default=[], help="other metrics files to record")
    p.add_argument("--track-curve", type=Path, default=None, help="training curve CSV to record per epoch")
    p.add_argument("--track-plots", type=Path, nargs="*", default=[], help="plot files to attach to the record")
    return run("gate", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
