"""Seeded, resumable YOLO training with ultralytics.

Resumability: the run lives in ``<state>/train/<fingerprint>/``, outside every DVC output, so DVC
never deletes it. The fingerprint covers the train params and the prepared dataset, so an
interrupted ``dvc repro`` with unchanged inputs resumes from ``last.pt``; changed inputs, or a
checkpoint torn by the interruption, start a clean run. The stage's outputs are copied out only
after training finished, atomically, so an interrupted run never leaves a corrupt ``best.pt``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from edgeproof.io import read_json, sha256_file, write_json
from edgeproof.training.checkpoint import finish_checkpoints, load_checkpoint_dict
from edgeproof.training.dataview import private_view
from edgeproof.training.params import TrainParams
from edgeproof.training.results import read_results_csv
from edgeproof.training.runs import hold_run, prune_other_runs, view_path
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
    """Hash of everything training reads from the prepared dataset: the contents of every image, label
    and metadata file (and their paths). Evaluation ground truth (``annotations/``) is not read here.

    Contents, not sizes: an image whose pixels changed at the same file size is a different dataset.
    Cost: one read of the dataset per ``train`` stage run (about 2 s per GB on the 2-core reference machine).
    """
    digest = hashlib.sha256()
    for path in sorted(data_root.rglob("*")):
        rel = path.relative_to(data_root)
        if path.is_file() and rel.parts[0] != "annotations":
            digest.update(f"{rel.as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def _code_identity() -> dict[str, str]:
    """The training code and library versions: a finished run is reused only if these are unchanged."""
    here = Path(__file__)
    sources = (here, here.with_name("ultralytics_env.py"), here.with_name("dataview.py"))
    code = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    return {"code": code, "ultralytics": metadata.version("ultralytics"), "torch": metadata.version("torch")}


def run_fingerprint(params: TrainParams, data_root: Path, weights: bytes | None = None) -> str:
    """Identity of a training run: params, dataset, code/library versions and (fine-tuning) the weights' bytes."""
    parts: dict[str, Any] = {"params": params.model_dump(), "data": dataset_fingerprint(data_root)}
    parts.update(_code_identity())
    if weights is not None:
        parts["weights"] = hashlib.sha256(weights).hexdigest()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


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


def _loads(yolo_cls: Any, weights: Path) -> Any | None:
    """The YOLO model in ``weights``, or None if it is missing or unreadable (torn by a kill)."""
    if not weights.exists():
        return None
    try:
        return yolo_cls(str(weights))
    except Exception as exc:
        log.warning("checkpoint %s is unreadable (%s)", weights, exc)
        return None


def checkpoint_state(yolo_cls: Any, run_dir: Path, epochs: int) -> tuple[str, Any | None]:
    """What an earlier, unfinished session left: ``fresh``, ``resume`` (with the model) or ``finished``.

    ultralytics rewrites ``last.pt`` with ``epoch = -1`` once the loop ends and refuses to resume
    such a checkpoint, so a kill during the final validation must count as finished, not resumable.
    """
    last, best = run_dir / "weights" / "last.pt", run_dir / "weights" / "best.pt"
    model = _loads(yolo_cls, last)
    if model is None:
        if last.exists():
            log.warning("restarting training from scratch: %s cannot be resumed", last)
        return "fresh", None
    epoch = (getattr(model, "ckpt", None) or {}).get("epoch", -1)
    if epoch is None or epoch < 0 or epoch + 1 >= epochs:
        if _loads(yolo_cls, best) is not None and (run_dir / "results.csv").exists():
            return "finished", None
        log.warning("restarting training from scratch: the finished run in %s has no usable best.pt", run_dir)
        return "fresh", None
    return "resume", model


def _check_model_source(params: TrainParams) -> None:
    if params.model.endswith(".pt") and not Path(params.model).is_file():
        raise FileNotFoundError(
            f"params.yaml: train.model: {params.model!r} is not a local file. edgeproof never downloads "
            "weights at run time: place the .pt file under weights/ (e.g. weights/yolov5nu.pt, tracked with "
            "`dvc add`) and give that path."
        )


def train(params: TrainParams, data_root: Path, state: Path) -> TrainResult:
    """Train (or resume, or reuse a finished run) and return the best weights and the curves."""
    _check_model_source(params)
    yolo_cls = configure(state)
    # fine-tuning: the bytes are read once, hashed into the fingerprint and trained from (init.pt)
    weights = Path(params.model).read_bytes() if params.model.endswith(".pt") else None
    fingerprint = run_fingerprint(params, data_root, weights)
    run_dir = state / "train" / fingerprint
    done = run_dir / DONE_FILE
    with hold_run(run_dir):  # parallel queue workers: one trains, the other then reuses (runs.py)
        if done.exists():
            log.info("training run %s already finished; reusing it", fingerprint)
            summary = read_json(done)
            done.touch()  # in use now: not stale for prune_other_runs
        else:
            summary = _run(yolo_cls, params, data_root, run_dir, fingerprint, weights)
            write_json(done, summary)
    prune_other_runs(run_dir)
    curve = read_results_csv(run_dir / "results.csv")
    return TrainResult(best_pt=run_dir / "weights" / "best.pt", curve=curve, summary=summary)


def _run(
    yolo_cls: Any, params: TrainParams, data_root: Path, run_dir: Path, fingerprint: str, weights: bytes | None
) -> dict[str, Any]:
    state, model = checkpoint_state(yolo_cls, run_dir, params.epochs)
    view = view_path(run_dir)
    data_yaml = private_view(data_root, view)
    start = time.perf_counter()
    if state == "resume":
        log.info("resuming interrupted training from %s", run_dir / "weights" / "last.pt")
        model.train(
            resume=True,
            data=str(data_yaml),
            device=params.device,
            workers=params.workers,
            save_dir=str(run_dir),
            plots=False,
        )
    elif state == "finished":
        log.info("training in %s had finished before the interruption; using its best.pt", run_dir)
        finish_checkpoints(run_dir / "weights", run_dir.parents[1])  # <state>/train/<fingerprint>
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        yolo_cls(_start_point(params, run_dir, weights)).train(**_train_kwargs(params, data_yaml, run_dir))
    best = run_dir / "weights" / "best.pt"
    if not best.exists():
        raise RuntimeError(f"ultralytics finished without writing {best}")
    return {
        "fingerprint": fingerprint,
        "resumed": state != "fresh",
        "train_seconds_last_session": round(time.perf_counter() - start, 2),
    }


def _start_point(params: TrainParams, run_dir: Path, weights: bytes | None) -> str:
    """What training starts from: the model yaml, or ``<run>/init.pt`` holding exactly the hashed bytes.

    The copy also has a name ultralytics never rewrites (it swaps ``yolov5n.pt`` for ``yolov5nu.pt``).
    """
    if weights is None:
        return params.model
    init = run_dir / "init.pt"
    init.parent.mkdir(parents=True, exist_ok=True)
    init.write_bytes(weights)
    try:
        load_checkpoint_dict(init)  # restricted: a checkpoint that names anything else is refused, not run
    except ValueError as exc:
        raise ValueError(f"params.yaml: train.model: {params.model} is refused: {exc}") from None
    return str(init)
