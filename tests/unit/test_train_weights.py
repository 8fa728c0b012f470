"""Replacing the fine-tuning checkpoint retrains (docs review, finding 1).

docs/data.md says: put the ``.pt`` in the repo, name it in ``train.model``, ``dvc repro``. The train
stage's deps did not include that file, so overwriting it left ``dvc status train`` clean and the
old model shipped. Now the train stage depends on ``weights/`` and a ``.pt`` anywhere else is refused
when params.yaml is loaded, naming the key.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from edgeproof.config import ParamsError, parse_params

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", ["/abs/weights/yolov5nu.pt", "yolov5nu.pt", "models/x.pt", "weights/../x.pt"])
def test_a_pt_outside_the_weights_folder_is_refused_naming_the_key(model):
    with pytest.raises(ParamsError, match=r"train\.model: .*must lie under weights/"):
        parse_params({"train": {"model": model}})


@pytest.mark.parametrize("model", ["weights/yolov5nu.pt", "./weights/sub/ft.pt", "yolov5n.yaml", "cfg/my.yml"])
def test_a_pt_in_the_weights_folder_or_a_model_yaml_is_accepted(model):
    assert parse_params({"train": {"model": model}}).train.model == model


def test_the_train_stage_depends_on_the_weights_folder_and_it_exists_in_git():
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]
    deps = [next(iter(d)) if isinstance(d, dict) else d for d in stage["deps"]]
    assert "weights" in deps
    tracked = subprocess.run(
        ["git", "ls-files", "weights"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "weights/ must exist in a fresh clone, or dvc repro fails on a missing dep"
