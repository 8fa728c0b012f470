"""ci/device_gate.py, the hosted gate job's logic: one comment, updated in place; statuses; exit code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("ci_device_gate", REPO / "ci" / "device_gate.py")
dg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dg)


class FakeGitHub:
    """Records calls; serves a PR's comments in pages of 100."""

    def __init__(self, comments):
        self.comments = comments
        self.calls = []

    def __call__(self, method, path, payload):
        self.calls.append((method, path, payload))
        if method == "GET":
            page = int(path.rsplit("page=", 1)[1])
            return self.comments[(page - 1) * 100 : page * 100]
        return {}


def _comment(i, body, kind="User"):
    return {"id": i, "body": body, "user": {"type": kind}}


def test_the_bot_comment_is_updated_not_duplicated_even_past_the_first_page():
    comments = [_comment(i, "lgtm") for i in range(150)]
    comments.append(_comment(999, f"{dg.MARKER}\nold", "User"))  # a human quoting the marker: not ours
    comments.append(_comment(1000, f"{dg.MARKER}\nold", "Bot"))
    api = FakeGitHub(comments)
    assert dg.upsert_comment(api, "o/r", 7, "new") == "updated"
    assert api.calls[-1] == ("PATCH", "/repos/o/r/issues/comments/1000", {"body": "new"})
    assert [c[0] for c in api.calls] == ["GET", "GET", "PATCH"]


def test_first_push_creates_the_comment():
    api = FakeGitHub([_comment(1, "hello")])
    assert dg.upsert_comment(api, "o/r", 7, "body") == "created"
    assert api.calls[-1] == ("POST", "/repos/o/r/issues/7/comments", {"body": "body"})


def test_statuses_tell_a_slow_model_from_a_hot_device():
    api = FakeGitHub([])
    dg.set_statuses(api, "o/r", "abc", {"jetson-nano": "fail", "jetson-orin-nano": "inconclusive"}, "https://run")
    states = {p["context"]: p["state"] for _, _, p in api.calls}
    assert states == {
        "edgeproof/device-gate (jetson-nano)": "failure",
        "edgeproof/device-gate (jetson-orin-nano)": "error",
    }


@pytest.mark.parametrize(
    ("verdicts", "code"), [(["pass"], 0), (["pass", "inconclusive"], 3), (["inconclusive", "fail"], 1), ([], 0)]
)
def test_overall_exit(verdicts, code):
    assert dg.overall_exit(verdicts) == code


def test_comment_has_marker_every_gate_table_and_the_metrics_diff():
    body = dg.compose_comment(
        {"a": "# Device gate: `a`\n\n| rule |\n", "b": "# Device gate: `b`\n"}, "| Path | Metric |\n", None, "f" * 40
    )
    assert body.startswith(dg.MARKER) and body.count("### Device gate:") == 2
    assert "| Path | Metric |" in body and "`ffffffffffff`" in body
    assert "_no metric changed_" in dg.compose_comment({}, "  \n", None, None)
