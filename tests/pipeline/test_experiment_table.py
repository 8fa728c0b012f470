"""The experiment table (issue 14): two `dvc exp run`s with different `train.epochs` on tiny params.

`dvc exp show --json` has at most 15 metric columns, the headline ones among them, and
`dvc metrics diff` between the two experiments names exactly the headline values that changed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgeproof.headline import HEADLINE_KEYS
from tests.pipeline.repo_copy import dvc, make_repo

pytestmark = pytest.mark.pipeline

HEADLINE = "metrics/headline.json"
FAST = {"track": {"enabled": False}, "evaluate": {"cross_check": {"ultralytics": False}}}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _metric_columns(node: Any, columns: set[str]) -> set[str]:
    """Every (file, dotted key) metric column of `dvc exp show --json`, whatever its nesting."""
    if isinstance(node, dict):
        metrics = (node.get("data") or {}).get("metrics") if isinstance(node.get("data"), dict) else None
        for file, content in (metrics or {}).items():
            columns |= {f"{file}:{key}" for key in _flatten(content.get("data") or {})}
        for value in node.values():
            _metric_columns(value, columns)
    elif isinstance(node, list):
        for value in node:
            _metric_columns(value, columns)
    return columns


def _exp(root, *args: str) -> None:
    proc = dvc(root, "exp", "run", *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = make_repo(tmp_path_factory.mktemp("exps") / "repo", FAST)
    _exp(root, "-n", "one-epoch")
    one = json.loads((root / HEADLINE).read_text())
    _exp(root, "-n", "two-epochs", "-S", "train.epochs=2")
    two = json.loads((root / HEADLINE).read_text())
    return root, one, two


def test_exp_show_has_few_metric_columns_led_by_the_headline(repo):
    root, one, two = repo
    proc = dvc(root, "exp", "show", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    columns = _metric_columns(json.loads(proc.stdout), set())
    assert len(columns) <= 15, sorted(columns)
    assert {f"{HEADLINE}:{key}" for key in HEADLINE_KEYS} <= columns
    assert {c.split(":")[0] for c in columns} == {HEADLINE}
    assert (one["epochs"], two["epochs"]) == (1, 2)


def test_metrics_diff_names_the_headline_changes(repo):
    root, one, two = repo
    proc = dvc(root, "metrics", "diff", "one-epoch", "two-epochs", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    diff = json.loads(proc.stdout)
    assert set(diff) == {HEADLINE}, diff  # no details file, no identity, no byte size
    changed = {k for k, v in _flatten(two).items() if _flatten(one).get(k) != v}
    assert "epochs" in changed
    assert set(diff[HEADLINE]) == changed
    assert diff[HEADLINE]["epochs"] == {"old": 1, "new": 2, "diff": 1}


def test_details_stay_readable_with_metrics_show(repo):
    root, _, _ = repo
    proc = dvc(root, "metrics", "show", "metrics/eval.json", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "map50_95" in proc.stdout
