"""The ``edgeproof`` command line. Results go to stdout (:data:`DESCRIPTION` says how); logs go to stderr.

Each subcommand lives in the module of its job:

* :mod:`edgeproof.cli.edge` -- ``detect``, ``evaluate``, ``benchmark``, ``device``, ``device-gate``
  (edge tools, usable without DVC, e.g. on a Jetson runner);
* :mod:`edgeproof.cli.registry` -- ``track``, ``model`` (the MLflow outbox and model registry);
* :mod:`edgeproof.cli.dev` -- ``params``, ``perf``, ``reliability`` (developer tools).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edgeproof.cli import dev, edge, registry
from edgeproof.cli.common import DEFAULT_PARAMS
from edgeproof.config import ParamsError

log = logging.getLogger("edgeproof")
DESCRIPTION = (
    "The edgeproof command line: the edge-side tools, usable without DVC (e.g. on a Jetson runner). "
    "Results go to stdout: JSON, except detect's line per image (JSON Lines with --json) and exps' table; "
    "logs go to stderr."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    p = argparse.ArgumentParser(prog="edgeproof", description=DESCRIPTION)
    p.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="params file (default: params.yaml)")
    sub = p.add_subparsers(dest="command", required=True)
    for job in (dev, edge, registry):
        job.add_commands(sub)
    for command in sub.choices.values():  # global options also after the subcommand (`detect --params p.yaml`)
        command.add_argument(
            "--params", type=Path, default=argparse.SUPPRESS, help="params file (default: params.yaml)"
        )
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line; only a command that forwards its arguments (``reliability``) keeps unknown ones."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    args.unknown = unknown
    if args.unknown and not getattr(args, "forwards_unknown", False):
        parser.error(f"unrecognized arguments: {' '.join(args.unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``edgeproof`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    try:
        return int(args.func(args))
    except (ParamsError, FileNotFoundError, ValueError, RuntimeError) as exc:
        log.error("%s", exc)
        return 2
