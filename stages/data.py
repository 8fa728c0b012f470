"""DVC stage ``data``: build the canonical prepared dataset (embedded synthetic by default)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeproof.config import load_params
from edgeproof.data.synthetic import generate
from edgeproof.io import atomic_dir, write_json
from stages._common import parser, run


def _body(args: argparse.Namespace) -> None:
    params = load_params(args.params).data
    with atomic_dir(args.out) as tmp:
        meta = generate(params.synthetic, params.seed, tmp)
    write_json(
        args.metrics,
        {"source": meta.source, "classes": meta.names, "category_ids": meta.category_ids, "splits": meta.counts},
    )


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__ or "")
    p.add_argument("--out", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--metrics", type=Path, required=True, help="dataset report JSON")
    return run("data", _body, p, argv)


if __name__ == "__main__":
    raise SystemExit(main())
