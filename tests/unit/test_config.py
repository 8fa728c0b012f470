"""params.yaml validation: unknown keys, wrong types and out-of-range values name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgeproof.config import Params, ParamsError, load_params, parse_params

REPO = Path(__file__).resolve().parents[2]


def test_repo_params_file_is_valid_and_complete():
    params = load_params(REPO / "params.yaml")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    # every section of the schema is spelled out in the shipped file, so users see every knob
    assert set(raw) == set(Params.model_fields)
    assert params.data.source == "synthetic"


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({"train": {"epochs": 0}}, "train.epochs", "greater than or equal to 1"),
        ({"train": {"epoch": 3}}, "train.epoch", "did you mean 'epochs'"),
        ({"trian": {}}, "trian", "did you mean 'train'"),
        ({"profiles": {"p": {"gate": {"min_fps": "fast"}}}}, "profiles.p.gate.min_fps", "expected a number"),
        ({"train": {"imgsz": 100}}, "train.imgsz", "multiple of 32"),
        ({"train": {"epochs": True}}, "train.epochs", "valid integer"),
        ({"train": {"device": "gpu"}}, "train.device", "'cpu'"),
        ({"profiles": {"p": {"gate": {"min_map50": 1.5}}}}, "profiles.p.gate.min_map50", "must be <= 1.0"),
        ({"gate": {"min_fps": 10.0}}, "gate", "unknown key"),  # the thresholds' one home is profiles.<name>.gate
        ({"optimize": {"graph_optimization": "max"}}, "optimize.graph_optimization", "'basic'"),
        ({"benchmark": {"providers": []}}, "benchmark.providers", "at least 1"),
    ],
)
def test_bad_values_name_the_key(raw, key, fragment):
    with pytest.raises(ParamsError) as exc:
        parse_params(raw, source="params.yaml")
    message = str(exc.value)
    assert f"params.yaml: {key}:" in message
    assert fragment in message


def test_every_error_is_reported_at_once():
    with pytest.raises(ParamsError) as exc:
        parse_params({"train": {"epochs": -1, "batch": 0}})
    assert "train.epochs" in str(exc.value) and "train.batch" in str(exc.value)


def test_missing_and_malformed_files_name_the_file(tmp_path):
    with pytest.raises(ParamsError, match=r"nope\.yaml: file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match=r"bad\.yaml: not valid YAML"):
        load_params(bad)
    top = tmp_path / "list.yaml"
    top.write_text("- a\n- b\n")
    with pytest.raises(ParamsError, match="expected a mapping"):
        load_params(top)


def test_defaults_fill_missing_sections():
    params = parse_params({"profiles": {"cpu-ci": {"gate": {"min_fps": 25}}}})
    assert params.profiles["cpu-ci"].gate.min_fps == 25.0
    assert params.train.imgsz == 256
    assert params.benchmark.providers == ["CPUExecutionProvider"]


def test_gpu_index_may_be_an_int_and_floats_may_use_exponents(tmp_path):
    assert parse_params({"train": {"device": 0}}).train.device == "0"
    assert parse_params({"train": {"device": "0,1"}}).train.device == "0,1"
    with pytest.raises(ParamsError, match=r"train\.device"):
        parse_params({"train": {"device": True}})
    path = tmp_path / "p.yaml"
    path.write_text("train:\n  lr0: 1e-3\n  device: 0\nprofiles:\n  cpu-ci:\n    gate:\n      min_fps: 2E1\n")
    params = load_params(path)
    assert params.train.lr0 == pytest.approx(0.001)
    assert params.profiles["cpu-ci"].gate.min_fps == 20.0


def test_a_build_profile_missing_from_profiles_fails_validation_naming_the_profiles(tmp_path, caplog):
    from edgeproof.cli import main

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["release"]["build_profile"] = "jetsn-nano"  # a typo: caught by `edgeproof params`, not by the gate
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    want = f"{path}: release.build_profile: 'jetsn-nano' is not in profiles (available: cpu-ci, jetson-nano, "
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert str(err.value).startswith(want)
    assert main(["--params", str(path), "params"]) == 2 and want in caplog.text
    raw["release"]["build_profile"] = "jetson-nano"
    path.write_text(yaml.safe_dump(raw))
    assert load_params(path).release.build_profile == "jetson-nano"


@pytest.mark.parametrize(
    ("section", "key", "home"),
    [
        (None, "gate", "profiles.<release.build_profile>.gate"),
        ("benchmark", "conf", "deploy.conf"),
        ("evaluate", "plots", "the plots section"),
    ],
)
def test_a_key_older_params_have_says_where_it_moved(section, key, home):
    """upgrade12 review: an older params.yaml's moved keys got "unknown key" with no hint where they went."""
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    (raw if section is None else raw[section])[key] = {"min_fps": 10} if key == "gate" else 0.25
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert f"{key}: unknown key: moved to {home}" in str(err.value)
