"""DVC stage ``release``: evaluate and benchmark every variant, then choose the release per device profile.

Writes ``reports/release.json`` (the contract the gate, the hand-off bundle and the headline read),
each measured variant's evaluation and benchmark under ``metrics/variants/<variant>/``, and the
latency-vs-mAP plot.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.data.canonical import split_image_paths
from edgeproof.io import atomic_dir, read_json, write_json
from edgeproof.release import measure, plot
from edgeproof.release.choose import REFERENCE, choose
from edgeproof.runtime.session import import_ort
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    facts = read_json(args.optimized)["variants"]
    parity = read_json(args.parity)
    files = {name: Path(f["path"]) for name, f in facts.items()}
    measured = measure.measure(
        files,
        parity,
        args.data,
        split_image_paths(args.data, "val"),
        params.evaluate,
        params.benchmark,
        params.deploy,
        params.release.bench_rounds,
        read_json(args.eval),
    )
    paths = {name: (args.variants / name / "eval.json", args.variants / name / "bench.json") for name in files}
    variants = measure.records(facts, parity, measured, paths)
    release = choose(params.profiles, variants, params.release, import_ort().get_available_providers())
    with atomic_dir(args.variants) as tmp:
        for name, ev in measured.evals.items():
            write_json(tmp / name / "eval.json", ev)
            write_json(tmp / name / "bench.json", measured.benches[name])
    ref = variants[REFERENCE]
    reference = {"variant": REFERENCE, **{k: ref.get(k) for k in ("path", "sha256", "map50_95", "map50")}}
    doc = {**release, "reference": reference, "variants": measure.public(variants)}
    doc["profiles"] = dict(sorted(doc["profiles"].items()))
    rows = plot.rows(variants, release["release_variant"])
    plot.write_csv(args.plot_csv, rows)
    title = f"Variants on {release['build_profile']} (this machine): end-to-end latency vs mAP"
    plot.write_png(args.plot_png, rows, title, not_measured=plot.unmeasured(variants))
    write_json(args.report, doc)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--optimized", type=Path, required=True, help="metrics/optimize.json (the variants built)")
    p.add_argument("--parity", type=Path, required=True, help="metrics/parity.json")
    p.add_argument("--eval", type=Path, required=True, help="metrics/eval.json (fp32's evaluation, reused)")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--variants", type=Path, required=True, help="output: folder of <variant>/{eval,bench}.json")
    p.add_argument("--report", type=Path, required=True, help="output: reports/release.json")
    p.add_argument("--plot-csv", type=Path, required=True, help="output: latency-vs-mAP plot data")
    p.add_argument("--plot-png", type=Path, required=True, help="output: latency-vs-mAP chart")
    return run("release", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
