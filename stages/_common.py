"""What every stage shares: argument parsing, logging, and turning known errors into messages."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from edgeproof.config import ParamsError
from edgeproof.paths import state_dir
from edgeproof.stage_clock import note_stage_time

log = logging.getLogger("edgeproof.stage")

# Errors that mean "bad input or environment": reported as one clear line, exit code 2 (never 1, which the gate
# gives a failed rule). OSError: a missing file, a full disk, a read-only folder (its message names the path).
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ParamsError, OSError, ValueError, RuntimeError)


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the common ``--params`` option."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return p


def run(
    stage: str,
    body: Callable[[argparse.Namespace], int | None],
    p: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv``, set up logging, run ``body`` and map expected failures to exit code 2."""
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {stage} %(levelname)s %(message)s", stream=sys.stderr, force=True
    )
    try:
        code = int(body(args) or 0)
    except EXPECTED_ERRORS as exc:
        log.error("%s stage failed: %s", stage, exc)
        return 2
    try:  # what the stage took, for the MLflow run's time_s.<stage> (restored outputs write none)
        note_stage_time(state_dir(), stage)
    except OSError as exc:
        log.warning("could not note the %s stage's time: %s", stage, exc)
    return code
