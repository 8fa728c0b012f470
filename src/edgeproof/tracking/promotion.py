"""A model version's promotion record: written once, by the passing run that registered the file.

The record is one tag, ``promotion.record`` (JSON: run, origin, commit, provenance, verdict per
profile, key metrics, thresholds), and its fields are also shown as tags of their own
(``gate.<profile>``, ``metric.<name>``, ``promotion.*``) for MLflow's version page. One tag is
one write: two senders that both found the version without a record and both wrote theirs leave
one whole record (the later one's), never a mix of the two; the tags shown are rewritten from it by
every sender's settle step (:func:`mend`). Versions written before the record tag existed are read
from the tags shown. No MLflow import here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PROMOTION_PREFIX = "promotion."
PROMOTION_TAG = f"{PROMOTION_PREFIX}record"
KEY_METRICS = ("eval.map50_95", "eval.map50", "bench.fps_e2e", "bench.latency_ms.p95")
FIELDS = ("run_id", "origin", "commit", "provenance")
SHOWN = ("gate.", "metric.")  # the prefixes of the per-profile verdicts and metrics shown as tags


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def key_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The headline numbers (``metrics/headline.json`` keys, logged under their own names), else a few detail
    ones: the gated file's own evaluation and benchmark (``eval.*``/``bench.*``, never ``reference.*``)."""
    headline = {k: v for k, v in metrics.items() if "." not in k}
    return headline or {k: metrics[k] for k in KEY_METRICS if k in metrics}


def all_passed(verdicts: Mapping[str, str]) -> bool:
    """Whether there are verdicts (in words, ``passed`` / ``failed: ...``) and every one is ``passed``: a
    promotion record's ``passed``, and what an alias needs of a record's verdicts about its own file."""
    return bool(verdicts) and all(v == "passed" for v in verdicts.values())


def has_record(tags: Mapping[str, str]) -> bool:
    """Whether the version holds a promotion record (either form)."""
    return PROMOTION_TAG in tags or f"{PROMOTION_PREFIX}run_id" in tags


def record_tags(entry: Mapping[str, Any], metrics: Mapping[str, float]) -> dict[str, str]:
    """The tags of a promotion record made from a passing run's history ``entry`` and its ``metrics``:
    :data:`PROMOTION_TAG` first, then the fields shown."""
    fields = _fields_of(entry, metrics)
    return {PROMOTION_TAG: json.dumps(fields, sort_keys=True), **_shown(fields)}


def _fields_of(entry: Mapping[str, Any], metrics: Mapping[str, float]) -> dict[str, Any]:
    """A record's fields from a run's history ``entry`` and its ``metrics`` (the key ones)."""
    fields: dict[str, Any] = {k: str(entry[k]) for k in FIELDS}
    fields.update(
        verdicts=dict(entry["verdicts"]),
        metrics={k: _number(v) for k, v in key_metrics(metrics).items()},
        thresholds=dict(entry["thresholds"]),
    )
    return fields


ALIAS_RECORD = "promoted.{alias}.record"
"""Version tag: the record of the run that last moved ``alias`` to the version, the one
``alias.<alias>.run_id`` names (JSON, the promotion record's fields): what ``model show --alias <alias>``
shows as the alias's own promotion, beside the registering run's (which may be another run's: a what-if
experiment's, a not-clean one's)."""


def alias_record_tag(alias: str, entry: Mapping[str, Any], metrics: Mapping[str, float]) -> dict[str, str]:
    """The tag recording the run that moves ``alias`` to the version: its ``entry`` and key ``metrics``."""
    return {ALIAS_RECORD.format(alias=alias): json.dumps(_fields_of(entry, metrics), sort_keys=True)}


def alias_record(tags: Mapping[str, str], alias: str) -> dict[str, Any] | None:
    """The record of the run that moved ``alias`` to the version (``passed``: every verdict it carried
    passed), or ``None`` where none was written (a version promoted before these records existed)."""
    fields = _fields({PROMOTION_TAG: tags.get(ALIAS_RECORD.format(alias=alias)) or "null"})
    if fields is None:
        return None
    return {**fields, "passed": all_passed(fields["verdicts"]), "metrics": dict(sorted(fields["metrics"].items()))}


def alias_records(tags: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Every alias's promotion record on the version (:func:`alias_record`), by alias."""
    aliases = sorted(k.split(".")[1] for k in tags if k.startswith("promoted.") and k.endswith(".record"))
    return {a: r for a in aliases if (r := alias_record(tags, a)) is not None}


def _shown(fields: Mapping[str, Any]) -> dict[str, str]:
    tags = {f"gate.{profile}": str(words) for profile, words in fields["verdicts"].items()}
    tags.update({f"metric.{k}": str(v) for k, v in fields["metrics"].items()})
    tags.update({f"{PROMOTION_PREFIX}{k}": str(fields[k]) for k in FIELDS})
    tags[f"{PROMOTION_PREFIX}thresholds"] = json.dumps(fields["thresholds"], sort_keys=True)
    return tags


def _fields(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """The record tag's fields, or ``None`` where there is none or it does not hold a whole record."""
    try:
        fields = json.loads(tags.get(PROMOTION_TAG) or "null")
    except ValueError:
        return None
    whole = isinstance(fields, dict) and all(isinstance(fields.get(k), str) for k in FIELDS)
    if not whole or not all(isinstance(fields.get(k), dict) for k in ("verdicts", "metrics", "thresholds")):
        return None
    return fields


def _is_shown(key: str) -> bool:
    return key.startswith(SHOWN) and not key.endswith(".run_id")


def mend(tags: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The tags to set and to delete so the tags shown are the record's own: two first senders may
    each have written some of theirs. Nothing for a version without a whole record tag."""
    fields = _fields(tags)
    if fields is None:
        return {}, []
    shown = _shown(fields)
    update = {k: v for k, v in shown.items() if tags.get(k) != v}
    return update, sorted(k for k in tags if _is_shown(k) and k not in shown)


def promotion(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """The fixed promotion record of a version (``None`` for a version made before records existed):
    from the record tag, or from the tags shown for a version written before it."""
    fields = _fields(tags)
    if fields is None:
        run_id = tags.get(f"{PROMOTION_PREFIX}run_id")
        if not run_id:
            return None
        try:
            thresholds = json.loads(tags.get(f"{PROMOTION_PREFIX}thresholds") or "{}")
        except ValueError:
            thresholds = {}
        fields = {k: tags.get(f"{PROMOTION_PREFIX}{k}") for k in FIELDS}
        fields.update(
            verdicts={k[5:]: v for k, v in tags.items() if k.startswith("gate.") and _is_shown(k)},
            metrics={k[7:]: v for k, v in sorted(tags.items()) if k.startswith("metric.")},
            thresholds=thresholds,
        )
    verdicts = fields["verdicts"]
    aliases = {k.split(".")[1]: v for k, v in tags.items() if k.startswith("promoted.") and k.endswith(".run_id")}
    return {
        **{k: fields[k] for k in FIELDS},
        "passed": all_passed(verdicts),
        "verdicts": dict(verdicts),
        "metrics": dict(sorted(fields["metrics"].items())),
        "thresholds": fields["thresholds"],
        "aliases": aliases,
    }
