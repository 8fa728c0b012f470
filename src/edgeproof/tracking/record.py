"""Building a tracking record from the pipeline's files (no MLflow import here)."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgeproof.tracking.keys import clean_keys, clean_part, unique_names

log = logging.getLogger(__name__)

RECORD_FILE = "record.json"
PIPELINE_OUTPUTS = ("dvc.lock", "metrics", "reports", "plots")


@dataclass
class RecordSources:
    """The files a pipeline run's record is made of (paths as given by dvc.yaml)."""

    params: Path
    metrics: dict[str, Path]
    reports: list[Path] = field(default_factory=list)
    curves: Path | None = None
    plots: list[Path] = field(default_factory=list)
    model: Path | None = None
    dvc_lock: Path | None = None
    stage: str = "gate"
    """The DVC stage making the record: its own ``dvc.lock`` entry is the previous run's, so skipped."""


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
    """Numeric leaves of each metrics file as ``<file>.<dotted key>`` (bools as 0/1, nulls dropped)."""
    out: dict[str, float] = {}
    for name, data in metrics.items():
        for key, value in flatten(data).items():
            if isinstance(value, (bool, int | float)):
                out[f"{name}.{key}"] = float(value)
    return out


def per_class_metrics(eval_metrics: Mapping[str, Any]) -> dict[str, float]:
    """Per-class AP as ``eval.class.<name>.ap`` metrics (MLflow cannot chart a list).

    ``<name>`` is the class name with characters MLflow rejects replaced (``traffic light (red)``
    -> ``traffic light _red_``), and a short hash appended where two names would otherwise clash.
    """
    rows = [row for row in eval_metrics.get("per_class") or [] if isinstance(row, Mapping)]
    labels = [str(row.get("name", row.get("category_id"))) for row in rows]
    safe = unique_names(labels, clean_part)
    out = {}
    for row, label in zip(rows, labels, strict=True):
        for key in ("ap", "ap50"):
            if row.get(key) is not None:
                out[f"eval.class.{safe[label]}.{key}"] = float(row[key])
    return out


def read_curves(path: Path | None) -> list[dict[str, float]]:
    """Per-epoch rows from the training curve CSV."""
    if path is None or not path.exists():
        return []
    with path.open(newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(fh)]


def git_info(cwd: Path) -> dict[str, str]:
    """Commit and dirty flag of the repo at ``cwd`` ("unknown" outside git)."""

    def run(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    # the pipeline's own outputs change on every run; "dirty" means the code or params differ
    status = run("status", "--porcelain", "--untracked-files=no", "--", ".", *(f":!{p}" for p in PIPELINE_OUTPUTS))
    return {"git_commit": commit or "unknown", "git_dirty": "unknown" if status is None else str(bool(status)).lower()}


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


def build_record(sources: RecordSources, repo: Path, destination: Destination | None = None) -> dict[str, Any]:
    """The JSON-able record of one pipeline run, with a content id over everything in it.

    Git info comes from ``repo`` (the checkout whose code ran). Keys are already MLflow-safe;
    ``destination`` (experiment, registered model) is stored so a replay sends it where it was meant.
    """
    params = yaml.safe_load(sources.params.read_text()) or {}
    metrics = {name: json.loads(p.read_text()) for name, p in sources.metrics.items() if p.exists()}
    gate = metrics.get("gate", {})
    bench = metrics.get("bench", {})
    tags = {
        **git_info(repo),
        **dvc_lock_hashes(sources.dvc_lock, exclude=(sources.stage,)),
        "model_sha256": str(gate.get("model_sha256") or bench.get("model_sha256") or ""),
        "device": str((bench.get("device") or {}).get("cpu_model") or ""),
        "providers": ",".join((bench.get("device") or {}).get("providers_used") or []),
        "gate_passed": str(bool(gate.get("passed"))).lower(),
    }
    record: dict[str, Any] = {
        "params": clean_keys(flatten(params)),
        "metrics": clean_keys({**scalar_metrics(metrics), **per_class_metrics(metrics.get("eval", {}))}),
        "curves": read_curves(sources.curves),
        "tags": clean_keys(tags),
        "passed": bool(gate.get("passed")),
    }
    if destination is not None:
        record["experiment"], record["model_name"] = destination.experiment, destination.model_name
    record["record_id"] = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return record


def plot_curves(rows: list[dict[str, float]], out: Path) -> None:
    """Render the per-epoch curves (validation mAP and losses) to a PNG for the MLflow run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_map, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("map50", "map50_95"):
        if key in rows[0]:
            ax_map.plot(epochs, [r[key] for r in rows], label=key)
    for key in ("train_box_loss", "train_cls_loss", "val_box_loss", "val_cls_loss"):
        if key in rows[0]:
            ax_loss.plot(epochs, [r[key] for r in rows], label=key)
    for ax, title in ((ax_map, "validation mAP (ultralytics, PyTorch model)"), (ax_loss, "losses")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def snapshot(
    sources: RecordSources, repo: Path, outbox: Path, log_model: bool, destination: Destination | None = None
) -> Path:
    """Write the record and copies of its artifacts to ``outbox/<record_id>/``; return that folder."""
    record = build_record(sources, repo, destination)
    folder = outbox / record["record_id"]
    tmp = outbox / f".{record['record_id']}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "artifacts" / "reports").mkdir(parents=True)
    files = [sources.params, *sources.metrics.values(), *sources.reports]
    for path in files:
        if path.exists():
            shutil.copy2(path, tmp / "artifacts" / "reports" / path.name)
    for path in sources.plots:
        if path.exists():
            (tmp / "artifacts" / "plots").mkdir(exist_ok=True)
            shutil.copy2(path, tmp / "artifacts" / "plots" / path.name)
    if log_model and sources.model is not None and sources.model.exists():
        (tmp / "artifacts" / "model").mkdir()
        shutil.copy2(sources.model, tmp / "artifacts" / "model" / sources.model.name)
    if record["curves"]:
        (tmp / "artifacts" / "plots").mkdir(exist_ok=True)
        plot_curves(record["curves"], tmp / "artifacts" / "plots" / "training_curves.png")
    (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder
