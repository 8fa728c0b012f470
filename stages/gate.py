"""DVC stage ``gate``: the release verdict for exactly the measured artifact, then its MLflow record.

Exits 1 when a rule fails and 3 when one could not be judged (a figure missing), naming the rules,
after writing the reports and recording the run, so failed candidates are as visible in MLflow as
released ones. The thresholds are ``profiles.<release.build_profile>.gate``. Exits 2 (an
environment error) when the run's MLflow record can be neither sent nor kept in the outbox (a full
disk, a read-only state folder): the reports are written and right, but DVC must not take the stage
for done with the record lost; ``dvc repro -f -s gate`` makes it once the folder is writable.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.release.gating import GateRun, run_gate
from stages._common import parser, run


def _body(args: argparse.Namespace) -> int:
    if args.release is not None and args.data is None:
        raise ValueError("--release needs --data: the gate scores the released file on val itself (rescored)")
    if args.release is not None and None in (args.reference_eval, args.parity, args.optimize, args.reference_model):
        raise ValueError(
            "--release needs --reference-eval, --parity, --optimize and --reference-model: the gate re-checks the "
            "release choice"
        )
    paths = {name: getattr(args, name) for name in GateRun.__dataclass_fields__}
    paths["params"] = Path(args.params)
    paths["energy_plot"] = tuple(args.energy_plot) if args.energy_plot else None
    return run_gate(GateRun(**paths), load_params(args.params))


# the files the gate re-derives figures from (each a path dvc.yaml passes; _body says which --release requires)
_CHECKED_FROM = {
    "--data": "data/prepared: the gate scores the gated file on its val split itself (rescored, val_identity)",
    "--reference-eval": "metrics/eval.json: the fp32 reference of the release variant's mAP drop (release_choice)",
    "--parity": "metrics/parity.json: the release variant's parity, re-checked by the gate (release_choice)",
    "--reference-model": "models/optimized/fp32.onnx: the fp32 reference, scored by the gate itself (release_choice)",
    "--optimize": "metrics/optimize.json: each variant's sha256 as built, the reference and gated files held to it",
    "--data-metrics": "metrics/data.json: the data stage's record of val (val_identity; background images left out)",
}


def _add_checked_from(p: argparse.ArgumentParser) -> None:
    for flag, what in _CHECKED_FROM.items():
        p.add_argument(flag, type=Path, default=None, help=what)


def _add_records(p: argparse.ArgumentParser) -> None:
    """What the gate records beside its verdict: the device results, the energy chart and the MLflow record."""
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
    p.add_argument(
        "--track-shipped-plots",
        type=Path,
        nargs="*",
        default=[],
        help="the released model's charts (plots/shipped), attached under plots/<its variant>/",
    )


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
    _add_checked_from(p)
    _add_records(p)
    return run("gate", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
