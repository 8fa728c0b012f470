"""dvc.yaml and the stages agree: every stage module exists, reads its own params section, and the
paths it is given are declared as deps or outs (so DVC knows exactly what each stage touches)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from edgeproof.config import Params
from edgeproof.runtime.scoring import ScoringSettings

REPO = Path(__file__).resolve().parents[2]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = DVC["stages"]
# params a stage reads besides its own section
CROSS_READS = {
    "export": {"train.imgsz"},
    # the build profile's thresholds; evaluate and deploy: the gate scores the gated file itself (rescored) and
    # holds the mAP to the cross-check tolerances; the release choice's budget, fixed variant and parity rule
    "gate": {
        "track",
        "release.build_profile",
        "profiles.cpu-ci.gate",
        "profiles.cpu-ci.max_map_drop",
        "profiles.cpu-ci.variant",
        "optimize.parity",
        "evaluate",
        "deploy",
    },
    "evaluate": {"deploy"},
    "benchmark": {"deploy"},
    "bundle": {"deploy", "profiles", "evaluate.conf", "evaluate.iou", "evaluate.max_det", "evaluate.multi_label"},
    "optimize": {"deploy"},
    "plots": {"evaluate", "deploy"},  # the shipped model's charts need its evaluation
    "release": {"evaluate", "benchmark", "profiles", "deploy"},
}


def _declared(stage: dict, key: str) -> set[str]:
    out = set()
    for item in stage.get(key, []):
        out.add(next(iter(item)) if isinstance(item, dict) else item)
    return out


# sections that are not one stage's own: track (recorded by the gate stage), deploy (the operating
# point every deployment-side stage reads) and profiles (the target devices)
SHARED_SECTIONS = {"track", "deploy", "profiles"}


def test_every_params_section_has_a_stage_module():
    for section in Params.model_fields:
        if section in SHARED_SECTIONS:
            continue
        assert section in STAGES, section
        assert (REPO / "stages" / f"{section}.py").exists()


def test_each_stage_lists_exactly_the_params_it_reads():
    for name, stage in STAGES.items():
        params = set(stage.get("params", []))
        own = {name} if name in Params.model_fields else set()  # gate has no section: its rules are in profiles
        assert params == own | CROSS_READS.get(name, set()), name


# the modules a stage hands its loaded ``params`` to (besides stages/<name>.py): their ``params.<key>`` reads
# are the stage's reads. A read of a whole section that the callee narrows (the gate's ``params.profiles``:
# build_thresholds takes profiles.<release.build_profile>.gate only) is listed in NARROWED.
PARAMS_READERS = {"gate": ["src/edgeproof/release/gating.py"]}
NARROWED = {("gate", "profiles")}
# a property that stands for several keys: evaluate.scoring is conf, iou, max_det and multi_label
DERIVED = {"evaluate.scoring": [f"evaluate.{f}" for f in ScoringSettings.__dataclass_fields__]}


def _params_reads(name: str) -> set[str]:
    sources = [REPO / "stages" / f"{name}.py", *(REPO / p for p in PARAMS_READERS.get(name, []))]
    reads = set()
    for path in sources:
        reads |= set(re.findall(r"\bparams\.([a-z_]+(?:\.[a-z_]+)*)", path.read_text()))
    return {r for r in reads if r.split(".")[0] in Params.model_fields}


def test_every_params_read_of_a_stage_is_declared():
    """A key a stage reads but dvc.yaml does not list reruns nothing when it changes: the gate read
    ``evaluate.cross_check`` (its tolerances) without declaring it."""
    for name, stage in STAGES.items():
        declared = set(stage.get("params", []))
        for read in sorted(_params_reads(name)):
            if (name, read) in NARROWED:
                continue
            keys = DERIVED.get(read, [read])
            covered = all(any(k == d or k.startswith(f"{d}.") for d in declared) for k in keys)
            assert covered, f"{name} reads params.{read}, which its dvc.yaml params: does not list"


def test_the_gate_stage_tracks_the_build_profiles_thresholds():
    build_profile = yaml.safe_load((REPO / "params.yaml").read_text())["release"]["build_profile"]
    assert f"profiles.{build_profile}.gate" in STAGES["gate"]["params"]


def test_each_stage_command_runs_its_own_module():
    for name, stage in STAGES.items():
        assert stage["cmd"].startswith(f"python -m stages.{name} "), name
        assert f"stages/{name}.py" in _declared(stage, "deps")


def test_every_path_argument_is_a_dep_or_an_out():
    for name, stage in STAGES.items():
        deps = _declared(stage, "deps")
        outs = _declared(stage, "outs") | _declared(stage, "metrics") | _declared(stage, "plots")
        paths = re.findall(r"(?:^|\s)((?:data|models|metrics|reports|plots)/\S+)", stage["cmd"])
        for path in paths:  # a file of a dep folder (the gate's plots/shipped/*.png) is covered by it
            covered = path in deps or any(path.startswith(f"{d.rstrip('/')}/") for d in deps)
            assert covered or path in outs, f"{name}: {path} is neither a dep nor an out"
        for out in outs:
            assert out in stage["cmd"], f"{name}: declared out {out} is not passed to the stage"


def test_outputs_are_produced_by_one_stage_only():
    seen: dict[str, str] = {}
    for name, stage in STAGES.items():
        for out in _declared(stage, "outs") | _declared(stage, "metrics") | _declared(stage, "plots"):
            assert out not in seen, f"{out} is written by {seen.get(out)} and {name}"
            seen[out] = name


def test_no_stage_declares_its_own_plots_every_chart_is_a_top_level_one():
    """A stage's ``plots:`` entry draws a chart of its own, titled by its path with DVC's default x/y:
    plots/train/curve.csv was drawn as ultralytics' cumulative ``time`` per step beside the titled
    training charts."""
    assert {name for name, stage in STAGES.items() if "plots" in stage} == set()
    charted = {f for p in DVC["plots"] if isinstance(p, dict) for f in next(iter(p.values()))["y"]}
    assert "plots/train/curve.csv" in charted
