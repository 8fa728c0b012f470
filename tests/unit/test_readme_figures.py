"""README's quoted figures are the committed run's (docs review, finding 3).

README quoted mAP, FPS, latency and memory figures from an older run (fp32 0.971 at 153 FPS, int8 182
FPS) while ``metrics/`` and ``reports/`` held another. Each figure is parsed from README as written
and compared with the committed JSON it comes from, to the precision README shows (0.773 agrees with
0.77266; 85 FPS with 84.647). A figure whose sentence was reworded fails here rather than going
unchecked: update the pattern with the sentence.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeproof.verdict.rules import get_path, is_number

REPO = Path(__file__).resolve().parents[2]
NUM = r"(\d+(?:\.\d+)?)"


def _readme() -> str:
    return " ".join((REPO / "README.md").read_text(encoding="utf-8").split())  # sentences span lines


def _json(rel: str) -> Any:
    return json.loads((REPO / rel).read_text(encoding="utf-8"))


def _found(pattern: str) -> re.Match[str]:
    match = re.search(pattern, _readme())
    assert match, f"README no longer has a sentence matching {pattern!r}: update this test with it"
    return match


def _rounds_to(shown: str, value: float) -> bool:
    """``value`` rounds to ``shown`` at the decimals ``shown`` gives (half a unit of its last digit)."""
    decimals = len(shown.partition(".")[2])
    return abs(value - float(shown)) <= 0.5 * 10**-decimals + 1e-9


def _agrees(shown: str, source: str, key: str) -> None:
    """``shown`` is the figure at ``key`` of the committed ``source``, as README rounds it."""
    value = get_path(_json(source), key)
    assert is_number(value), f"{source}: {key} is {value!r}, not a number"
    assert _rounds_to(shown, value), f"README quotes {shown} but {source} has {key} = {value}"


def test_the_fp32_reference_figures_are_the_committed_ones():
    m = _found(rf"fp32 reference scores mAP50 {NUM} / mAP50-95 {NUM} at {NUM} FPS end to end")
    _agrees(m[1], "metrics/eval.json", "map50")
    _agrees(m[2], "metrics/eval.json", "map50_95")
    _agrees(m[3], "metrics/bench.json", "fps_e2e")


def test_the_released_variant_and_its_figures_are_the_committed_headline():
    m = _found(
        rf"released for the `([\w-]+)` profile is \*\*(\w+)\*\* \(mAP50-95 {NUM} over (\d+) val images, {NUM} FPS, "
        rf"p95 {NUM} ms"
    )
    profile, variant = m[1], m[2]
    headline = _json("metrics/headline.json")
    assert profile == yaml.safe_load((REPO / "params.yaml").read_text())["release"]["build_profile"]
    assert str(headline["measured_on"]).startswith(f"{profile}:")
    assert headline["release_variant"] == variant
    _agrees(m[3], "metrics/headline.json", "mAP50-95")
    # the val size behind the mAP: the released variant's evaluation (the headline's val_images copies it)
    _agrees(m[4], f"metrics/variants/{variant}/eval.json", "n_images")
    if "val_images" in headline:  # a headline written before the val size was shown has none
        _agrees(m[4], "metrics/headline.json", "val_images")
    _agrees(m[5], "metrics/headline.json", "fps")
    _agrees(m[6], "metrics/headline.json", "latency_p95_ms")
    budget = _found(rf"within the {NUM} mAP budget")[1]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert float(budget) == params["profiles"][profile]["max_map_drop"]


def test_the_memory_figures_are_each_variants_committed_peak():
    figures = re.findall(rf"\b(fp32|fp16|int8|int8_trt):? {NUM} MB\b", _readme())
    assert figures, "README quotes no per-variant memory figure (`int8 115 MB`): update this test with it"
    for variant, shown in figures:
        _agrees(shown, f"metrics/variants/{variant}/bench.json", "peak_memory_mb")


@pytest.mark.parametrize(
    "shown, value, ok",
    [
        ("0.773", 0.77266, True),
        ("0.77", 0.77266, True),
        ("0.78", 0.77266, False),
        ("0.780", 0.77266, False),
        ("85", 84.647, True),
        ("84.6", 84.647, True),
        ("84", 84.647, False),
        ("153", 84.647, False),
    ],
)
def test_agreement_is_to_the_precision_shown(shown, value, ok):
    assert _rounds_to(shown, value) is ok
