"""The best epoch comes from best.pt's own metrics, not from a re-derived ultralytics rule (issue 8, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproof.training.results import best_from_checkpoint, curve_csv, read_results_csv, training_metrics

torch = pytest.importorskip("torch")
pytest.importorskip("ultralytics")

HEADER = (
    "epoch,time,train/box_loss,metrics/precision(B),metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss"
)
# epoch 3 and epoch 4 tie on mAP50-95; epoch 4 has the better mAP50 (ultralytics' fitness formula has
# weighted mAP50 in some releases, not in others), so which one is "best" is the checkpoint's to say.
ROWS = [
    "1,10.5,3.1,0.1,0.2,0.3,0.1,2.9",
    "2,21.0,2.5,0.5,0.5,0.6,0.4,2.1",
    "3,31.4,2.0,0.812345,0.7,0.9,0.654321,1.5",
    "4,42.0,1.9,0.8,0.71,0.95,0.654321,1.45",
]


def _run(tmp_path: Path, saved_epoch: int | None, metrics: dict | None = None) -> tuple[Path, list]:
    (tmp_path / "results.csv").write_text("\n".join([HEADER, *ROWS]) + "\n")
    curve = read_results_csv(tmp_path / "results.csv")
    if metrics is None:
        row = curve[saved_epoch - 1]
        # full precision in the checkpoint, %.6g in results.csv
        metrics = {
            "metrics/precision(B)": row["precision"] + 4e-9,
            "metrics/recall(B)": row["recall"],
            "metrics/mAP50(B)": row["map50"],
            "metrics/mAP50-95(B)": row["map50_95"] - 3e-9,
            "val/box_loss": row["val_box_loss"],
            "fitness": 123.0,
        }
    best = tmp_path / "weights" / "best.pt"
    best.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": -1, "model": None, "train_metrics": metrics}, best)
    return best, curve


@pytest.mark.parametrize("saved_epoch", [3, 4, 2])
def test_best_epoch_is_the_one_the_checkpoint_holds(tmp_path, saved_epoch):
    best, curve = _run(tmp_path, saved_epoch)
    found = best_from_checkpoint(best, curve)
    assert found["epoch"] == saved_epoch
    assert found["metrics"]["map50_95"] == curve[saved_epoch - 1]["map50_95"]
    assert found["metrics"]["precision"] == curve[saved_epoch - 1]["precision"]


def test_training_metrics_report(tmp_path):
    best, curve = _run(tmp_path, 3)
    metrics = training_metrics(best, curve, {"resumed": True, "fingerprint": "abc"})
    assert metrics["epochs"] == 4 and metrics["best_epoch"] == 3 and metrics["resumed"] is True
    assert metrics["best"] == {"map50": 0.9, "map50_95": 0.654321, "precision": 0.812345, "recall": 0.7}
    assert metrics["final"]["map50"] == 0.95 and metrics["train_seconds"] == 42.0


def test_no_matching_epoch_is_reported_as_unknown(tmp_path):
    best, curve = _run(tmp_path, None, {"metrics/mAP50-95(B)": 0.99})
    assert best_from_checkpoint(best, curve) == {"epoch": None, "metrics": {"map50_95": 0.99}}


def test_a_checkpoint_without_metrics_is_a_clear_error(tmp_path):
    best, curve = _run(tmp_path, None, {})
    with pytest.raises(ValueError, match=r"best\.pt: the checkpoint carries no validation metrics"):
        best_from_checkpoint(best, curve)


def test_curve_csv_keeps_the_plot_columns(tmp_path):
    _, curve = _run(tmp_path, 3)
    lines = curve_csv(curve).splitlines()
    assert lines[0] == "epoch,map50,map50_95,precision,recall,train_box_loss,val_box_loss,time"
    assert lines[3].startswith("3,0.9,0.654321,0.812345,0.7,")
