"""DVC stage ``data``: build the canonical prepared dataset (embedded synthetic by default, or the
user's COCO / VOC / YOLO data) and the data report.

The report (``metrics/data.json``) is written even when the data is unusable or ``data.strict``
finds a problem, so the failure can be read there; the prepared folder is then left as it was.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from edgeproof.io import atomic_dir, write_json
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params).data
    try:
        with atomic_dir(args.out) as tmp:
            report = prepare(params, Path.cwd(), tmp)
    except DatasetError as exc:
        if exc.report is not None:
            write_json(args.metrics, exc.report)
        raise
    write_json(args.metrics, report)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--out", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--metrics", type=Path, required=True, help="dataset report JSON")
    return run("data", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
