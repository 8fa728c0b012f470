"""``python -m reliability`` (what ``edgeproof reliability`` runs): bad inputs and injected faults against
every entry point, with a report. A developer tool: it runs from a checkout (tools/ and the repo root on
``PYTHONPATH``), since its cases drive the checkout's stages and dvc.yaml."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from reliability.report import passed, run_reliability


def build_parser() -> argparse.ArgumentParser:
    """The tool's arguments (also shown by ``edgeproof reliability --help``)."""
    p = argparse.ArgumentParser(prog="edgeproof reliability", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("reports"), help="folder for reliability.{json,md}")
    p.add_argument("--no-faults", action="store_true", help="bad inputs only (the fault cases take ~2 min)")
    p.add_argument("--cases", nargs="+", default=None, help="only these bad-input cases (by name)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cases, write the reports, print the totals as JSON; exit 1 unless everything passed."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    report = run_reliability(args.out, faults=not args.no_faults, only=args.cases)
    totals = {k: v for k, v in report.items() if k not in ("cases", "not_covered")}
    sys.stdout.write(json.dumps(totals, indent=2, sort_keys=True) + "\n")
    return 0 if passed(report) else 1


if __name__ == "__main__":
    raise SystemExit(main())
