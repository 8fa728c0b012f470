"""DVC stage ``data``: build the canonical prepared dataset (embedded synthetic by default, or the
user's COCO / VOC / YOLO data) and the data report.

The report (``metrics/data.json``) is written even when the data is unusable or ``data.strict``
finds a problem, so the failure can be read there; the prepared folder is then left as it was.
A write that fails for want of space (or any other I/O error) is one line naming the folder,
exit code 2, and the previous prepared folder is kept: the new tree is only swapped in whole.
"""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path
from typing import Any

from edgeproof.config import load_params
from edgeproof.data.prepare import prepare
from edgeproof.data.report import DatasetError
from edgeproof.folders import atomic_dir
from edgeproof.io import write_json
from stages._common import parser, run


def _io_failure(exc: OSError, out: Path) -> str:
    """One line for an I/O error while building ``out``: what failed, where, and that nothing was lost."""
    name = errno.errorcode.get(exc.errno or 0, "")
    why = exc.strerror or str(exc)
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{out}: cannot write the prepared dataset ({where}{why}{f' [{name}]' if name else ''}); previous {out} kept"


def _write_report(path: Path, report: dict[str, Any]) -> None:
    try:
        write_json(path, report)
    except OSError as exc:
        raise RuntimeError(f"{path}: cannot write the data report ({os.strerror(exc.errno or 0)})") from None


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params).data
    try:
        with atomic_dir(args.out) as tmp:
            report = prepare(params, Path.cwd(), tmp)
    except DatasetError as exc:
        if exc.report is not None:
            _write_report(args.metrics, exc.report)
        raise
    except FileNotFoundError:
        raise
    except OSError as exc:  # ENOSPC, EDQUOT, EROFS, EIO...: the environment, not a bug
        raise RuntimeError(_io_failure(exc, args.out)) from None
    _write_report(args.metrics, report)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--out", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--metrics", type=Path, required=True, help="dataset report JSON")
    return run("data", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
