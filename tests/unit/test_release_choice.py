"""The release choice per device profile: fastest within the accuracy budget that keeps parity and
passes the profile's gate; documented rule for profiles that cannot be measured here."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edgeproof.io import sha256_file, write_json
from edgeproof.profiles import parse_profiles
from edgeproof.release.choose import choose
from edgeproof.release.params import ReleaseParams
from tests.unit import gate_inputs as gi
from tests.unit.test_gate import _bench as gate_bench
from tests.unit.test_gate import _eval as gate_eval

CPU = ["CPUExecutionProvider"]
PROFILES = parse_profiles(
    {
        "cpu-ci": {"providers": [{"name": "CPUExecutionProvider"}], "max_map_drop": 0.015},
        "jetson": {
            "providers": [
                {"name": "TensorrtExecutionProvider", "options": {"trt_fp16_enable": True}},
                {"name": "CUDAExecutionProvider"},
            ]
        },
    }
)


def _agreeing(map50_95):
    """An evaluation cross-check that agrees (the gate requires one)."""
    return gate_eval(map50_95=map50_95)["cross_check"]


def _variant(name, map50_95, fps, parity=True, map50=0.95, p95=8.0):
    sha = name * 16
    return {
        "path": f"models/optimized/{name}.onnx",
        "sha256": sha,
        "evaluated": True,
        "parity_passed": parity,
        "parity_matched_share": 0.97 if parity else 0.4,
        "map50_95": map50_95,
        "map50": map50,
        "map_drop": round(0.79 - map50_95, 4),
        "fps_e2e": fps,
        "eval": {
            "map50": map50,
            "map50_95": map50_95,
            "per_class": gi.one_class_rows(map50, map50_95),
            **gi.evaluated_over(gi.one_class_rows(map50, map50_95)),
            "model_sha256": sha,
            "cross_check": _agreeing(map50_95),
        },
        "bench": gate_bench(fps=fps, p95=p95, sha=sha),
    }


def _variants(**int8):
    return {
        "fp32": _variant("fp32", 0.79, 150.0),
        "fp16": {
            "path": "models/optimized/fp16.onnx",
            "sha256": "f" * 64,
            "parity_passed": None,
            "parity_measured": False,  # not measurable on the build machine: the device judges it
            "evaluated": False,
            "reason": "no GPU",
        },
        "int8": _variant("int8", **{"map50_95": 0.782, "fps": 260.0, **int8}),
    }


def _reasons(entry):
    return {r["variant"]: r["reason"] for r in entry["rejected"]}


def test_the_fastest_variant_within_budget_is_released():
    out = choose(PROFILES, _variants(), ReleaseParams(), CPU)
    assert out["release_variant"] == "int8"
    cpu = out["profiles"]["cpu-ci"]
    assert (cpu["variant"], cpu["path"], cpu["sha256"], cpu["measured_here"]) == (
        "int8",
        "models/optimized/int8.onnx",
        "int8" * 16,
        True,
    )
    reasons = _reasons(cpu)
    assert "slower" in reasons["fp32"] and reasons["fp16"] == "no GPU"


def test_speed_is_compared_on_each_variants_least_disturbed_round():
    variants = _variants(fps=140.0)  # int8's median round was hit by other load
    variants["int8"]["fps_e2e_best_round"] = 190.0
    variants["fp32"]["fps_e2e_best_round"] = 155.0
    out = choose(PROFILES, variants, ReleaseParams(), CPU)
    assert out["release_variant"] == "int8"
    assert _reasons(out["profiles"]["cpu-ci"])["fp32"] == "slower: 155.0 FPS end to end vs 190.0 (int8)"


def test_a_variant_over_the_accuracy_budget_is_rejected():
    out = choose(PROFILES, _variants(map50_95=0.77), ReleaseParams(), CPU)  # drop 0.02 > 0.015
    assert out["release_variant"] == "fp32"
    assert "exceeds the budget" in _reasons(out["profiles"]["cpu-ci"])["int8"]


def test_a_variant_that_breaks_parity_is_rejected_even_when_fast_and_accurate():
    out = choose(PROFILES, _variants(parity=False), ReleaseParams(), CPU)
    assert out["release_variant"] == "fp32"
    assert "breaks parity" in _reasons(out["profiles"]["cpu-ci"])["int8"]


def test_a_variant_whose_evaluation_cross_check_disagrees_is_rejected():
    variants = _variants()
    variants["int8"]["eval"]["cross_check"].update(ultralytics=0.70)  # pycocotools 0.782
    out = choose(PROFILES, variants, ReleaseParams(), CPU)
    assert out["release_variant"] == "fp32"
    why = _reasons(out["profiles"]["cpu-ci"])["int8"]
    assert why.startswith("its evaluation is not trustworthy: ultralytics 0.7000 vs pycocotools 0.7820"), why


def test_a_variant_failing_the_profile_gate_is_rejected():
    out = choose(PROFILES, _variants(p95=150.0), ReleaseParams(), CPU)  # cpu-ci gate: p95 <= 100 ms
    assert out["release_variant"] == "fp32"
    assert "latency_p95" in _reasons(out["profiles"]["cpu-ci"])["int8"]


def test_when_no_variant_passes_the_gate_the_candidate_stays_what_would_ship():
    """A threshold alone (a what-if `-S ...gate.min_fps=100000`) never swaps the judged file: the fastest
    variant that is otherwise acceptable goes to the gate, which then fails it, so the experiment's failed
    verdict is recorded against the released model (issue 18)."""
    strict = parse_profiles({"cpu-ci": {"providers": [{"name": "CPUExecutionProvider"}], "gate": {"min_fps": 1e5}}})
    cpu = choose(strict, _variants(), ReleaseParams(), CPU)["profiles"]["cpu-ci"]
    assert cpu["variant"] == "int8" and "no variant passes the gate" in cpu["reason"]
    assert all("fails the profile gate" in why for v, why in _reasons(cpu).items() if v != "fp16")
    # a variant that is not acceptable for another reason never becomes the candidate that way
    cpu = choose(strict, _variants(parity=False), ReleaseParams(), CPU)["profiles"]["cpu-ci"]
    assert cpu["variant"] == "fp32"


def test_no_acceptable_variant_sends_the_reference_to_the_gate():
    variants = _variants(parity=False)
    variants["fp32"] = _variant("fp32", 0.79, 5.0)  # below the profile's min_fps 10
    out = choose(PROFILES, variants, ReleaseParams(), CPU)
    assert out["release_variant"] == "fp32" and "no variant passes" in out["profiles"]["cpu-ci"]["reason"]


def test_profiles_not_measurable_here_follow_the_documented_rule():
    jetson = choose(PROFILES, _variants(), ReleaseParams(), CPU)["profiles"]["jetson"]
    assert (jetson["variant"], jetson["measured_here"]) == ("fp32", False)
    assert "trt_fp16_enable" in jetson["reason"] and "TensorrtExecutionProvider" in jetson["reason"]
    explicit = parse_profiles({"j": {"providers": [{"name": "CUDAExecutionProvider"}], "variant": "int8"}})
    entry = choose({**PROFILES, **explicit}, _variants(), ReleaseParams(), CPU)["profiles"]["j"]
    assert entry["variant"] == "int8" and "profiles.j.variant" in entry["reason"]
    broken = choose({**PROFILES, **explicit}, _variants(parity=False), ReleaseParams(), CPU)["profiles"]["j"]
    assert broken["variant"] == "fp32" and _reasons(broken) == {"int8": "breaks parity"}


def test_the_build_profile_must_exist_and_be_measurable_here():
    with pytest.raises(ValueError, match=r"release\.build_profile"):
        choose(PROFILES, _variants(), ReleaseParams(build_profile="nope"), CPU)
    with pytest.raises(ValueError, match="not available here"):
        choose(PROFILES, _variants(), ReleaseParams(build_profile="jetson"), CPU)


def test_the_gate_gates_the_release_file_named_in_release_json(tmp_path):
    from edgeproof.release.gating import GateRun, release_candidate

    model = tmp_path / "int8.onnx"
    model.write_bytes(b"int8 model")
    chosen = {"path": str(model), "sha256": sha256_file(model)}
    ev, bench = tmp_path / "m/int8/eval.json", tmp_path / "m/int8/bench.json"
    for measured in (ev, bench):
        write_json(measured, {})
    release = {
        "build_profile": "cpu-ci",
        "release_variant": "int8",
        "profiles": {"cpu-ci": {"variant": "int8", **chosen}},
        "variants": {"int8": {"evaluated": True, **chosen, "eval_json": str(ev), "bench_json": str(bench)}},
    }
    write_json(tmp_path / "release.json", release)
    out = tmp_path / "out"
    args = GateRun(
        tmp_path / "p.yaml", out / "g.json", out / "g.md", out / "h.json", out / "t.json", tmp_path / "release.json"
    )
    chosen = release_candidate(args, "cpu-ci")
    assert (chosen.model, chosen.eval, chosen.bench) == (model, ev, bench)
    assert args.model is None  # a new GateRun: the stage's arguments are not changed in place
    model.write_bytes(b"swapped after the choice")
    with pytest.raises(ValueError, match="sha256 differs"):
        release_candidate(args, "cpu-ci")


def test_the_report_lists_every_variant_with_its_speed_accuracy_and_memory():
    from edgeproof.release.gating import variants_section

    release = {
        "build_profile": "cpu-ci",
        "profiles": {"cpu-ci": {"variant": "int8"}},
        "variants": {
            "fp16": {"evaluated": False, "reason": "needs a GPU provider"},
            "fp32": {"evaluated": True, "map50_95": 0.78, "fps_e2e": 90.0, "peak_memory_mb": 127.0},
            "int8": {"evaluated": True, "map50_95": 0.77, "fps_e2e": 140.0, "peak_memory_mb": 114.5},
        },
    }
    lines = variants_section(release)
    rows = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ") and "---" not in line}
    assert "| 127 |" in rows["fp32"] and "| 114.5 |" in rows["int8"] and rows["int8"].endswith("| released |")
    assert "not measured: needs a GPU provider" in rows["fp16"]


def test_the_release_choice_judges_the_evaluation_by_the_params_tolerances():
    """The choice applies the build gate with params' ``evaluate.cross_check`` (the gate stage does): a
    tolerance tightened in params rejects a variant whose second scorer disagrees by more (the choice
    had kept the schema's defaults whatever params said)."""
    from edgeproof.evaluation.params import CrossCheckParams

    variants = _variants()
    variants["int8"]["eval"]["cross_check"]["independent"] = 0.782 + 0.0005
    assert choose(PROFILES, variants, ReleaseParams(), CPU)["release_variant"] == "int8"  # within 0.001
    strict = CrossCheckParams(independent_tolerance=0.0001)
    out = choose(PROFILES, variants, ReleaseParams(), CPU, strict)
    assert out["release_variant"] == "fp32"
    assert _reasons(out["profiles"]["cpu-ci"])["int8"].startswith("its evaluation is not trustworthy: independent")
    assert "differs by more than 0.0001 (params)" in _reasons(out["profiles"]["cpu-ci"])["int8"]


def test_a_variant_only_inconclusive_at_the_gate_is_not_said_to_fail_it():
    """No second scorer ran on int8's evaluation: the gate is inconclusive on it, which the choice says as
    such (it had said "fails the profile gate"); it still goes to the gate only when nothing passes."""
    variants = _variants()
    variants["int8"]["eval"]["cross_check"].update(independent=None, skipped={"independent": "x", "ultralytics": "y"})
    out = choose(PROFILES, variants, ReleaseParams(), CPU)
    assert out["release_variant"] == "fp32"
    assert _reasons(out["profiles"]["cpu-ci"])["int8"] == "is inconclusive at the profile gate: cross_check"


def test_a_fixed_variant_measured_here_that_breaks_parity_or_was_not_built_is_refused_not_released():
    """Review finding 3: ``variant: int8`` on a profile measured here skipped the parity check (released
    anyway, ``rejected: []``) and crashed with ``KeyError: 'int8'`` when int8 was not built."""
    fixed = parse_profiles({"cpu-ci": {"providers": [{"name": "CPUExecutionProvider"}], "variant": "int8"}})
    assert choose(fixed, _variants(), ReleaseParams(), CPU)["release_variant"] == "int8"  # built, keeps parity
    broken = _variants(parity=False)
    broken["int8"]["parity_reason"] = "12 matched of 30 PyTorch and 30 variant detections"
    with pytest.raises(ValueError, match=r"profiles\.cpu-ci\.variant: fixed to int8: breaks parity \(12 matched"):
        choose(fixed, broken, ReleaseParams(), CPU)
    unbuilt = {k: v for k, v in _variants().items() if k != "int8"}
    with pytest.raises(ValueError, match=r"profiles\.cpu-ci\.variant: fixed to int8: not built;"):
        choose(fixed, unbuilt, ReleaseParams(), CPU)


def _not_judged(variants, *names):
    """``names`` measured for parity but not judged: too few detections on the parity images."""
    for name in names:
        variants[name].update(parity_passed=None, parity_measured=True, parity_matched_share=None)
        variants[name]["parity_reason"] = "PyTorch found 0 and the variant 0 detections"
    return variants


def test_a_variant_whose_parity_was_not_judged_is_never_released():
    """Review finding 2: parity without enough detections to judge is null, and null is not a pass (only fp16's
    "not measurable here" null lets a profile the device measures take it; fp32's raw outputs were checked)."""
    out = choose(PROFILES, _not_judged(_variants(), "fp32", "int8"), ReleaseParams(), CPU)
    assert out["release_variant"] == "fp32"
    why = "parity not judged: PyTorch found 0 and the variant 0 detections"
    assert _reasons(out["profiles"]["cpu-ci"])["int8"] == why
    fixed = parse_profiles({"cpu-ci": {"providers": [{"name": "CPUExecutionProvider"}], "variant": "int8"}})
    with pytest.raises(ValueError, match=r"fixed to int8: parity not judged \(PyTorch found 0"):
        choose(fixed, _not_judged(_variants(), "int8"), ReleaseParams(), CPU)
    devices = parse_profiles(
        {
            "j": {"providers": [{"name": "CUDAExecutionProvider"}], "variant": "int8"},
            "k": {"providers": [{"name": "CUDAExecutionProvider"}], "variant": "fp16"},
        }
    )
    out = choose({**PROFILES, **devices}, _not_judged(_variants(), "int8"), ReleaseParams(), CPU)["profiles"]
    assert out["j"]["variant"] == "fp32" and _reasons(out["j"]) == {"int8": "parity not judged"}
    assert out["k"]["variant"] == "fp16"  # not measurable here: the device evaluates it on arrival
    record = _variants()
    del record["int8"]["parity_passed"]  # no parity record at all: not a pass either
    assert choose(PROFILES, record, ReleaseParams(), CPU)["release_variant"] == "fp32"


@pytest.fixture(scope="module")
def gate_params(tmp_path_factory):
    """params.yaml as the gate stage reads it, without MLflow."""
    import yaml

    from edgeproof.config import load_params

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    raw["track"]["enabled"] = False
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, load_params(path)


def _gate_release(gate_params, root: Path, edit) -> int:
    """The gate stage's body over :mod:`tests.unit.gate_inputs`' passing files, ``release.json`` edited by ``edit``."""
    from edgeproof.release.gating import GateRun, run_gate
    from tests.unit import gate_inputs as gi

    docs = gi.documents(root)
    edit(docs["reports/release.json"], gi)
    gi.write_inputs(root, docs)
    args = GateRun(gate_params[0], root / "g.json", root / "g.md", root / "h.json", root / "metrics/train.json")
    return run_gate(replace(args, release=root / "reports/release.json"), gate_params[1])


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda r, gi: None, None),  # the control: it passes
        (lambda r, gi: r.update(build_profile="jetson-nano"), "build_profile 'jetson-nano' is not params'"),
        (lambda r, gi: r.update(release_variant=gi.OTHER), "release_variant 'fp32' is not profiles.cpu-ci.variant"),
        (lambda r, gi: r.pop("release_variant"), "release_variant None is not profiles.cpu-ci.variant 'int8'"),
        (lambda r, gi: r["variants"]["int8"].update(sha256=gi.sha_of(gi.OTHER)), "variants.int8.sha256 '"),
        (lambda r, gi: r["variants"]["int8"].update(path=r["variants"]["fp32"]["path"]), "variants.int8.path '"),
        (lambda r, gi: r["variants"]["int8"].update(evaluated=False), "variants.int8.evaluated is False"),
    ],
)
def test_the_gate_refuses_a_release_record_that_contradicts_itself_or_params(gate_params, tmp_path, edit, why):
    """The gate took the profile release.json named (another profile's choice, judged by the build profile's
    rules), and never compared the released variant's own record (what the release stage measured: path,
    sha256, evaluated) nor release_variant (the MLflow run's and the headline's variant) with the choice."""
    if why is None:
        assert _gate_release(gate_params, tmp_path, edit) == 0
        return
    with pytest.raises(ValueError, match="not the release of one measured file") as refused:
        _gate_release(gate_params, tmp_path, edit)
    assert why in str(refused.value) and not (tmp_path / "g.json").exists()


@pytest.mark.parametrize("key", ["eval_json", "bench_json"])
def test_a_measured_file_named_as_the_empty_path_is_refused_not_a_crash(gate_params, tmp_path, key):
    """``""`` is the working directory: reading it raised IsADirectoryError, a traceback instead of the stage's
    refusal (exit 2) naming release.json."""
    with pytest.raises(FileNotFoundError, match=f"the release variant's {key}, named in .*release.json, is no file"):
        _gate_release(gate_params, tmp_path, lambda r, gi: r["variants"]["int8"].update({key: ""}))


@pytest.mark.parametrize("bench_json", [None, 3, ""])
def test_a_measured_variant_without_a_bench_json_to_check_the_machine_by_is_refused(gate_params, tmp_path, bench_json):
    """The other variants' bench.json show the machine the release was measured on; one whose path was no string
    was silently left out, and the gated file's machine went unchecked against it."""
    with pytest.raises(ValueError, match=r"measured variants \['fp32'\] name no bench_json to check the machine by"):
        _gate_release(gate_params, tmp_path, lambda r, gi: r["variants"]["fp32"].update(bench_json=bench_json))
