"""Building a tracking record from the pipeline's files (no MLflow import here)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgeproof.folders import atomic_dir
from edgeproof.io import json_sha256
from edgeproof.params_file import read_params_yaml
from edgeproof.tracking.class_metrics import EVALUATIONS, class_segments, per_class_metrics, with_class_segments
from edgeproof.tracking.context import (
    alias_notes,
    git_info,
    process_start_ms,
    repro_started_ms,
    run_name,
    run_origin,
    span_ms,
    stage_seconds,
)
from edgeproof.tracking.keys import clean_keys
from edgeproof.tracking.params import TrackParams
from edgeproof.tracking.provenance import provenance
from edgeproof.tracking.record_check import earned_alias
from edgeproof.tracking.verdicts import PROVENANCE_RULES, RULES_FIELD, thresholds, verdict_label, verdicts

RECORD_FILE = "record.json"
HEADLINE = "headline"
"""The metrics file (stem) whose keys are logged under their own names, as ``dvc metrics diff`` shows them."""
REFERENCE = "reference"
OWN_METRICS = ("gate", HEADLINE)
"""The metrics files the recording stage writes itself, from the files it judged (:meth:`RecordSources.judged`)."""
"""The prefix of the reference's files (:attr:`RecordSources.reference_metrics`): ``reference.eval.*``."""


@dataclass
class RecordSources:
    """The files a pipeline run's record is made of (paths as given by dvc.yaml)."""

    params: Path
    metrics: dict[str, Path]
    """Metrics files by name: every number logged as ``<name>.<key>`` (the headline's under its own
    names), each file kept as the artifact ``reports/<name>.json`` (``gate``: ``reports/gate.json``, the
    name the outbox check and ``model show`` read, whatever file the gate stage wrote)."""
    reports: list[Path] = field(default_factory=list)
    curves: Path | None = None
    plots: list[Path] = field(default_factory=list)
    shipped_plots: list[Path] = field(default_factory=list)
    """The released model's charts (``plots/shipped``): artifacts under ``plots/<variant>/``, apart from
    the evaluated reference's (fp32) ones of the same names."""
    model: Path | None = None
    dvc_lock: Path | None = None
    stage: str = "gate"
    """The DVC stage making the record: its own ``dvc.lock`` entry is the previous run's, so skipped."""
    summary: Path | None = None
    """The gate verdict as Markdown: the run's description."""
    release: Path | None = None
    """``reports/release.json`` (build profile, release variant), when the pipeline writes one."""
    device_reports: Path | None = None
    """A folder of ``<profile>/gate.json`` verdicts from devices (``reports/device``), when present."""
    stage_times: Path | None = None
    """The stage processes' notes of their times (``<state>/stage_times``, see
    :func:`~edgeproof.tracking.context.note_stage_time`)."""
    not_chosen: str | None = None
    """Why the gated file is not the one the pipeline chose to release (a gate run by hand with
    ``--model/--eval/--bench``: its own outputs, but maybe a variant the release stage turned down), else
    None; such a record is not clean, so it registers and promotes nothing (:func:`provenance`)."""
    reference_metrics: dict[str, Path] = field(default_factory=dict)
    """The reference's files by name (``eval``, ``bench``: ``metrics/eval.json``, ``metrics/bench.json``,
    the fp32 model's): logged as ``reference.<name>.<key>`` and kept as ``reports/reference/<name>.json``,
    apart from the gated file's own of the same names in ``metrics`` (``eval.*``, ``bench.*``: what every
    run logged under those names before the reference was recorded too, so a name never changes files)."""

    def judged(self) -> list[Path]:
        """The files the verdict and the figures come from: the model, ``release.json``, the curve and every
        metrics file but the recording stage's own (:data:`OWN_METRICS`); provenance requires them to be the
        pipeline's outputs (:func:`~edgeproof.tracking.provenance.unproduced`)."""
        files = [p for name, p in self.metrics.items() if name not in OWN_METRICS]
        return [p for p in (self.model, self.release, self.curves, *files, *self.reference_metrics.values()) if p]


@dataclass(frozen=True)
class Destination:
    """Where a record goes in MLflow, fixed when the record is made (``None``: do not register)."""

    experiment: str
    model_name: str | None = None

    @classmethod
    def of(cls, record: Mapping[str, Any], fallback: Destination) -> Destination:
        """The destination stored in ``record``; ``fallback`` for records made before it was stored."""
        if "experiment" not in record:
            return fallback
        return cls(str(record["experiment"]), record.get("model_name"))


def path_segment(name: str) -> str:
    """``name`` as one artifact folder name (anything but letters, digits, ``_.-`` becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "model"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists of scalars are kept as JSON strings."""
    out: dict[str, Any] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(data, list):
        out[prefix[:-1]] = json.dumps(data)
    else:
        out[prefix[:-1]] = data
    return out


