"""Strict settings as plain dataclasses, without pydantic: the device side's params loader.

The device side (what runs on a Jetson: runtime, device measurement, device gate inputs) must run
on Python 3.8 with only numpy, an image decoder, PyYAML and onnxruntime. Its settings -- the
deployment operating point (``deploy``) and the device profiles (``profiles``) -- are therefore
frozen dataclasses parsed here, with the same promise as the rest of ``params.yaml``: an unknown
key, a wrong type, a non-finite number or an out-of-range value fails with a message naming the
dotted key. ``config.py`` embeds these types in the full (pydantic) schema, so they have one home.

Constraints live in each field's ``metadata``: ``ge``/``gt``/``le``/``lt`` bounds, ``choices``,
``min_items`` and ``pattern`` (a string's whole value must match it; ``pattern_help`` says what is meant).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type, TypeVar, Union, get_type_hints

T = TypeVar("T")

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "SettingsError",
    "as_dict",
    "bounded",
    "changed_settings",
    "out_of_range",
    "parse_dataclass",
]

INT_MIN, INT_MAX = -(2**63), 2**63 - 1


class SettingsError(ValueError):
    """A settings value that cannot be used; the message names the dotted key."""


def bounded(default: Any = dataclasses.MISSING, **constraints: Any) -> Any:
    """A dataclass field with constraints (``ge``, ``gt``, ``le``, ``lt``, ``choices``, ``min_items``, ``pattern``)."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=constraints)
    return dataclasses.field(default=default, metadata=constraints)


