"""Loading a ``.pt`` never runs code from it (issue 12, defect 1).

A crafted checkpoint whose unpickling writes a file must be refused wherever edgeproof hands a
``.pt`` to ultralytics: the user's ``train.model``, the resume file ``last.pt`` and ``models/best.pt``
(``YOLO(path)`` / ``load_checkpoint``), ultralytics' own ``strip_optimizer`` at the end of training,
and edgeproof's own reader of the checkpoint's metrics.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ultralytics")


class _Payload:
    """Unpickling this calls ``Path(marker).write_text('pwned')``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _crafted(tmp_path: Path, name: str = "evil.pt") -> tuple[Path, Path]:
    marker = tmp_path / "marker.txt"
    path = tmp_path / name
    torch.save({"model": _Payload(marker), "epoch": 3, "train_args": {}}, path)
    assert not marker.exists()
    return path, marker


@pytest.fixture
def yolo(tmp_path):
    from edgeproof.training.ultralytics_env import configure

    return configure(tmp_path / "state")


def test_yolo_refuses_a_crafted_checkpoint(yolo, tmp_path):
    path, marker = _crafted(tmp_path)
    with pytest.raises(Exception):  # noqa: B017 - ultralytics' own TypeError; what matters is the marker
        yolo(str(path))
    assert not marker.exists(), "unpickling the checkpoint ran its code"


def test_ultralytics_strip_optimizer_refuses_a_crafted_checkpoint(yolo, tmp_path):
    from ultralytics.utils.torch_utils import strip_optimizer

    path, marker = _crafted(tmp_path, "best.pt")
    assert strip_optimizer(path) == {}  # ultralytics logs "not a valid Ultralytics model" and skips it
    assert not marker.exists(), "ultralytics' end-of-training strip unpickled the checkpoint unsafely"


def test_resume_check_treats_a_crafted_last_pt_as_unusable(yolo, tmp_path):
    from edgeproof.training.train import checkpoint_state

    run_dir = tmp_path / "run"
    (run_dir / "weights").mkdir(parents=True)
    path, marker = _crafted(tmp_path)
    path.replace(run_dir / "weights" / "last.pt")
    state, model = checkpoint_state(yolo, run_dir, epochs=10)
    assert (state, model) == ("fresh", None)
    assert not marker.exists()


def test_a_real_checkpoint_still_loads(yolo, tmp_path):
    """A model saved the way ultralytics saves it (full module pickle) loads with weights_only."""
    model = yolo("yolov5n.yaml")
    path = tmp_path / "saved.pt"
    model.save(path)
    loaded = yolo(str(path))
    assert sum(p.numel() for p in loaded.model.parameters()) == sum(p.numel() for p in model.model.parameters())


def test_edgeproofs_own_checkpoint_reader_refuses_a_crafted_checkpoint(tmp_path):
    from edgeproof.training.checkpoint import load_checkpoint_dict

    path, marker = _crafted(tmp_path, "best.pt")
    with pytest.raises(ValueError, match=r"best\.pt: not a loadable ultralytics checkpoint"):
        load_checkpoint_dict(path, tmp_path / "state")
    assert not marker.exists()


def test_a_crafted_train_model_is_refused_with_the_key_named(yolo, tmp_path, monkeypatch):
    from edgeproof.training import train as train_mod
    from edgeproof.training.params import TrainParams

    (tmp_path / "weights").mkdir()
    path, marker = _crafted(tmp_path, "weights/ft.pt")
    monkeypatch.chdir(tmp_path)  # train.model is a path under weights/, relative to the repo root
    monkeypatch.setattr(train_mod, "private_view", lambda data, view: view / "data.yaml")
    with pytest.raises(ValueError, match=r"train\.model: weights/ft\.pt is refused: .*not a loadable"):
        train_mod._run(yolo, TrainParams(model="weights/ft.pt"), tmp_path, tmp_path / "run", "fp", path.read_bytes())
    assert not marker.exists()


def test_ultralytics_leaves_pillow_open_alone(tmp_path):
    """ultralytics patches PIL.Image.open to import pi_heif on an unreadable file; after configure(),
    a corrupt image is Pillow's clean error again (edgeproof's loader names the file)."""
    from edgeproof.runtime.preprocess import load_image
    from edgeproof.training.ultralytics_env import configure

    configure(tmp_path)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"junk\.jpg: unreadable image"):
        load_image(junk)