def scalar_metrics(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Numeric leaves of each metrics file as ``<file>.<dotted key>`` (bools as 0/1, nulls dropped);
    the headline file's keys under their own names (the names ``dvc metrics diff`` shows)."""
    out: dict[str, float] = {}
    for name, data in metrics.items():
        for key, value in flatten(data).items():
            if isinstance(value, (bool, int | float)):
                out[key if name == HEADLINE else f"{name}.{key}"] = float(value)
    return out


def figure_metrics(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Every number of the metrics files as MLflow metrics (:func:`scalar_metrics`, per-class AP added),
    keys cleaned; a class shows under one key segment in ``data.*`` and ``eval.class.*``
    (:func:`~edgeproof.tracking.class_metrics.class_segments`)."""
    segments = class_segments(metrics)
    data = metrics.get("data")
    if isinstance(data, Mapping):
        metrics = {**metrics, "data": with_class_segments(data, segments)}
    classes = {}
    for name in EVALUATIONS:  # the gated file's and the reference's evaluation, each under its name
        evaluation = metrics.get(name)
        classes.update(per_class_metrics(evaluation if isinstance(evaluation, Mapping) else {}, segments, name))
    return clean_keys({**scalar_metrics(metrics), **classes})


def read_curves(path: Path | None) -> list[dict[str, float]]:
    """Per-epoch rows from the training curve CSV."""
    if path is None or not path.exists():
        return []
    with path.open(newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(fh)]


def dvc_lock_hashes(path: Path | None, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """md5 of each stage's outputs from ``dvc.lock`` (the data and model versions DVC knows).

    Stages in ``exclude`` are skipped: while a stage runs, its ``dvc.lock`` entry still describes
    its previous run.
    """
    if path is None or not path.exists():
        return {}
    lock = yaml.safe_load(path.read_text()) or {}
    out = {}
    for stage, body in (lock.get("stages") or {}).items():
        if stage in exclude or not isinstance(body, Mapping):
            continue
        for item in body.get("outs") or []:
            if "md5" in item:
                out[f"dvc.{stage}.{item['path']}"] = item["md5"]
    return out


def _read(path: Path | None) -> Any:
    return json.loads(path.read_text()) if path is not None and path.exists() else None


def dataset_info(data_metrics: Mapping[str, Any], lock_hashes: Mapping[str, str]) -> dict[str, Any] | None:
    """The evaluation dataset as an MLflow dataset input: the val split of the prepared data, with
    DVC's digest of ``data/prepared`` (else a digest of ``metrics/data.json``)."""
    if not data_metrics:
        return None
    prepared = sorted((k, v) for k, v in lock_hashes.items() if k.startswith("dvc.data."))
    if prepared:
        source, digest = prepared[0][0].removeprefix("dvc.data."), prepared[0][1].removesuffix(".dir")
    else:
        source = "metrics/data.json"
        digest = json_sha256(data_metrics, 32)
    val = (data_metrics.get("splits") or {}).get("val") or {}
    profile = {"images": val.get("images"), "boxes": val.get("boxes"), "classes": data_metrics.get("classes")}
    return {
        "name": f"{data_metrics.get('source', 'dataset')}-val",
        "digest": digest[:36],
        "source": source,
        "profile": profile,
    }


NOT_CONTENT = ("record_id", "run_name", "times", "stage_seconds")
"""Record keys outside its content id: the id itself, the name made from it, and the run's times."""


def content_id(record: Mapping[str, Any]) -> str:
    """The record's id: a hash of its content (all but :data:`NOT_CONTENT`), so that the same run is
    one MLflow run however often it is sent, and an edited record no longer matches its id."""
    body = {k: v for k, v in record.items() if k not in NOT_CONTENT}
    return json_sha256(body, 32)


def _run_tags(
    sources: RecordSources, repo: Path, gate: dict[str, Any], bench: dict[str, Any], lock: dict[str, str], variant: str
) -> dict[str, str]:
    """A run's tags: git and origin, the DVC outputs' md5s, the gated file, its machine and the verdict."""
    sha = str(gate.get("model_sha256") or bench.get("model_sha256") or "")
    return {**git_info(repo), **run_origin(repo), **lock, "model_sha256": sha, "variant": variant,
            "device": str((bench.get("device") or {}).get("cpu_model") or ""),
            "providers": ",".join((bench.get("device") or {}).get("providers_used") or []),
            "gate_passed": str(bool(gate.get("passed"))).lower(), "verdict": verdict_label(gate),
            "provenance": provenance(repo, sources.stage, sources.judged(), sources.not_chosen)}  # fmt: skip


def build_record(
    sources: RecordSources, repo: Path, destination: Destination | None = None, track: TrackParams | None = None
) -> dict[str, Any]:
    """The JSON-able record of one pipeline run, with a content id over everything in it but its times
    (``times``: start, end, ``stage_seconds``: what each stage that ran in this repro took).

    Git info comes from ``repo`` (the checkout whose code ran). Keys are already MLflow-safe;
    ``destination`` (experiment, registered model) and the alias a passing model earns (from
    ``track``) are stored so a replay sends it where it was meant.
    """
    track = track or TrackParams()
    params = read_params_yaml(sources.params)  # as DVC and the stages read it (YAML 1.2), not PyYAML's 1.1
    metrics = {name: json.loads(p.read_text()) for name, p in sources.metrics.items() if p.exists()}
    reference = {name: json.loads(p.read_text()) for name, p in sources.reference_metrics.items() if p.exists()}
    metrics.update({f"{REFERENCE}.{name}": data for name, data in reference.items()})
    gate, bench = metrics.get("gate", {}), metrics.get("bench", {})  # the gated file's: its sha256 and machine
    release = _read(sources.release)
    lock = dvc_lock_hashes(sources.dvc_lock, exclude=(sources.stage,))
    variant = str((release or {}).get("release_variant") or (sources.model.stem if sources.model else "model"))
    tags = _run_tags(sources, repo, gate, bench, lock, variant)
    passed = bool(gate.get("passed"))
    record: dict[str, Any] = {
        "params": clean_keys(flatten(params)),
        "metrics": figure_metrics(metrics),
        "curves": read_curves(sources.curves),
        "tags": clean_keys(tags),
        "passed": passed,
        "description": sources.summary.read_text() if sources.summary and sources.summary.exists() else "",
        "dataset": dataset_info(metrics.get("data", {}), lock),
        "verdicts": verdicts(gate, release, sources.device_reports, (params.get("release") or {}).get("build_profile")),
        "thresholds": thresholds(gate),
        "provenance": tags["provenance"],
        RULES_FIELD: PROVENANCE_RULES,  # what "clean" was checked against: older records were not held to both
        "headline": sorted(clean_keys(scalar_metrics({HEADLINE: metrics.get(HEADLINE) or {}}))),
    }
    record["alias"] = earned_alias(tags, record, track)  # a failed device verdict on this file: no alias
    # the record says why it is not the champion, or registers nothing at all
    record["tags"].update(alias_notes(tags, passed, record["alias"], track.candidate_alias, track.release_branches))
    if destination is not None:
        record["experiment"], record["model_name"] = destination.experiment, destination.model_name
    record["record_id"] = content_id(record)
    record["run_name"] = run_name(record["tags"], variant, record["record_id"])
    # times last: not part of the content id
    made_of = [*sources.metrics.values(), *sources.reference_metrics.values(), sources.curves, sources.model]
    record["times"] = span_ms(made_of, repro_started_ms())
    if record["times"].get("start_source") == "dvc process":
        start, end = record["times"]["start_ms"], record["times"]["end_ms"]
        notes = sources.stage_times / str(start) if sources.stage_times else None
        record["stage_seconds"] = stage_seconds(notes, start, end, sources.stage, process_start_ms())
    return record


def snapshot(
    sources: RecordSources,
    repo: Path,
    outbox: Path,
    log_model: bool,
    destination: Destination | None = None,
    track: TrackParams | None = None,
) -> Path:
    """Write the record and copies of its artifacts to ``outbox/<record_id>/`` (atomically); return it."""
    record = build_record(sources, repo, destination, track)
    folder = outbox / record["record_id"]
    with atomic_dir(folder) as tmp:  # a ".<id>.*" temp folder: never taken for a waiting record
        for where, path in artifacts(sources, record["tags"]["variant"], log_model):
            if path.exists():
                (tmp / "artifacts" / where).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, tmp / "artifacts" / where)
        (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    return folder


def artifacts(sources: RecordSources, variant: str, log_model: bool) -> list[tuple[str, Path]]:
    """``(artifact path, file)`` of every file a record carries: each metrics file as ``reports/<name>.json``
    (so the gate report is ``reports/gate.json`` whatever the stage named it), the reference's as
    ``reports/reference/<name>.json``, ``reports/release.json``, the plots (the released model's
    under ``plots/<variant>/``) and, with ``log_model``, the model file."""
    segment = path_segment(variant)
    out = [(f"reports/{sources.params.name}", sources.params)]
    out += [(f"reports/{name}.json", path) for name, path in sources.metrics.items()]
    out += [(f"reports/{REFERENCE}/{name}.json", path) for name, path in sources.reference_metrics.items()]
    out += [
        (f"reports/{path.name}", path) for path in [*sources.reports, *([sources.release] if sources.release else [])]
    ]
    out += [(f"plots/{path.name}", path) for path in sources.plots]
    out += [(f"plots/{segment}/{path.name}", path) for path in sources.shipped_plots]
    if log_model and sources.model is not None:
        out.append((f"model/{sources.model.name}", sources.model))
    return out
