"""The pydantic-free strict settings (deploy, profiles): same promises as the rest of params.yaml."""

from __future__ import annotations

import pytest

from edgeproof.config import ParamsError, parse_params
from edgeproof.profiles import parse_profiles
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.settings import SettingsError


def test_deploy_defaults_and_values():
    assert DeploySettings.parse({}) == DeploySettings()
    with pytest.raises(SettingsError, match=r"^deploy: empty \(null\)"):  # as a null pydantic section is refused
        DeploySettings.parse(None)
    got = DeploySettings.parse({"conf": 0.3, "iou": 0.5, "max_det": 10, "agnostic": True})
    assert (got.conf, got.iou, got.max_det, got.agnostic) == (0.3, 0.5, 10, True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"conf": 1.5}, "deploy.conf: must be < 1.0"),
        ({"iou": float("inf")}, "deploy.iou: must be a finite number"),
        ({"iou": float("nan")}, "deploy.iou: must be a finite number"),
        ({"max_det": True}, "deploy.max_det: expected an integer"),
        ({"max_det": 2**70}, "deploy.max_det: integer out of range"),
        ({"agnostic": "yes"}, "deploy.agnostic: expected true or false"),
        ({"cnof": 0.1}, "deploy.cnof: unknown key; did you mean 'conf'?"),
        ([1, 2], "deploy: expected a mapping"),
    ],
)
def test_deploy_rejects_with_the_key_named(raw, message):
    with pytest.raises(SettingsError, match=message.replace("?", r"\?").replace("(", r"\(")):
        DeploySettings.parse(raw)


def test_params_embed_the_device_sections_and_name_the_file():
    params = parse_params({"deploy": {"conf": 0.4}, "profiles": {"cpu-ci": {"batch": 2}}})
    assert params.deploy.conf == 0.4
    assert params.profiles["cpu-ci"].batch == 2
    with pytest.raises(ParamsError, match=r"^params.yaml: profiles.cpu-ci.gate.min_fps: must be a finite number"):
        parse_params({"profiles": {"cpu-ci": {"gate": {"min_fps": float("inf")}}}})
    with pytest.raises(ParamsError, match=r"^params.yaml: deploy.iou: must be > 0.0"):
        parse_params({"deploy": {"iou": 0}})


def test_profiles_parse_nested_lists_and_refuse_bad_names():
    profiles = parse_profiles(
        {"orin": {"providers": [{"name": "TensorrtExecutionProvider", "options": {"trt_fp16_enable": True}}]}}
    )
    assert profiles["orin"].provider_names == ("TensorrtExecutionProvider",)
    with pytest.raises(SettingsError, match=r"profiles.orin.providers\[0\].name: expected a string"):
        parse_profiles({"orin": {"providers": [{"name": 3}]}})
    with pytest.raises(SettingsError, match="profile names"):
        parse_profiles({"bad name!": {}})
    with pytest.raises(SettingsError, match=r"profiles\.x\.variant: must be one of"):
        parse_profiles({"x": {"variant": "fp8"}})


def test_committed_params_have_the_three_shipped_profiles():
    from edgeproof.config import load_params
    from tests.conftest import REPO

    params = load_params(REPO / "params.yaml")
    assert {"cpu-ci", "jetson-nano", "jetson-orin-nano"} <= set(params.profiles)
    assert params.profiles["jetson-nano"].provider_names[0] == "TensorrtExecutionProvider"
