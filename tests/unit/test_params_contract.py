"""Settings that passed ``edgeproof params`` but made a stage compute or release the wrong thing (review
of the settings contract): each is now refused when params.yaml is loaded, naming the key(s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeproof.config import ParamsError, load_params, parse_params

REPO = Path(__file__).resolve().parents[2]


def _repo_params(**changes: Any) -> dict[str, Any]:
    """The committed params.yaml with ``section={key: value}`` changes merged in (one level deep)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in changes.items():
        raw[section] = {**raw[section], **values} if values else values
    return raw


def _refused(raw: dict[str, Any]) -> str:
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    return str(err.value)


def test_the_committed_params_still_load():
    params = load_params(REPO / "params.yaml")
    assert params.release.build_profile in params.profiles


def test_the_candidate_alias_may_not_be_the_champion_alias():
    """Finding 1: ``candidate_alias: champion`` let a passing pull request or experiment move the champion."""
    message = _refused(_repo_params(track={"candidate_alias": "champion"}))
    assert message.startswith("params.yaml: track.candidate_alias, track.champion_alias: both are 'champion'")
    assert parse_params(_repo_params(track={"candidate_alias": "pr"})).track.candidate_alias == "pr"


def test_evaluate_conf_above_deploy_conf_is_refused_naming_both():
    """Finding 2: evaluate keeps detections down to evaluate.conf and counts the operating point at
    deploy.conf; with evaluate.conf 0.5 > deploy.conf 0.25 the figures labelled 0.25 were at 0.5."""
    message = _refused(_repo_params(evaluate={"conf": 0.5}))
    assert message.startswith("params.yaml: evaluate.conf: 0.5 is above deploy.conf 0.25")
    assert parse_params(_repo_params(evaluate={"conf": 0.25})).evaluate.conf == 0.25  # equal: same detections


def test_a_fixed_profile_variant_must_be_built():
    """Finding 3: ``profiles.cpu-ci.variant: int8`` with int8 not in optimize.variants passed, and the
    release stage then crashed with ``KeyError: 'int8'`` after training."""
    raw = _repo_params(optimize={"variants": ["fp32", "fp16"], "input": "float_nchw"})
    raw["profiles"]["cpu-ci"]["variant"] = "int8"
    assert _refused(raw).startswith("params.yaml: profiles.cpu-ci.variant: int8 is not built (optimize.variants: ")
    raw["profiles"]["cpu-ci"]["variant"] = "fp16"
    assert parse_params(raw).profiles["cpu-ci"].variant == "fp16"


def test_the_build_profile_must_name_a_profile_even_without_profiles():
    """Finding 8: ``profiles: {}`` (even with ``release.build_profile: nonexistent``) passed and the
    release stage failed after training."""
    message = _refused(_repo_params(profiles={}))
    assert message.startswith("params.yaml: release.build_profile: 'cpu-ci' is not in profiles (available: )")
    raw = _repo_params(profiles={}, release={"build_profile": "nonexistent"})
    assert "release.build_profile: 'nonexistent' is not in profiles" in _refused(raw)


def test_without_a_profiles_section_the_build_profile_is_the_default_profile():
    params = parse_params({})
    assert list(params.profiles) == [params.release.build_profile] == ["cpu-ci"]
    assert "release.build_profile: 'jetson' is not in profiles" in _refused({"release": {"build_profile": "jetson"}})


def test_a_profile_named_like_an_alias_is_named_by_its_key():
    """Finding 11: the clash was reported as ``<root>: profiles: …``."""
    raw = _repo_params()
    raw["profiles"]["champion"] = raw["profiles"]["cpu-ci"]
    assert _refused(raw).startswith("params.yaml: profiles.champion: named like a registry alias")