def out_of_range(value: Any) -> Optional[str]:
    """Why ``value`` (or a number inside it, at any depth) is not a usable setting: non-finite or beyond 64 bits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        return f"integer out of range (64-bit), got {value!r}"
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        why = out_of_range(item)
        if why is not None:
            return why
    return None


def _origin(tp: Any) -> Any:
    return getattr(tp, "__origin__", None)


def _args(tp: Any) -> Tuple[Any, ...]:
    return tuple(getattr(tp, "__args__", ()) or ())


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_bounds(value: Any, meta: Mapping[str, Any], key: str) -> None:
    checks = (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    )
    for name, ok, sign in checks:
        if name in meta and not ok(value, meta[name]):
            raise SettingsError(f"{key}: must be {sign} {meta[name]}, got {value!r}")
    if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
        raise SettingsError(f"{key}: must be {meta.get('pattern_help') or meta['pattern']}, got {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        close = difflib.get_close_matches(str(value), [str(c) for c in meta["choices"]], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SettingsError(f"{key}: must be one of {list(meta['choices'])}, got {value!r}{hint}")


def _convert(tp: Any, value: Any, key: str, meta: Mapping[str, Any]) -> Any:
    if tp is Any:  # free-form (a provider's options): still no non-finite or huge number, at any depth
        why = out_of_range(value)
        if why is not None:
            raise SettingsError(f"{key}: {why}")
        return value
    origin = _origin(tp)
    if origin is Union:
        options = _args(tp)
        if value is None and type(None) in options:
            return None
        real = [o for o in options if o is not type(None)]
        errors = []
        for option in real:
            try:
                return _convert(option, value, key, meta)
            except SettingsError as exc:
                errors.append(str(exc))
        raise SettingsError(
            errors[0] if len(real) == 1 else f"{key}: expected one of {[_type_name(o) for o in real]}, got {value!r}"
        )
    if dataclasses.is_dataclass(tp):
        return parse_dataclass(tp, value, key)
    if origin in (tuple, Tuple):
        if not isinstance(value, (list, tuple)):
            raise SettingsError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        if len(value) < meta.get("min_items", 0):
            raise SettingsError(f"{key}: needs at least {meta['min_items']} item(s), got {len(value)}")
        item_tp = _args(tp)[0]
        item_meta = {k: v for k, v in meta.items() if k != "min_items"}
        return tuple(_convert(item_tp, v, f"{key}[{i}]", item_meta) for i, v in enumerate(value))
    if origin in (dict, Dict):
        if not isinstance(value, Mapping):
            raise SettingsError(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
        if len(value) < meta.get("min_items", 0):
            raise SettingsError(f"{key}: needs at least {meta['min_items']} entr(ies), got {len(value)}")
        key_tp, value_tp = _args(tp)
        out = {}
        for k, v in value.items():
            if not isinstance(k, key_tp):
                raise SettingsError(f"{key}: keys must be {_type_name(key_tp)}, got {k!r}")
            out[k] = _convert(value_tp, v, f"{key}.{k}", {})
        return out
    return _convert_scalar(tp, value, key, meta)


def _convert_scalar(tp: Any, value: Any, key: str, meta: Mapping[str, Any]) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{key}: expected true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{key}: expected an integer, got {value!r}")
        if not INT_MIN <= value <= INT_MAX:
            raise SettingsError(f"{key}: integer out of range (64-bit), got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{key}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise SettingsError(f"{key}: must be a finite number, got {value!r}")
    elif tp is str:
        if not isinstance(value, str):
            raise SettingsError(f"{key}: expected a string, got {value!r}")
        if not value and meta.get("min_items", 0):
            raise SettingsError(f"{key}: must not be empty")
    else:  # pragma: no cover - a programming error in a settings class
        raise TypeError(f"{key}: unsupported settings type {tp!r}")
    _check_bounds(value, meta, key)
    return value


def parse_dataclass(cls: Type[T], raw: Any, where: str) -> T:
    """Build the frozen dataclass ``cls`` from a mapping, strictly; ``where`` is the dotted key prefix.

    Missing keys take the field defaults; an instance of ``cls`` is returned unchanged. An empty (null)
    section is refused, as the pydantic sections refuse one: leave the key out to take the defaults.
    """
    if isinstance(raw, cls):
        return raw
    if raw is None:
        raise SettingsError(f"{where}: empty (null); give its keys, or leave it out to take the defaults")
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where}: expected a mapping, got {type(raw).__name__} {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in raw if k not in fields]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), list(fields), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SettingsError(f"{where}.{unknown[0]}: unknown key{hint} (allowed: {', '.join(fields)})")
    hints = get_type_hints(cls, vars(sys.modules[cls.__module__]))
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SettingsError(f"{where}.{name}: required key missing")
            continue
        values[name] = _convert(hints[name], raw[name], f"{where}.{name}", f.metadata)
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"{where}: {exc}") from None


def as_dict(obj: Any) -> Any:
    """A settings dataclass as plain JSON-able data (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: as_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [as_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: as_dict(v) for k, v in obj.items()}
    return obj


def _leaves(value: Any, key: str, out: Dict[str, Any]) -> None:
    """``value``'s settings under dotted ``key``; an empty mapping is a setting of its own (``{}``), not none."""
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _leaves(v, f"{key}.{k}", out)
    else:
        out[key] = value


def _same(a: Any, b: Any) -> bool:
    """One setting, strictly: ``1`` and ``True``, or ``1`` and ``1.0``, are equal to Python yet not the same
    value in a params file (a reader that resolves them differently, a proposal that changes the type)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))  # noqa: B905 (3.8: no strict=)
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def changed_settings(old: Any, new: Any, prefix: str, absent: Any = None) -> List[Tuple[str, Any, Any]]:
    """Every dotted key (``prefix.a.b``) whose setting differs between two :func:`as_dict` trees (``None``:
    no settings), as ``(key, old, new)`` sorted by key, ``absent`` for the side without the key. Leaves
    compare strictly (:func:`_same`); an empty mapping is a leaf. The one key-by-key diff of settings: the
    board's reading of a params file against the pipeline's, and a pull request's proposed profiles."""
    here: Dict[str, Any] = {}
    there: Dict[str, Any] = {}
    for tree, out in ((old, here), (new, there)):
        for k, v in (tree or {}).items():
            _leaves(v, f"{prefix}.{k}", out)
    return [
        (key, here.get(key, absent), there.get(key, absent))
        for key in sorted(set(here) | set(there))
        if key not in here or key not in there or not _same(here[key], there[key])
    ]
