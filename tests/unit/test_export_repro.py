"""Bit-reproducible export (issue 12): the same weights give the same model.onnx, wherever they were trained.

ultralytics writes the export time (``date``) and ``description: ... trained on /abs/path/data.yaml``
into the ONNX ``metadata_props``, and edgeproof recorded the sha256 of the checkpoint file, whose
bytes carry ultralytics' save time; so two clean clones produced different model.onnx digests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("ultralytics")

from edgeproof.io import sha256_file  # noqa: E402
from edgeproof.training.export import export_onnx  # noqa: E402
from edgeproof.training.ultralytics_env import configure  # noqa: E402


def _checkpoint(folder: Path, state: Path) -> Path:
    """A yolov5n checkpoint with seeded weights, saved (with ultralytics' save time) in ``folder``,
    trained "on" a data yaml in that folder, as a real best.pt is."""
    yolo = configure(state)
    torch.manual_seed(0)
    model = yolo("yolov5n.yaml")
    model.ckpt = {"train_args": {"data": str(folder / "data" / "data.yaml"), "imgsz": 64}}
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "best.pt")
    return folder / "best.pt"


def test_two_folders_export_the_same_bytes(tmp_path):
    a, b = tmp_path / "clone-a" / "home" / "alice", tmp_path / "clone-b"
    pa, pb = _checkpoint(a, a / ".edgeproof"), _checkpoint(b, b / ".edgeproof")
    assert sha256_file(pa) != sha256_file(pb)  # same weights, different checkpoint bytes (save time)
    for folder, pt in ((a, pa), (b, pb)):
        export_onnx(pt, folder / "model.onnx", 64, 17, True, folder / ".edgeproof")
    assert sha256_file(a / "model.onnx") == sha256_file(b / "model.onnx")

    meta = {p.key: p.value for p in onnx.load(str(a / "model.onnx")).metadata_props}
    assert "date" not in meta
    assert "trained on" not in meta["description"]
    assert not [k for k, v in meta.items() if str(tmp_path) in v or "/home/" in v], meta
    assert len(meta["edgeproof_weights_sha256"]) == 64
    assert {"stride", "names", "imgsz", "task"} <= set(meta)  # what ultralytics and the runtime read


def test_published_checkpoint_drops_save_time_and_local_paths(tmp_path):
    """best.pt as the train stage publishes it: two saves of the same weights, in two state folders,
    at two times, give the same bytes, carry no local path, and still load."""
    from edgeproof.training.checkpoint import reproducible_checkpoint

    blobs = []
    for name in ("a", "b/c"):
        state = tmp_path / name / ".edgeproof"
        pt = _checkpoint(state / "train" / "run" / "weights", state)  # train_args.data under the state folder
        blobs.append(reproducible_checkpoint(pt, state))
    assert blobs[0] == blobs[1]
    assert str(tmp_path).encode() not in blobs[0]
    (tmp_path / "best.pt").write_bytes(blobs[0])
    model = configure(tmp_path / "state")(str(tmp_path / "best.pt"))
    assert model.model.args["data"] == "<state>/train/run/weights/data/data.yaml"


def test_published_checkpoint_does_not_depend_on_which_equal_strings_are_one_object(tmp_path):
    """A pickle stores a string once and refers back to it wherever the same object recurs, so its bytes
    tell apart two equal strings that are one object from two that are not. Which ones are depends on the
    process's history, not on the checkpoint: ultralytics sets ``yaml_file`` to ``str(Path(cfg))``, and
    pathlib interns path parts, so it is the very ``model.args["model"]`` string unless an equal one was
    interned earlier in the process (the full suite once published different bytes so). The same
    checkpoint, saved both ways, must publish the same bytes."""
    from edgeproof.training.checkpoint import reproducible_checkpoint

    state = tmp_path / ".edgeproof"
    torch.manual_seed(0)
    model = configure(state)("yolov5n.yaml")
    model.ckpt = {"train_args": {"imgsz": 64}}
    yaml_file = model.model.yaml["yaml_file"]
    blobs = []
    for name, value in (("one", yaml_file), ("two", "".join(list(yaml_file)))):  # the same string, or an equal one
        assert (value is yaml_file) == (name == "one") and value == "yolov5n.yaml"
        model.model.args["model"] = value
        (tmp_path / name).mkdir()
        model.save(tmp_path / name / "best.pt")
        blobs.append(reproducible_checkpoint(tmp_path / name / "best.pt", state))
    assert blobs[0] == blobs[1]


@pytest.mark.parametrize("train_args", [{"imgsz": 64}, {}])
def test_weights_not_trained_at_the_export_size_are_refused_naming_both(tmp_path, train_args):
    """Review finding 7: best.pt trained at 64 exported at 96 (train.imgsz) passed export and parity."""
    state = tmp_path / ".edgeproof"
    yolo = configure(state)
    model = yolo("yolov5n.yaml")
    model.ckpt = {"train_args": train_args}
    model.save(tmp_path / "best.pt")
    found = "train_args.imgsz 64" if train_args else "no train_args.imgsz"
    with pytest.raises(ValueError, match=rf"best\.pt: (was trained at|has) {found}.*train\.imgsz 96"):
        export_onnx(tmp_path / "best.pt", tmp_path / "model.onnx", 96, 17, True, state)
    assert not (tmp_path / "model.onnx").exists()
