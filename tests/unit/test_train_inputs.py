"""What training loads is what it hashes (issue 12, defects 2 and 8).

2. ultralytics' ``check_yolov5u_filename`` silently turned ``yolov5n.pt`` into ``yolov5nu.pt`` and
   loaded that file (or tried a download), while the run fingerprint hashed the file the user named.
8. The dataset fingerprint hashed image *sizes*: changed pixels of the same size reused a stale run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("ultralytics")


def _save(yolo, path: Path, nc: int) -> Path:
    from ultralytics.nn.tasks import DetectionModel

    model = yolo("yolov5n.yaml")
    model.model = DetectionModel("yolov5n.yaml", nc=nc, verbose=False)
    model.save(path)
    return path


@pytest.fixture
def yolo(tmp_path):
    from edgeproof.training.ultralytics_env import configure

    return configure(tmp_path / "state")


def test_yolov5n_pt_is_loaded_not_yolov5nu_pt(yolo, tmp_path):
    named = _save(yolo, tmp_path / "yolov5n.pt", nc=2)
    _save(yolo, tmp_path / "yolov5nu.pt", nc=5)
    model = yolo(str(named))
    assert Path(model.ckpt_path) == named
    assert model.model.yaml["nc"] == 2


def test_a_missing_sibling_is_never_downloaded(yolo, tmp_path, monkeypatch):
    from ultralytics.utils import downloads

    calls = []
    monkeypatch.setattr(downloads, "safe_download", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(downloads, "get_github_assets", lambda *a, **k: calls.append((a, k)) or ("", []))
    named = _save(yolo, tmp_path / "yolov5s.pt", nc=3)
    model = yolo(str(named))
    assert Path(model.ckpt_path) == named and model.model.yaml["nc"] == 3
    assert calls == []


def test_a_missing_weights_file_is_refused_without_a_download(yolo, tmp_path, monkeypatch):
    from ultralytics.utils import downloads

    calls = []
    monkeypatch.setattr(downloads, "safe_download", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(downloads, "get_github_assets", lambda *a, **k: calls.append((a, k)) or ("", []))
    with pytest.raises(Exception, match="never downloads"):
        yolo(str(tmp_path / "yolov8n.pt"))
    assert calls == []


def test_training_loads_the_bytes_it_hashed(yolo, tmp_path, monkeypatch):
    """The fine-tuning start point is a copy of exactly the bytes in the fingerprint (``init.pt``)."""
    from edgeproof.training import train as train_mod
    from edgeproof.training.params import TrainParams

    (tmp_path / "weights").mkdir()
    named = _save(yolo, tmp_path / "weights" / "yolov5n.pt", nc=2)
    _save(yolo, tmp_path / "weights" / "yolov5nu.pt", nc=5)
    monkeypatch.chdir(tmp_path)  # train.model is a path under weights/, relative to the repo root
    loaded: list[Path] = []

    class Recorder:
        def __init__(self, source: str) -> None:
            loaded.append(Path(source))

        def train(self, **kwargs):
            raise SystemExit("stop before training")

    params = TrainParams(model="weights/yolov5n.pt")
    monkeypatch.setattr(train_mod, "private_view", lambda data, view: view / "data.yaml")
    with pytest.raises(SystemExit):
        train_mod._run(Recorder, params, tmp_path, tmp_path / "run", "fp", named.read_bytes())
    assert loaded == [tmp_path / "run" / "init.pt"]
    assert loaded[0].read_bytes() == named.read_bytes()


def _dataset(root: Path) -> Path:
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        (root / "images" / split / "a.jpg").write_bytes(bytes(range(200)) * 10)
        (root / "labels" / split / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "annotations").mkdir()
    (root / "annotations" / "val.json").write_text("{}")
    (root / "meta.json").write_text('{"names": ["a"]}')
    return root


def test_dataset_fingerprint_sees_changed_pixels_of_the_same_size(tmp_path):
    from edgeproof.training.train import dataset_fingerprint

    root = _dataset(tmp_path / "prepared")
    before = dataset_fingerprint(root)
    image = root / "images" / "train" / "a.jpg"
    data = bytearray(image.read_bytes())
    data[100] ^= 0xFF  # one changed byte, same size, same name
    image.write_bytes(bytes(data))
    assert dataset_fingerprint(root) != before


def test_dataset_fingerprint_ignores_evaluation_ground_truth_only(tmp_path):
    from edgeproof.training.train import dataset_fingerprint

    root = _dataset(tmp_path / "prepared")
    before = dataset_fingerprint(root)
    (root / "annotations" / "val.json").write_text('{"changed": 1}')  # not read by training
    assert dataset_fingerprint(root) == before
    (root / "labels" / "val" / "a.txt").write_text("0 0.5 0.5 0.3 0.3\n")
    assert dataset_fingerprint(root) != before


def test_a_missing_model_file_names_the_weights_folder():
    """Diff review finding 8: the message said to place the .pt "in the repo", but params.yaml accepts one only
    under weights/."""
    from edgeproof.training import train as train_mod
    from edgeproof.training.params import TrainParams

    with pytest.raises(FileNotFoundError, match=r"'weights/none\.pt' is not a local file.*under weights/"):
        train_mod._check_model_source(TrainParams(model="weights/none.pt"))
