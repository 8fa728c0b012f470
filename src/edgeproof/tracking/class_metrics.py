"""Per-class figures as MLflow metrics: one key segment per class, in ``data.*`` and ``eval.class.*`` alike.

The data report counts boxes per class (``data.splits.<split>.classes.<key>``) and evaluate scores each
class (``eval.class.<key>.ap``), both keyed by :func:`edgeproof.data.classkeys.class_keys`. MLflow's
key rules are applied here once, over every class key either file holds
(:func:`class_segments`), so a class whose name MLflow rejects (``person/rider``, ``a:b``) shows
under the same cleaned segment, with the same short hash where two would clash, in both namespaces.
No MLflow import here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edgeproof.data.classkeys import class_keys
from edgeproof.tracking.keys import clean_part, unique_names

EVALUATIONS = ("eval", "reference.eval")
"""The metrics files with per-class rows: the gated (released) file's evaluation and the fp32 reference's."""


def eval_class_labels(eval_metrics: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """evaluate's per-class rows, each with its class key (classes sharing a name told apart by id)."""
    rows = [row for row in eval_metrics.get("per_class") or [] if isinstance(row, Mapping)]
    labels = [str(row.get("name", row.get("category_id"))) for row in rows]
    ids = [row.get("category_id") for row in rows]
    if all(type(i) is int for i in ids) and len(set(ids)) == len(ids):  # evaluate's rows: every id, once
        keys = class_keys(zip(ids, labels, strict=True))
        labels = [keys[i] for i in ids]
    return list(zip(rows, labels, strict=True))


def _split_classes(data: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    splits = data.get("splits")
    for split in splits.values() if isinstance(splits, Mapping) else ():
        classes = split.get("classes") if isinstance(split, Mapping) else None
        if isinstance(classes, Mapping):
            yield classes


def class_segments(metrics: Mapping[str, Any]) -> dict[str, str]:
    """``{class key: MLflow-safe key segment}`` over every class key of the data report and evaluate's rows:
    disallowed characters replaced (no slash either), a short hash appended where two keys would clash."""
    data = metrics.get("data")
    keys = {str(k) for classes in _split_classes(data if isinstance(data, Mapping) else {}) for k in classes}
    for name in EVALUATIONS:
        evaluation = metrics.get(name)
        keys |= {label for _, label in eval_class_labels(evaluation if isinstance(evaluation, Mapping) else {})}
    return unique_names(sorted(keys), clean_part)


def with_class_segments(data: Mapping[str, Any], segments: Mapping[str, str]) -> dict[str, Any]:
    """A copy of the data report whose per-split class counts are keyed by ``segments``."""
    out = dict(data)
    splits = data.get("splits")
    if isinstance(splits, Mapping):
        out["splits"] = {
            name: {**split, "classes": {segments[str(k)]: v for k, v in split["classes"].items()}}
            if isinstance(split, Mapping) and isinstance(split.get("classes"), Mapping)
            else split
            for name, split in splits.items()
        }
    return out


def per_class_metrics(
    eval_metrics: Mapping[str, Any], segments: Mapping[str, str] | None = None, prefix: str = "eval"
) -> dict[str, float]:
    """Per-class AP as ``<prefix>.class.<segment>.ap`` (and ``.ap50``) metrics (MLflow cannot chart a list);
    ``prefix``: the metrics file's name (``eval``, the gated file's, or ``reference.eval``).

    ``<segment>`` is the class key with the characters MLflow rejects replaced (``traffic light (red)``
    -> ``traffic light _red_``), a short hash appended where two would otherwise clash: ``segments``
    (:func:`class_segments` of all the metrics files, so ``data.*`` shows the class under the same one),
    or those of the rows alone.
    """
    labelled = eval_class_labels(eval_metrics)
    safe = segments if segments is not None else unique_names([label for _, label in labelled], clean_part)
    out = {}
    for row, label in labelled:
        for key in ("ap", "ap50"):
            if row.get(key) is not None:
                out[f"{prefix}.class.{safe[label]}.{key}"] = float(row[key])
    return out
