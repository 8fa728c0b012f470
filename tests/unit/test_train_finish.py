"""A run killed after its last epoch's checkpoints, before ultralytics' clean-up, publishes what an
uninterrupted run publishes (review finding 5).

ultralytics saves ``last.pt``/``best.pt`` every epoch as full trainer checkpoints (optimizer, EMA,
scaler), and only ``Trainer.final_eval`` strips them. A SIGKILL between the two left the full
checkpoint; the rerun took the "finished" branch and published it as ``models/best.pt`` (25 MB,
epoch 3, vs 5 MB, epoch -1; the same weights, other bytes). Here a crafted run in that state goes
through the train stage's finished branch and is compared with ultralytics' own ``final_eval``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ultralytics")

from edgeproof.training import train  # noqa: E402
from edgeproof.training.checkpoint import load_checkpoint_dict, reproducible_checkpoint  # noqa: E402
from edgeproof.training.params import TrainParams  # noqa: E402
from edgeproof.training.ultralytics_env import configure  # noqa: E402

EPOCHS = 4


def _trainer_checkpoint(path: Path, epoch: int, results: dict) -> None:
    """What ``Trainer.save_model`` writes after an epoch: EMA in fp16, optimizer state, no ``model``."""
    from ultralytics.cfg import DEFAULT_CFG_DICT
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    model = DetectionModel("yolov5n.yaml", nc=2, verbose=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for param in model.parameters():
        param.grad = torch.full_like(param, 1e-3)
    optimizer.step()  # momentum buffers: the bulk of a trainer checkpoint
    ckpt = {
        "epoch": epoch,
        "best_fitness": 0.5,
        "stopper": {"best_fitness": 0.5, "best_epoch": epoch},
        "model": None,
        "ema": model.half(),
        "updates": 40,
        "optimizer": optimizer.state_dict(),
        "scaler": {},
        "train_args": {**DEFAULT_CFG_DICT, "epochs": EPOCHS, "imgsz": 64, "save_dir": str(path.parents[1])},
        "train_metrics": {"metrics/mAP50-95(B)": 0.5, "fitness": 0.5},
        "train_results": results,
        "date": "2024-01-01T00:00:00",
        "version": "8",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)


def _killed_before_clean_up(run_dir: Path) -> Path:
    """A run whose best epoch was 2 and whose last epoch (3) was saved, then killed before ``final_eval``."""
    weights = run_dir / "weights"
    _trainer_checkpoint(weights / "best.pt", 2, {"epoch": [1, 2, 3]})
    _trainer_checkpoint(weights / "last.pt", EPOCHS - 1, {"epoch": [1, 2, 3, 4]})
    (run_dir / "results.csv").write_text("epoch,time\n1,1\n2,2\n3,3\n4,4\n")
    return weights


def _final_eval(weights: Path) -> None:
    """ultralytics' own ``BaseTrainer.final_eval`` on ``weights`` (its validation stubbed out)."""
    from ultralytics.engine.trainer import BaseTrainer

    class Validator:
        args = SimpleNamespace()

        def __call__(self, model):
            return {}

    trainer = SimpleNamespace(
        best=weights / "best.pt",
        last=weights / "last.pt",
        validator=Validator(),
        args=SimpleNamespace(plots=False),
        epoch=EPOCHS - 1,
        run_callbacks=lambda event: None,
    )
    BaseTrainer.final_eval(trainer)


def test_the_finished_branch_publishes_what_an_uninterrupted_run_publishes(tmp_path, monkeypatch):
    state = tmp_path / "state"
    yolo = configure(state)
    killed = _killed_before_clean_up(state / "train" / "killed")
    uninterrupted = _killed_before_clean_up(state / "train" / "whole")
    _final_eval(uninterrupted)
    assert load_checkpoint_dict(killed / "best.pt", state)["optimizer"] is not None  # the crafted kill

    monkeypatch.setattr(train, "private_view", lambda *a, **kw: tmp_path / "data.yaml")
    params = TrainParams(epochs=EPOCHS)
    summary = train._run(yolo, params, tmp_path / "data", killed.parent, "killed", None)
    assert summary["resumed"] is True  # the finished branch: nothing was trained

    best = load_checkpoint_dict(killed / "best.pt", state)
    assert best["epoch"] == -1 and best["optimizer"] is None and best["ema"] is None
    assert best["train_results"] == {"epoch": [1, 2, 3, 4]}  # last.pt's, as ultralytics updates it
    published = reproducible_checkpoint(killed / "best.pt", state)
    assert published == reproducible_checkpoint(uninterrupted / "best.pt", state)
    assert not list(killed.glob("*.partial"))

    # finished and cleaned up already: the rerun leaves the files as they are
    shutil.copy(killed / "best.pt", tmp_path / "before.pt")
    train._run(yolo, params, tmp_path / "data", killed.parent, "killed", None)
    assert (killed / "best.pt").read_bytes() == (tmp_path / "before.pt").read_bytes()
