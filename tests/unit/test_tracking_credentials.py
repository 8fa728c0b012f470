"""A tracking URI with user:password, or a token, never shows up in logs, errors, results or the outbox."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeproof.cli import main as cli
from edgeproof.config import TrackParams
from edgeproof.tracking.pipeline import ReplayError, outbox_dir, record_pipeline_run, replay
from edgeproof.tracking.redact import RedactingFilter, redact, without_userinfo
from tests.unit.test_tracking import make_run_files

PASSWORD, TOKEN = "pw-s3cr3t-9f2a", "tok-s3cr3t-77c1"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def secret_env(monkeypatch):
    """A tracking server that is down, addressed with a password in the URI and a token."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://edgeproof:{PASSWORD}@127.0.0.1:9")  # discard port
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")


def _assert_clean(text: str) -> None:
    assert PASSWORD not in text and TOKEN not in text


def test_redact():
    assert (
        redact(f"API request to http://u:{PASSWORD}@h:5000/api failed") == "API request to http://***@h:5000/api failed"
    )
    assert redact("https://user@host/x and postgresql://a:b@db/x") == "https://***@host/x and postgresql://***@db/x"
    assert redact("http://host:5000/api") == "http://host:5000/api"


def test_credentials_stay_out_of_logs_errors_results_and_the_outbox(tmp_path, secret_env, caplog, capsys, monkeypatch):
    files, state = make_run_files(tmp_path), tmp_path / "state"
    monkeypatch.setenv("EDGEPROOF_STATE_DIR", str(state))  # where `edgeproof track replay` looks
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.DEBUG):
        result = record_pipeline_run(files, tmp_path, state, TrackParams(experiment="unit"))
        assert result["pending"] is True
        with pytest.raises(ReplayError) as raised:
            replay(state, tmp_path, TrackParams(experiment="unit"))
        assert cli(["--params", str(files.params), "track", "replay"]) == 2
        assert cli(["--params", str(files.params), "model", "show"]) == 2

    assert "http://***@127.0.0.1:9" in result["tracking_uri"]  # the URI is reported, without its secret
    assert any("***@127.0.0.1:9" in r.getMessage() for r in caplog.records)
    _assert_clean(json.dumps(result))
    _assert_clean(str(raised.value))
    _assert_clean("\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records))
    _assert_clean(caplog.text)
    out = capsys.readouterr()
    _assert_clean(out.out + out.err)
    stored = [p.read_bytes().decode("utf-8", "replace") for p in state.rglob("*") if p.is_file()]
    assert stored and outbox_dir(state).is_dir()
    for text in stored:
        _assert_clean(text)


def test_device_gate_job_logging_verdicts_to_mlflow_leaks_nothing(tmp_path, secret_env, caplog, capsys, monkeypatch):
    """``ci/device_gate.py --mlflow --move-alias`` against a server that is down: the error that ends the
    job (and its traceback, as CI prints it) and every log line name the server without its secrets."""
    import importlib.util
    import traceback

    from edgeproof.tracking.device_verdict import DeviceTrackingError

    monkeypatch.syspath_prepend(str(REPO / "ci"))  # device_gate imports github_pr, as it does run from ci/
    spec = importlib.util.spec_from_file_location("ci_device_gate", REPO / "ci" / "device_gate.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    report = {"verdict": "pass", "failed": [], "model_sha256": "a" * 64, "measured": {"fps_e2e": 30.0}, "rules": [{}]}
    monkeypatch.setattr(job, "judge", lambda args, profile: (report, "gate.md"))
    (tmp_path / "params.yaml").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.DEBUG), pytest.raises(DeviceTrackingError) as raised:
        job.main(["--profile", "jetson-nano", "--mlflow", "--move-alias", "--params", str(tmp_path / "params.yaml")])

    shown = "".join(traceback.format_exception(raised.value))
    assert "http://***@127.0.0.1:9" in shown and "did not take device verdicts" in shown
    _assert_clean(shown)
    _assert_clean(caplog.text + "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records))
    out = capsys.readouterr()
    _assert_clean(out.out + out.err)
    mlflow_handlers = logging.getLogger("mlflow").handlers  # MLflow's logger does not propagate to the root
    assert mlflow_handlers and all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in mlflow_handlers)


_PIECES = ["a", "Z", "7", "-", "_", ".", "@", ":", "/", "%40", "é", "ß", "密", "🔑"]
_PARTS = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(user=_PARTS, password=_PARTS.filter(bool))
def test_what_mlflow_sends_as_credentials_is_masked_whole(user, password):
    """Issue 18: ``http://bob:pw@S3cretTail-77@host`` was shown as ``http://***@S3cretTail-77@…``."""
    uri = f"http://{user}:{password}@tracking.example:5000"
    text = f"API request to {uri}/api/2.0/mlflow/runs/get failed; tracking URI {uri}"
    safe = "http://***@tracking.example:5000"
    assert redact(text) == f"API request to {safe}/api/2.0/mlflow/runs/get failed; tracking URI {safe}"
    assert without_userinfo(uri) == "http://tracking.example:5000"
    sent = urlsplit(uri)
    if sent.password is not None:  # what MLflow's HTTP client would send is masked
        assert sent.password not in redact(text) or sent.password in safe


def test_a_password_with_an_at_sign_is_masked_in_the_warning(tmp_path, monkeypatch, caplog):
    files = make_run_files(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://bob:pw@S3cretTail-77@127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with caplog.at_level(logging.WARNING):
        result = record_pipeline_run(files, tmp_path, tmp_path / "state", TrackParams(experiment="unit"))
    assert result["tracking_uri"] == "http://***@127.0.0.1:9"
    assert "S3cretTail" not in caplog.text + json.dumps(result) and "http://***@127.0.0.1:9" in caplog.text


def test_urls_without_credentials_are_left_alone():
    for text in ("http://host:5000/artifacts/ab", "http://host/x@y", "sqlite:///tmp/mlflow.db", "file:///a/b"):
        assert redact(text) == text
    assert redact("http://host:5000/a@b") == "http://***@b"  # may be `user:pass/word@b`: masked
