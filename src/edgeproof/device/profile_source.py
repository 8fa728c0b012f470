"""Which profile the board measures with: the base branch's, never the pull request's (Python 3.8-clean).

A bundle's ``profiles.json`` comes from the pull request's build. Measuring with it would let a pull
request decide how its own model is measured: fewer frames, a machine match that lets any board count,
throttling checks off. So the Jetson job, which runs the base branch's code, passes that checkout's
``params.yaml`` (``--rules-params``): its ``profiles`` section sets what is measured and how. Without it
(a developer on their own board) the bundle's own profiles are used; the device gate judges with the
base's rules anyway and finds any difference between the settings the board recorded and the base's
(rule ``measured_as_judged``).

The board has PyYAML, not ruamel.yaml (the device side's dependencies: numpy, an image decoder, PyYAML,
ONNX Runtime). PyYAML reads YAML 1.1 (``runs: 0200`` is octal 128, ``1e-05`` a string, ``off`` false)
and keeps the last of two duplicate keys where DVC refuses the file. The loader here resolves plain
scalars by ruamel's YAML 1.2 rules instead (booleans, ints, floats) and refuses duplicates, and
:func:`board_reading_differs` -- run by the pipeline's ``load_params`` -- refuses a params file whose
profiles this reader would read differently from the pipeline, naming the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from edgeproof.device.gated import EXIT_BAD_INPUT, Refused
from edgeproof.device.manifest import BundleError, read_json_file
from edgeproof.io import unique_key_loader
from edgeproof.profiles import Profile, parse_profiles, profiles_from_params
from edgeproof.settings import SettingsError, as_dict, changed_settings

RULE = "rules_params"


# ruamel.yaml's YAML 1.2 resolvers (ruamel/yaml/resolver.py), which DVC's reading of params.yaml uses
_YAML12 = (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (
        "float",
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
        r"|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("int", r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$", "-+0123456789"),
)


def _yaml12_int(loader: Any, node: Any) -> int:
    """An int as ruamel reads it in YAML 1.2: a leading zero is decimal (``0200`` is 200), ``0o`` octal."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text[0] == "-" else 1
    text = text.lstrip("+-")
    for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
        if text.startswith(prefix):
            return sign * int(text[2:], base)
    return sign * int(text)


def _strict_loader() -> Any:
    import yaml

    class StrictLoader(unique_key_loader()):
        """Safe loading that refuses a key given twice in one mapping, as DVC does, and resolves plain
        booleans, ints and floats by YAML 1.2 (as DVC's ruamel.yaml), not PyYAML's YAML 1.1."""

    replaced = {"tag:yaml.org,2002:" + name for name, _, _ in _YAML12}
    StrictLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in replaced]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    for name, pattern, first in _YAML12:
        StrictLoader.add_implicit_resolver("tag:yaml.org,2002:" + name, re.compile(pattern), list(first))
    StrictLoader.add_constructor("tag:yaml.org,2002:int", _yaml12_int)
    return StrictLoader


def read_board_yaml(path: Path) -> Any:
    """``path`` parsed as the board parses a params file (PyYAML with :func:`_strict_loader`)."""
    import yaml

    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_strict_loader())


def board_reading_differs(path: Path, profiles: Mapping[str, Profile]) -> Optional[str]:
    """Why the board would read the profiles of ``path`` differently from ``profiles`` (what the pipeline
    parsed, as DVC reads the file), naming the first key that differs; ``None`` when it reads the same.
    A file without a ``profiles`` section is the pipeline's business (the board refuses it anyway)."""
    import yaml

    try:
        raw = read_board_yaml(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return f"{path}: the board's reader (PyYAML) cannot read it: {' '.join(str(exc).split())}"
    if not isinstance(raw, dict) or "profiles" not in raw:
        return None
    try:
        board = profiles_from_params(raw, str(path))
    except SettingsError as exc:
        return f"{exc} (as the board's reader, PyYAML, reads the file)"
    differ = changed_settings(as_dict(dict(profiles)), as_dict(board), "profiles")  # strictly: 1 is not True
    if not differ:
        return None
    key, ours, theirs = differ[0]
    why = f"read as {ours!r} by the pipeline (as DVC) but {theirs!r} by the board (PyYAML); write it plainly"
    return f"{path}: {key}: {why}"


def read_rules_profiles(path: Path) -> Dict[str, Profile]:
    """The ``profiles`` section of the base branch's params file, validated like the pipeline's.

    Raises :class:`Refused` (rule ``rules_params``): the rules to measure with are unusable, which says
    nothing about the pull request's model.
    """
    import yaml

    try:
        raw = read_board_yaml(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise Refused(RULE, "{}: unreadable ({})".format(path, " ".join(str(exc).split())), EXIT_BAD_INPUT) from None
    try:
        return profiles_from_params(raw, str(path))
    except SettingsError as exc:
        raise Refused(RULE, str(exc), EXIT_BAD_INPUT) from None


def load_profile(bundle: Path, name: str, rules_params: Optional[Path] = None) -> Profile:
    """Profile ``name``: from ``rules_params`` (the base branch's params.yaml) when given, else the bundle's."""
    if rules_params is not None:
        profiles = read_rules_profiles(rules_params)
        if name not in profiles:
            why = f"{rules_params}: no profile {name!r} (has {sorted(profiles)})"
            raise Refused(RULE, why, EXIT_BAD_INPUT)
        return profiles[name]
    where = bundle / "profiles.json"
    profiles = parse_profiles(read_json_file(where), where=str(where))
    if name not in profiles:
        raise BundleError(f"{where}: no profile {name!r} (has {sorted(profiles)})")
    return profiles[name]
