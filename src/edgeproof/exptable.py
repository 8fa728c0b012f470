"""``edgeproof exps``: the experiment table in a terminal: headline metrics, then the params that differ.

``dvc exp show`` lists every params.yaml key (~150 columns) in file order and cannot reorder them,
so its table is far wider than a terminal. This view reads the same rows (``dvc.api.exp_show``)
and prints, within ``width`` columns: the experiment, the headline metrics that decide a release,
then only the params whose values differ between the rows. What does not fit is named below the
table; ``measured_on`` is shown as a column only when the rows were measured on different machines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeproof.markdown import cell

# (key in metrics/headline.json, short header)
METRICS = (
    ("mAP50-95", "mAP50-95"),
    ("mAP50", "mAP50"),
    ("fps", "fps"),
    ("latency_p95_ms", "p95_ms"),
    ("gate_passed", "gate"),
    ("release_variant", "variant"),
)
MACHINE = "measured_on"
MAX_CELL = 24
GAP = 2


def param_keys(params_file: Path) -> list[str]:
    """The dotted keys of ``params_file`` in file order (how ``dvc.api.exp_show`` names them)."""
    import yaml

    def walk(node: Any, prefix: str) -> Iterable[str]:
        if isinstance(node, Mapping) and node:
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        else:
            yield prefix[:-1]

    return list(walk(yaml.safe_load(params_file.read_text(encoding="utf-8")) or {}, ""))


def _text(value: Any, key: str = "") -> str:
    if key == "gate_passed" and value is not None:
        return "pass" if str(value) == "True" else "FAIL"
    if value is None or value == "None":
        return "-"
    text = cell(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _header(key: str) -> str:
    return key if len(key) <= MAX_CELL else "…" + key[-(MAX_CELL - 1) :]


def _name(row: Mapping[str, Any]) -> str:
    if row.get("typ") == "baseline" or not row.get("Experiment"):
        return str(row.get("rev") or "?")
    return f"  {row['Experiment']}"


def _columns(rows: Sequence[Mapping[str, Any]], params: Sequence[str]) -> list[tuple[str, str]]:
    """(key, header) in priority order: metrics present, the machine when it differs, changed params."""

    def differs(key: str) -> bool:
        return len({str(r.get(key)) for r in rows}) > 1

    cols = [(key, head) for key, head in METRICS if any(key in r for r in rows)]
    if differs(MACHINE):
        cols.append((MACHINE, "measured_on"))
    return cols + [(key, _header(key)) for key in params if differs(key)]


def render(rows: Sequence[Mapping[str, Any]], params: Sequence[str], width: int = 120) -> list[str]:
    """The table as lines no wider than ``width``, then what was left out and where the numbers come from."""
    names = [_name(r) for r in rows]
    first = max([len("Experiment"), *map(len, names)])
    shown: list[tuple[str, str, int]] = []
    left_out: list[str] = []
    used = first
    for key, head in _columns(rows, params):
        w = max([len(head), *(len(_text(r.get(key), key)) for r in rows)])
        if used + GAP + w <= width:
            shown.append((key, head, w))
            used += GAP + w
        else:
            left_out.append(key)
    gap = " " * GAP
    lines = ["Experiment".ljust(first) + "".join(gap + head.rjust(w) for _, head, w in shown)]
    lines.append("-" * used)
    for name, row in zip(names, rows, strict=True):
        lines.append(name.ljust(first) + "".join(gap + _text(row.get(k), k).rjust(w) for k, _, w in shown))
    machines = {str(r.get(MACHINE)) for r in rows if r.get(MACHINE) not in (None, "None")}
    if len(machines) == 1 and all(k != MACHINE for k, _, _ in shown):
        lines.append(f"measured on {machines.pop()}")
    if left_out:
        lines.extend(_wrap(f"not shown (over {width} columns): {', '.join(left_out)}", width))
    if not any(key in params for key, _, _ in shown) and not left_out:
        lines.append("no param differs between these rows")
    return lines


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, subsequent_indent="  ")


def experiment_rows(repo: Path, num: int = 1) -> list[dict[str, Any]]:
    """``dvc exp show``'s rows (workspace, the commits, their experiments) as DVC's API gives them."""
    try:
        import dvc.api
    except ImportError as exc:
        raise RuntimeError("edgeproof exps needs DVC (pip install 'edgeproof[train]')") from exc
    return list(dvc.api.exp_show(repo=str(repo), num=num))


def show(repo: Path, params_file: Path, width: int = 120, num: int = 1) -> list[str]:
    """The terminal table of ``repo``'s experiments."""
    return render(experiment_rows(repo, num), param_keys(params_file), width)
