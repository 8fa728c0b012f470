"""The ``release`` stage's work: measure every variant, choose the release per device profile, write it all.

Writes ``reports/release.json`` (the contract the gate, the hand-off bundle and the headline read),
each measured variant's evaluation and benchmark under ``<variants>/<variant>/``, and the
latency-vs-mAP plot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeproof.benchmark import BenchmarkParams
from edgeproof.data.canonical import split_image_paths
from edgeproof.evaluation.params import EvaluateParams
from edgeproof.folders import atomic_dir
from edgeproof.io import read_json, write_json
from edgeproof.profiles import Profile
from edgeproof.release import measure, plot
from edgeproof.release.choose import REFERENCE, choose
from edgeproof.release.params import ReleaseParams
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.runtime.session import import_ort


@dataclass(frozen=True)
class ReleasePaths:
    """What the stage reads (``optimized``, ``parity``, ``eval``, ``data``) and writes (the rest)."""

    optimized: Path  # metrics/optimize.json: the variants built
    parity: Path  # metrics/parity.json
    eval: Path  # metrics/eval.json: fp32's evaluation, reused for the same file
    data: Path  # the prepared dataset
    variants: Path  # output folder: <variant>/{eval,bench}.json
    report: Path  # output: reports/release.json
    plot_csv: Path  # output: latency-vs-mAP plot data
    plot_png: Path  # output: latency-vs-mAP chart


@dataclass(frozen=True)
class ReleaseSettings:
    """The params sections the release reads."""

    evaluate: EvaluateParams
    benchmark: BenchmarkParams
    deploy: DeploySettings
    release: ReleaseParams
    profiles: Mapping[str, Profile]


def build_release(paths: ReleasePaths, settings: ReleaseSettings) -> dict[str, Any]:
    """Measure, choose and write every output of the release stage; returns ``release.json``'s content."""
    facts = read_json(paths.optimized)["variants"]
    parity = read_json(paths.parity)
    files = {name: Path(f["path"]) for name, f in facts.items()}
    measured = measure.measure(
        files,
        parity,
        paths.data,
        split_image_paths(paths.data, "val"),
        settings.evaluate,
        settings.benchmark,
        settings.deploy,
        settings.release.bench_rounds,
        read_json(paths.eval),
    )
    records = {name: (paths.variants / name / "eval.json", paths.variants / name / "bench.json") for name in files}
    variants = measure.records(facts, parity, measured, records)
    providers = import_ort().get_available_providers()
    release = choose(dict(settings.profiles), variants, settings.release, providers, settings.evaluate.cross_check)
    with atomic_dir(paths.variants) as tmp:
        for name, ev in measured.evals.items():
            write_json(tmp / name / "eval.json", ev)
            write_json(tmp / name / "bench.json", measured.benches[name])
    doc = release_document(release, variants)
    rows = plot.rows(variants, release["release_variant"])
    plot.write_csv(paths.plot_csv, rows)
    title = f"Variants on {release['build_profile']} (this machine): end-to-end latency vs mAP"
    plot.write_png(paths.plot_png, rows, title, not_measured=plot.unmeasured(variants))
    write_json(paths.report, doc)
    return doc


def release_document(release: Mapping[str, Any], variants: Mapping[str, Any]) -> dict[str, Any]:
    """``release.json``: the choice, the fp32 reference it was judged against, and every variant's record."""
    ref = variants[REFERENCE]
    reference = {"variant": REFERENCE, **{k: ref.get(k) for k in ("path", "sha256", "map50_95", "map50")}}
    doc = {**release, "reference": reference, "variants": measure.public(variants)}
    doc["profiles"] = dict(sorted(doc["profiles"].items()))
    return doc
