"""The data stage records what each prepared split is (sha256 of its annotation file, image and label files) in
metrics/data.json, so the build gate can hold data/prepared to it (tests/unit/test_val_identity.py)."""

from __future__ import annotations

import json
from pathlib import Path

from edgeproof.data.identity import DIGEST_KEYS, split_digests
from tests.data.builders import clean_coco
from tests.data.test_params_and_stage import SRC, _run_stage, _write_params


def _report(root: Path) -> dict:
    return json.loads((root / "metrics/data.json").read_text())


def test_the_data_report_records_each_split_s_digests_of_the_files_as_written(tmp_path):
    clean_coco(tmp_path / SRC)
    coco = {"images": f"{SRC}/train", "annotations": f"{SRC}/annotations/instances_train.json"}
    _write_params(tmp_path, {"source": "coco", "val_fraction": 0.34, "coco": coco})
    assert _run_stage(tmp_path) == 0
    prepared, splits = tmp_path / "data/prepared", _report(tmp_path)["splits"]
    for split in ("train", "val"):
        assert {k: splits[split][k] for k in DIGEST_KEYS} == split_digests(prepared, split)
    assert splits["val"]["images"] == 2  # the counts stay beside them
    before = split_digests(prepared, "val")
    gt = json.loads((prepared / "annotations/val.json").read_text())
    gt["annotations"] = gt["annotations"][:-1]  # one val box gone
    (prepared / "annotations/val.json").write_text(json.dumps(gt))
    label = sorted((prepared / "labels/val").iterdir())[0]
    label.write_text(label.read_text() + "0 0.5 0.5 0.1 0.1\n")  # one box added
    image = sorted((prepared / "images/val").iterdir())[0]
    data = bytearray(image.read_bytes())
    data[-3] ^= 0xFF  # same name, same size, other bytes
    image.unlink()  # a hard link to the source: replace it rather than write through
    image.write_bytes(bytes(data))
    after = split_digests(prepared, "val")
    assert all(after[k] != before[k] for k in DIGEST_KEYS)


def test_the_synthetic_data_report_records_the_digests_and_a_rerun_writes_the_same(tmp_path):
    _write_params(tmp_path, {"synthetic": {"n_train": 4, "n_val": 3, "image_size": 64}})
    assert _run_stage(tmp_path) == 0
    first = _report(tmp_path)
    assert {k: first["splits"]["val"][k] for k in DIGEST_KEYS} == split_digests(tmp_path / "data/prepared", "val")
    assert _run_stage(tmp_path) == 0
    assert _report(tmp_path) == first  # byte-identical output: CI may re-derive val (dvc repro -f -s data)
