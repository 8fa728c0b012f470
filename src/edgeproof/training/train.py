"""Seeded, resumable YOLO training with ultralytics.

Resumability: the run lives in ``<state>/train/<fingerprint>/``, outside every DVC output, so DVC
never deletes it. The fingerprint covers the train params and the prepared dataset, so an
interrupted ``dvc repro`` with unchanged inputs resumes from ``last.pt``; changed inputs, or a
checkpoint torn by the interruption, start a clean run. The stage's outputs are copied out only
after training finished, atomically, so an interrupted run never leaves a corrupt ``best.pt``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgeproof.config import TrainParams
from edgeproof.data.canonical import SPLITS, load_meta, ultralytics_data_yaml
from edgeproof.io import sha256_file
from edgeproof.training.ultralytics_env import configure

log = logging.getLogger(__name__)

DONE_FILE = "edgeproof_done.json"


@dataclass(frozen=True)
class TrainResult:
    """What a finished training produced."""

    best_pt: Path
    curve: list[dict[str, float]]
    summary: dict[str, Any]


def dataset_fingerprint(data_root: Path) -> str:
    """Hash of what training reads from the prepared dataset: labels, metadata and image bytes' sizes."""
    digest = hashlib.sha256()
    for path in sorted(data_root.rglob("*")):
        if path.is_file() and path.parts[-3:-2] != ("annotations",):
            rel = path.relative_to(data_root).as_posix()
            digest.update(rel.encode())
            digest.update(path.read_bytes() if path.suffix in {".txt", ".json"} else str(path.stat().st_size).encode())
    return digest.hexdigest()


def run_fingerprint(params: TrainParams, data_root: Path) -> str:
    """Identity of a training run: params, dataset and (for fine-tuning) the starting weights."""
    parts = {"params": params.model_dump(), "data": dataset_fingerprint(data_root)}
    if params.model.endswith(".pt"):
        parts["weights"] = sha256_file(params.model)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _private_view(data_root: Path, view: Path) -> Path:
    """Hard-link the images and copy the labels into ``view``.

    ultralytics writes ``labels/<split>.cache`` next to the labels and resolves symlinks first, so
    training on the DVC output itself would modify it (and make DVC rerun the data stage).
    """
    shutil.rmtree(view, ignore_errors=True)
    for split in SPLITS:
        for kind in ("images", "labels"):
            src, dst = data_root / kind / split, view / kind / split
            dst.mkdir(parents=True, exist_ok=True)
            for file in src.iterdir():
                if kind == "images":
                    try:
                        os.link(file, dst / file.name)
                    except OSError:  # other filesystem, or links not allowed
                        shutil.copyfile(file, dst / file.name)
                else:
                    shutil.copyfile(file, dst / file.name)
    meta = load_meta(data_root)
    data_yaml = view / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(ultralytics_data_yaml(view, meta), sort_keys=False))
    return data_yaml


def _train_kwargs(params: TrainParams, data_yaml: Path, run_dir: Path) -> dict[str, Any]:
    return {
        "data": str(data_yaml),
        "epochs": params.epochs,
        "imgsz": params.imgsz,
        "batch": params.batch,
        "seed": params.seed,
        "deterministic": params.deterministic,
        "device": params.device,
        "workers": params.workers,
        "optimizer": params.optimizer,
        "lr0": params.lr0,
        "patience": params.patience,
        "close_mosaic": params.close_mosaic,
        "mosaic": params.mosaic,
        "cache": "ram" if params.cache else False,
        "amp": params.amp,
        "project": str(run_dir.parent),
        "name": run_dir.name,
        "exist_ok": True,
        "plots": False,  # plotting may fetch a font; edgeproof draws its own plots
        "val": True,
        "verbose": False,
    }


def _resumable(yolo_cls: Any, last: Path) -> Any | None:
    """A YOLO model loaded from ``last`` if it is a usable mid-training checkpoint, else None."""
    if not last.exists():
        return None
    try:
        return yolo_cls(str(last))
    except Exception as exc:  # a checkpoint torn by the interruption: start over
        log.warning("checkpoint %s is unreadable (%s); restarting training from scratch", last, exc)
        return None


def read_results_csv(path: Path) -> list[dict[str, float]]:
    """Per-epoch rows of ultralytics' ``results.csv`` with clean keys (``metrics/mAP50(B)`` -> ``map50``)."""
    rename = {
        "metrics/precision(B)": "precision",
        "metrics/recall(B)": "recall",
        "metrics/mAP50(B)": "map50",
        "metrics/mAP50-95(B)": "map50_95",
    }
    rows = []
    with path.open(newline="") as fh:
        for raw in csv.DictReader(fh):
            row = {}
            for key, value in raw.items():
                key = key.strip()
                clean = rename.get(key, key.replace("/", "_"))
                row[clean] = float(value)
            row["epoch"] = int(row["epoch"])
            rows.append(row)
    return rows


def _check_model_source(params: TrainParams) -> None:
    if params.model.endswith(".pt") and not Path(params.model).is_file():
        raise FileNotFoundError(
            f"params.yaml: train.model: {params.model!r} is not a local file. edgeproof never downloads "
            "weights at run time: place the .pt file in the repo (e.g. track it with `dvc add`) and give its path."
        )


def train(params: TrainParams, data_root: Path, state: Path) -> TrainResult:
    """Train (or resume, or reuse a finished run) and return the best weights and the curves."""
    _check_model_source(params)
    yolo_cls = configure(state)
    fingerprint = run_fingerprint(params, data_root)
    run_dir = state / "train" / fingerprint
    done = run_dir / DONE_FILE
    if done.exists():
        log.info("training run %s already finished; reusing it", fingerprint)
        summary = json.loads(done.read_text())
    else:
        summary = _run(yolo_cls, params, data_root, run_dir, fingerprint)
        done.write_text(json.dumps(summary, indent=2))
    _prune_other_runs(run_dir)
    curve = read_results_csv(run_dir / "results.csv")
    return TrainResult(best_pt=run_dir / "weights" / "best.pt", curve=curve, summary=summary)


def _run(yolo_cls: Any, params: TrainParams, data_root: Path, run_dir: Path, fingerprint: str) -> dict[str, Any]:
    last = run_dir / "weights" / "last.pt"
    model = _resumable(yolo_cls, last)
    resumed = model is not None
    view = run_dir.parent / f"{fingerprint}-data"
    data_yaml = _private_view(data_root, view)
    kwargs = _train_kwargs(params, data_yaml, run_dir)
    start = time.perf_counter()
    if resumed:
        log.info("resuming interrupted training from %s", last)
        model.train(
            resume=True,
            data=str(data_yaml),
            device=params.device,
            workers=params.workers,
            save_dir=str(run_dir),
            plots=False,
        )
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        model = yolo_cls(params.model)
        model.train(**kwargs)
    best = run_dir / "weights" / "best.pt"
    if not best.exists():
        raise RuntimeError(f"ultralytics finished without writing {best}")
    return {
        "fingerprint": fingerprint,
        "resumed": resumed,
        "train_seconds_last_session": round(time.perf_counter() - start, 2),
    }


def _prune_other_runs(keep: Path) -> None:
    """Drop other runs' directories: stale checkpoints are large and never resumable again."""
    for other in keep.parent.iterdir():
        if other.name not in {keep.name, f"{keep.name}-data"}:
            shutil.rmtree(other, ignore_errors=True)
