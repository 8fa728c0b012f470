"""Two clean clones of the same commit give the same digests (issue 12, bit-reproducible artifacts).

Two copies of the project in different folders run data -> train -> export -> optimize on tiny
params: the dataset, best.pt (published without ultralytics' save time, epoch wall-clock times and
absolute paths), the weights' digest, model.onnx and the fp32 release candidate must be byte-identical,
and no shipped file may carry the local folder.
"""

from __future__ import annotations

import sys

import pytest

from edgeproof.io import sha256_file
from edgeproof.training.train import dataset_fingerprint
from tests.pipeline.repo_copy import make_repo, run

pytestmark = pytest.mark.pipeline

STAGES = [
    ["stages.data", "--out", "data/prepared", "--metrics", "metrics/data.json"],
    ["stages.train", "--data", "data/prepared", "--model", "models/best.pt", "--metrics", "metrics/train.json"],
    ["stages.export", "--weights", "models/best.pt", "--out", "models/model.onnx", "--metrics", "metrics/export.json"],
    ["stages.optimize", "--model", "models/model.onnx", "--weights", "models/best.pt", "--data", "data/prepared"],
]


def _digests(root) -> dict[str, str]:
    import onnx

    for args in STAGES:
        extra = ["--curve", "plots/train/curve.csv"] if args[0] == "stages.train" else []
        if args[0] == "stages.optimize":
            extra += ["--out", "models/optimized", "--metrics", "metrics/optimize.json"]
            extra += ["--parity", "metrics/parity.json"]
        proc = run([sys.executable, "-m", *args, *extra], root)
        assert proc.returncode == 0, f"{args[0]}: {proc.stderr[-3000:]}"
    meta = {p.key: p.value for p in onnx.load(str(root / "models/model.onnx")).metadata_props}
    return {
        "dataset": dataset_fingerprint(root / "data/prepared"),
        "best.pt": sha256_file(root / "models/best.pt"),
        "weights": meta["edgeproof_weights_sha256"],
        "model.onnx": sha256_file(root / "models/model.onnx"),
        **{f"{v}.onnx": sha256_file(root / f"models/optimized/{v}.onnx") for v in ("fp32", "fp16", "int8", "int8_trt")},
    }


def test_two_clones_give_the_same_digests(tmp_path):
    a = _digests(make_repo(tmp_path / "a" / "repo", {"train": {"epochs": 2}}))
    b = _digests(make_repo(tmp_path / "b" / "somewhere" / "else" / "repo", {"train": {"epochs": 2}}))
    assert a == b
    for shipped in ("models/best.pt", "models/model.onnx", "models/optimized/fp32.onnx"):
        assert str(tmp_path).encode() not in (tmp_path / "a" / "repo" / shipped).read_bytes(), shipped
