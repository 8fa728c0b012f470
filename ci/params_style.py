"""Rewrite params.yaml in the style DVC writes it, so `dvc exp run -S key=value` changes one line.

DVC applies `-S` by loading params.yaml with ruamel (round trip) and dumping it back with its own
settings (block style, width 80, `null` as an empty value). Anything written differently (flow
`[a, b]` lists, `{k: v}` mappings, explicit `null`, long lines) is rewritten on the first `-S`,
so one changed value showed as ~100 changed lines in `git diff`. This script applies exactly
DVC's dump to the file once, so later `-S` runs leave every other line alone.

    python ci/params_style.py params.yaml          # rewrite in place
    python ci/params_style.py --check params.yaml  # exit 1 if a rewrite would change it

tests/unit/test_params_style.py keeps params.yaml in this style.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path

_WIDTH = 80  # ruamel's default line width, which DVC keeps


def _plain(node: object) -> object:
    """A list as DVC's `-S` puts it back: rebuilt from plain values (block style, no comments)."""
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return node


def _block_style(node: object, indent: int = 0) -> None:
    """Make ``node`` what DVC's `-S` writes back: every non-empty list rebuilt from plain values
    (DVC replaces lists), every non-empty flow mapping in block style, and long plain strings
    folded (DVC would wrap them at 80 columns, leaving a trailing space)."""
    from ruamel.yaml.comments import CommentedBase
    from ruamel.yaml.scalarstring import FoldedScalarString, ScalarString

    # An empty collection stays `[]`/`{}` (DVC writes it so; ruamel's block style of one is invalid).
    if isinstance(node, CommentedBase) and len(node):  # type: ignore[arg-type]
        node.fa.set_block_style()
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if isinstance(value, list) and value:
            node[key] = _plain(value)
        elif isinstance(value, str) and not isinstance(value, ScalarString):
            if indent + len(f"{key}: {value}") > _WIDTH:
                node[key] = FoldedScalarString(value)
        else:
            _block_style(value, indent + 2)


def dvc_style(text: str) -> str:
    """``text`` (a YAML document) as DVC writes it after `-S` (its own loader and dumper)."""
    from dvc.utils.serialize._yaml import _get_yaml, parse_yaml_for_update

    for _ in range(3):  # folded strings settle on the second pass
        data = parse_yaml_for_update(text, "params.yaml")
        _block_style(data)
        out = io.StringIO()
        _get_yaml().dump(data, out)
        if out.getvalue() == text:
            break
        text = out.getvalue()
    return text


_LIST_AFTER_BLANK = re.compile(r"^ *([\w.-]+):[^\n]*\n\n *- ", re.MULTILINE)


def list_at_section_end(text: str) -> list[str]:
    """Keys whose list ends a section: DVC moves the blank line after it between the key and its
    items and drops the one before the next section. Put such a key above another key instead."""
    return _LIST_AFTER_BLANK.findall(text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` only compare) each file; 1 if a file is not in DVC's style."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, do not rewrite")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        styled = dvc_style(text)
        for key in list_at_section_end(styled):
            sys.stderr.write(f"{path}: the list {key!r} ends its section; move it above another key\n")
        if styled == text:
            continue
        if args.check:
            sys.stderr.write(f"{path}: not in DVC's style; run: python ci/params_style.py {path}\n")
            status = 1
        else:
            path.write_text(styled, encoding="utf-8")
            sys.stderr.write(f"{path}: rewritten in DVC's style\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