def test_mlflow_records_the_params_the_stages_ran_with(tmp_path):
    """Finding 4: the tracking record read params.yaml with PyYAML (YAML 1.1): ``epochs: 035`` and
    ``seed: 010`` ran as 35 and 10 (DVC, the stages) but were logged to MLflow as 29 and 8."""
    from edgeproof.tracking.record import RecordSources, build_record

    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 035\ndata:\n  seed: 010\n  val_fraction: 1e-1\n")
    ran = load_params(path)
    record = build_record(RecordSources(params=path, metrics={}), tmp_path)["params"]
    assert (ran.train.epochs, ran.data.seed) == (35, 10)
    assert (record["train.epochs"], record["data.seed"], record["data.val_fraction"]) == (35, 10, 0.1)


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ({"l4t_min": "R32.6"}, "match.l4t_min: must be an L4T release as digits and dots"),
        ({"l4t_max": "32.x"}, "match.l4t_max: must be an L4T release as digits and dots"),
        ({"l4t_min": "33.0", "l4t_max": "32.7.99"}, "match: l4t_min '33.0' is above l4t_max '32.7.99'"),
    ],
)
def test_l4t_bounds_are_versions_in_order(match, message):
    """Finding 6: ``l4t_min: R32.6`` compared as () and matched boards on L4T 28.1 and 36.4.3 alike;
    inverted bounds matched none. Both passed ``edgeproof params``."""
    raw = _repo_params()
    raw["profiles"]["jetson-nano"]["match"] = {**raw["profiles"]["jetson-nano"]["match"], **match}
    assert _refused(raw).startswith(f"params.yaml: profiles.jetson-nano.{message}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--images", "-1"], "--images: Input should be greater than or equal to 1 (got -1)"),
        (["--frames", "-5"], "--frames: Input should be greater than or equal to 1 (got -5)"),
        (["--rounds", "0"], "--rounds: Input should be greater than or equal to 1 (got 0)"),
        (["--rounds", "10000"], "--rounds: Input should be less than or equal to 50 (got 10000)"),
    ],
)
def test_perf_flags_are_validated_like_params(tmp_path, caplog, argv, message):
    """Finding 9: ``edgeproof perf --images -1`` ran on 49 of 50 images and exited 0 (``model_copy``
    validates nothing). Refused before anything runs (no models exist under tmp_path)."""
    from edgeproof.cli import main

    code = main(["--params", str(REPO / "params.yaml"), "perf", "--optimized", str(tmp_path), *argv])
    assert code == 2 and message in caplog.text


def test_perf_flags_in_range_are_taken():
    from edgeproof.cli.dev import with_flags

    params = load_params(REPO / "params.yaml")
    bench = with_flags(params.benchmark, {"e2e_images": ("--images", 7), "runs": ("--frames", 3)})
    assert (bench.e2e_images, bench.runs, bench.warmup) == (7, 3, params.benchmark.warmup)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("profiles.cpu-ci.gate.max_latency_p95_ms", 1e300, "must be <= 3600000.0"),
        # params11 F2: the energy, power, memory and load caps took 1e300 (or 1e3 written for 1000.0)
        ("profiles.cpu-ci.gate.max_energy_mj_per_frame", 1e300, "must be <= 1000000.0"),
        ("profiles.cpu-ci.gate.max_power_w", 1e300, "must be <= 10000.0"),
        ("profiles.cpu-ci.gate.max_peak_memory_mb", 1e300, "must be <= 10000000.0"),
        ("profiles.cpu-ci.regression.max_energy_increase_pct", 1e300, "must be <= 1000.0"),
        ("profiles.cpu-ci.max_load_per_cpu", 1e300, "must be <= 64.0"),
        ("evaluate.cross_check.ultralytics_tolerance", 1.0, "less than or equal to 0.1"),
        ("evaluate.cross_check.independent_tolerance", 1.0, "less than or equal to 0.1"),
        ("optimize.parity.min_matched_share", 0.0, "greater than or equal to 0.5"),
        ("profiles.jetson-nano.providers", [{"name": "TensorrtExecutionProvider", "options": {"x": [float("inf")]}}],
         "must be a finite number, got inf"),
    ],
)  # fmt: skip
def test_values_that_would_switch_a_rule_off_silently_are_refused(path, value, message):
    """Finding 7: 1e300 ms, a tolerance of 1.0, a matched share of 0 and .inf inside provider options passed,
    although the docs promised no value could switch a rule off."""
    raw = _repo_params()
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value
    assert _refused(raw).startswith(f"params.yaml: {path}")
    assert message in _refused(raw)


