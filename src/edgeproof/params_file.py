"""Reading a params file exactly as DVC reads it (plumbing: the config loader and the device gate's
base rules both read params files through here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ParamsError(ValueError):
    """A params file that cannot be used; the message names the file and key."""


def read_params_yaml(path: Path | str) -> Any:
    """Parse a params file exactly as DVC does: ruamel.yaml's safe loader (YAML 1.2), as in
    ``dvc.utils.serialize.parse_yaml``.

    PyYAML (YAML 1.1) would read ``seed: 010`` as 8 where DVC reads 10, ``1e-3`` as a string, and
    keep the last of two duplicate keys where DVC refuses the file: what edgeproof validates must be
    what DVC passes to the stages and records in ``dvc.lock``. Errors are one line naming the file.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise ParamsError(f"{path}: not a readable text file ({exc})") from None
    try:
        return YAML(typ="safe").load(text) or {}
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = " ".join(f"{exc.context or ''} {exc.problem or ''}".split())
        raise ParamsError(f"{path}: not valid YAML as DVC reads it ({where}{what})") from None
    except YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML as DVC reads it ({' '.join(str(exc).split())})") from None
