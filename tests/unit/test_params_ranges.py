"""Defect 10: no params value may switch a rule off: non-finite floats and out-of-range ints fail, naming the key.

``gate.max_latency_p95_ms: .inf`` disabled the latency rule and ``train.seed: 2**70`` was accepted.
The test walks the whole pydantic schema, so a field added later is covered too.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from edgeproof.config import Params, ParamsError, load_params, parse_params


def _leaf_types(annotation: Any) -> set[type]:
    """The scalar types a field annotation admits (through Optional / unions / Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaf_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_leaf_types(a) for a in typing.get_args(annotation)))
    return {annotation} if annotation in (int, float) else set()


def _numeric_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], set]]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _numeric_fields(annotation, (*prefix, name))
        elif leaves := _leaf_types(annotation):
            yield (*prefix, name), leaves


def _cases() -> list[tuple[str, Any]]:
    cases = []
    for path, leaves in _numeric_fields(Params):
        key = ".".join(path)
        if float in leaves:
            cases += [(key, math.inf), (key, -math.inf), (key, math.nan)]
        if int in leaves:
            cases += [(key, 2**70), (key, -(2**70))]
    return cases


def _nest(key: str, value: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    node = raw
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return raw


def test_the_walk_finds_the_fields_of_the_defect():
    keys = {key for key, _ in _cases()}
    assert {"train.seed", "train.lr0", "evaluate.conf"} <= keys
    assert len(keys) > 40


@pytest.mark.parametrize("key, value", _cases(), ids=lambda v: str(v))
def test_non_finite_and_huge_values_fail_naming_the_key(key, value):
    with pytest.raises(ParamsError) as err:
        parse_params(_nest(key, value))
    assert f"params.yaml: {key}:" in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "profiles:\n  p:\n    gate:\n      max_latency_p95_ms: .inf\n",
        "profiles:\n  p:\n    gate:\n      min_fps: -.inf\n",
        "train:\n  seed: 1180591620717411303424\n",
    ],
)
def test_from_yaml_as_dvc_reads_it(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    key = ".".join(s.strip().rstrip(":").split(":")[0] for s in text.splitlines())
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        load_params(path)


def test_seed_fits_numpy_and_torch():
    """ultralytics seeds numpy, which takes 0..2**32-1."""
    assert parse_params({"train": {"seed": 2**32 - 1}}).train.seed == 2**32 - 1
    with pytest.raises(ParamsError, match=r"train\.seed"):
        parse_params({"train": {"seed": 2**32}})


def test_ordinary_values_still_load():
    gate = {"max_latency_p95_ms": 1e6, "min_fps": 0.0}
    params = parse_params({"profiles": {"cpu-ci": {"gate": gate}}, "train": {"patience": 10**6}})
    assert params.profiles["cpu-ci"].gate.max_latency_p95_ms == 1e6


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"deploy": {"conf": math.inf}}, "deploy.conf"),
        ({"deploy": {"max_det": 2**70}}, "deploy.max_det"),
        ({"profiles": {"jetson-nano": {"gate": {"max_latency_p95_ms": math.inf}}}}, "profiles.jetson-nano.gate"),
    ],
)
def test_device_side_sections_follow_the_same_rule(raw, key):
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        parse_params(raw)