def test_a_lenient_threshold_in_plain_sight_still_loads():
    """What the docs now say is not prevented: a gate threshold set leniently on purpose."""
    raw = _repo_params()
    raw["profiles"]["cpu-ci"]["gate"].update(min_fps=0.0, min_map50=0.0, max_latency_p95_ms=1e6)
    assert parse_params(raw).profiles["cpu-ci"].gate.min_fps == 0.0


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("evaluate.providers", ["CPUExecutonProvider"], "evaluate.providers.0: Input should be 'CPUExecutionProvider'"),
        ("benchmark.providers", ["TensorRTExecutionProvider"], "benchmark.providers.0: Input should be"),
        ("evaluate.cross_check.ultralytics_device", "banana", "expected 'cpu', 'mps', a GPU index '0'"),
    ],
)
def test_provider_names_and_the_ultralytics_device_are_checked_when_params_load(path, value, message):
    """Finding 10: a provider typo passed ``edgeproof params`` (the board's preflight said only
    ``providers_built_in: false``); ``ultralytics_device: banana`` was accepted."""
    section, *rest = path.split(".")
    raw = _repo_params()
    node = raw[section]
    for part in rest[:-1]:
        node = node[part]
    node[rest[-1]] = value
    message_got = _refused(raw)
    assert message_got.startswith(f"params.yaml: {message}" if message.startswith(section) else f"params.yaml: {path}")
    assert message in message_got


def test_a_profile_provider_typo_is_named_with_a_hint():
    raw = _repo_params()
    raw["profiles"]["jetson-nano"]["providers"][1]["name"] = "CUDAExecutionProvder"
    assert _refused(raw).startswith("params.yaml: profiles.jetson-nano.providers[1].name: must be one of [")
    assert "did you mean 'CUDAExecutionProvider'?" in _refused(raw)
    assert (
        parse_params(
            _repo_params(evaluate={"cross_check": {"ultralytics_device": 0}})
        ).evaluate.cross_check.ultralytics_device
        == "0"
    )


@pytest.mark.parametrize(
    ("section", "key"),
    [("deploy", "deploy"), ("profiles", "profiles"), ("export", "export")],
)
def test_an_empty_section_is_refused_naming_it(section, key):
    """Finding 11: ``export:`` (null) was refused but ``deploy:``, ``profiles:`` and a null profile body or
    gate silently took defaults."""
    assert _refused(_repo_params(**{section: None})).startswith(f"params.yaml: {key}: ")


@pytest.mark.parametrize("part", [None, "gate", "match", "regression"])
def test_an_empty_profile_body_or_part_is_refused_naming_it(part):
    raw = _repo_params()
    key = "profiles.jetson-nano" + (f".{part}" if part else "")
    if part:
        raw["profiles"]["jetson-nano"][part] = None
    else:
        raw["profiles"]["jetson-nano"] = None
    assert _refused(raw).startswith(f"params.yaml: {key}: empty (null); give its keys")


def test_a_candidate_listed_twice_is_refused():
    raw = _repo_params()
    raw["profiles"]["jetson-orin-nano"]["candidates"] = ["int8_trt", "int8_trt"]
    assert _refused(raw).startswith("params.yaml: profiles.jetson-orin-nano.candidates: lists a variant twice")


def test_python_dash_m_edgeproof_is_the_cli():
    import subprocess
    import sys

    env_path = str(REPO / "src")
    out = subprocess.run(
        [sys.executable, "-m", "edgeproof", "--params", str(REPO / "params.yaml"), "params"],
        capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, check=False,
    )  # fmt: skip
    assert out.returncode == 0 and '"ok": true' in out.stdout


