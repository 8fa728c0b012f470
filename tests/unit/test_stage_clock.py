"""A stage process's start time, as the MLflow record's ``time_s.<stage>`` reads it, is the wall clock's."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from edgeproof.stage_clock import process_start_ms

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux /proc")

CHILD = (
    "import time; now = time.time() * 1000\n"
    "from edgeproof.stage_clock import process_start_ms\n"
    "print(now - process_start_ms())"
)


def test_a_process_start_is_not_a_second_early():
    """/proc/stat's btime is whole seconds: every start read with it was up to a second early (0.78 s on the
    reference machine), so each stage's time_s was that much too long and their sum passed the run's span,
    which had the COCO-subset run's record refused as edited (no MLflow run)."""
    ages = [float(subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout)]
    ages += [float(subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout)]
    # the child's first line runs after the interpreter started (tens of ms); a clock tick is 10 ms
    assert all(-15 <= age < 400 for age in ages), ages


def test_this_process_started_before_now():
    assert process_start_ms() <= time.time() * 1000
