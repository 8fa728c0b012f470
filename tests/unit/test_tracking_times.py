"""A record's times come from its files' mtimes, never later than the clock of the process building it."""

from __future__ import annotations

import logging
import os
import time

from edgeproof.tracking.record import build_record
from tests.unit.test_tracking import make_run_files
from tests.unit.test_tracking_registry import client, git_repo, no_ci_env, record  # noqa: F401 (fixtures)


def test_a_file_modified_in_the_future_ends_the_run_now_and_is_named(tmp_path, client, caplog):  # noqa: F811
    """metrics/data.json 5.5 min ahead (a clock stepped back by NTP) gave the record a future end: it was
    refused as edited, then, replayed once the clock caught up, took champion back from a newer record,
    and its run lasted 5.5 min for a gate of 10 s (review records11 #5)."""
    files = make_run_files(tmp_path)
    git_repo(tmp_path)
    ahead = time.time() + 330
    os.utime(files.metrics["bench"], (ahead, ahead))
    before = int(time.time() * 1000)
    with caplog.at_level(logging.WARNING):
        times = build_record(files, tmp_path)["times"]
    assert before <= times["end_ms"] <= int(time.time() * 1000)  # now, not 5.5 min from now
    assert f"{files.metrics['bench']}: modified 3" in caplog.text and "later than now" in caplog.text
    sent = record(files, tmp_path)  # sent at once (it was refused: times.end_ms later than now), and released
    assert sent["model_version"] == "1"
    assert client.get_run(sent["run_id"]).info.end_time <= int(time.time() * 1000)
    assert str(client.get_model_version_by_alias("edgeproof-detector", "champion").version) == "1"