@pytest.mark.parametrize(
    ("key", "edit"),
    [
        ("match.jetson_model", lambda prof: prof["match"].update(jetson_model="")),
        ("match.arch[0]", lambda prof: prof["match"].update(arch=[""])),
        ("power_mode", lambda prof: prof.update(power_mode="")),
    ],
)
def test_an_empty_match_string_is_refused_naming_the_key(key, edit):
    """params11 F4: ``jetson_model: ""`` is a substring of every model, so a Nano matched the Orin Nano
    profile; ``power_mode: ""`` failed every run and ``arch: [""]`` matched no machine, without a word."""
    raw = _repo_params()
    edit(raw["profiles"]["jetson-orin-nano"])
    message = _refused(raw)
    assert message.startswith(f"params.yaml: profiles.jetson-orin-nano.{key}"), message
    assert "empty" in message


def test_unmeasured_int8_for_a_tensorrt_profile_is_refused_like_a_fixed_variant():
    """params11 F3: ``profiles.jetson-orin-nano.variant: int8`` was refused by name, but the same uint8 model
    reached that TensorRT profile through ``release.unmeasured_variant: int8`` and the bundle shipped it."""
    message = _refused(_repo_params(release={"unmeasured_variant": "int8"}))
    assert message.startswith("params.yaml: release.unmeasured_variant: int8 has uint8 activations"), message
    assert "(profiles.jetson-orin-nano is auto and would get it)" in message
    # int8_trt is what TensorRT builds; the Nano (no INT8 on its GPU) falls back to fp32 in the release choice
    assert (
        parse_params(_repo_params(release={"unmeasured_variant": "int8_trt"})).release.unmeasured_variant == "int8_trt"
    )


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"trt_fp16_enable": "false"}, "trt_fp16_enable", "expected true or false"),
        ({"trt_fp16_enable": 1}, "trt_fp16_enable", "expected true or false"),
        ({"trt_fp16_enable": None}, "trt_fp16_enable", "expected true or false"),
        ({"trt_fp16_enable": [True]}, "trt_fp16_enable", "expected true or false"),
        ({"trt_max_workspace_size": "1GB"}, "trt_max_workspace_size", "expected an integer"),
        ({"trt_engine_cache_path": 5}, "trt_engine_cache_path", "expected a string"),
        ({"trt_fp16_enabel": True}, "trt_fp16_enabel", "did you mean 'trt_fp16_enable'?"),
    ],
)
def test_tensorrt_options_are_orts_names_and_types(options, key, message):
    """params11 F5: ``trt_fp16_enable: "false"`` loaded; ORT built FP32 while edgeproof's trtexec ceiling ran
    --fp16 and release.json said FP16. Wrong types and typos failed only on the board, after the hand-off."""
    raw = _repo_params()
    raw["profiles"]["jetson-orin-nano"]["providers"][0]["options"] = options
    got = _refused(raw)
    assert got.startswith(f"params.yaml: profiles.jetson-orin-nano.providers[0].options.{key}: "), got
    assert message in got


def test_tensorrt_options_of_the_right_types_load():
    raw = _repo_params()
    options = {"trt_fp16_enable": False, "trt_max_workspace_size": 1 << 30, "trt_engine_cache_path": "cache"}
    raw["profiles"]["jetson-orin-nano"]["providers"][0]["options"] = options
    assert parse_params(raw).profiles["jetson-orin-nano"].providers[0].options == options


def test_a_bundle_val_cap_under_a_board_evaluating_profiles_minimum_is_refused():
    """diff11 #2: ``bundle.max_val_images: 5`` loaded, and every on-device accuracy rule was then inconclusive
    (the board scores the bundle's val, under ``gate.min_val_images`` 10), found out only after the board ran."""
    message = _refused(_repo_params(bundle={"max_val_images": 5}))
    assert message.startswith("params.yaml: bundle.max_val_images: 5 is under profiles."), message
    assert ".gate.min_val_images 10" in message
    assert parse_params(_repo_params(bundle={"max_val_images": 10})).bundle.max_val_images == 10
