"""Which profile the board measures with: the base branch's, never the pull request's (Python 3.8-clean).

A bundle's ``profiles.json`` comes from the pull request's build. Measuring with it would let a pull
request decide how its own model is measured: fewer frames, a machine match that lets any board count,
throttling checks off. So the Jetson job, which runs the base branch's code, passes that checkout's
``params.yaml`` (``--rules-params``): its ``profiles`` section sets what is measured and how. Without it
(a developer on their own board) the bundle's own profiles are used; the device gate judges with the
base's rules anyway and finds any difference between the settings the board recorded and the base's
(rule ``measured_as_judged``).

The board has PyYAML, not ruamel.yaml (the device side's dependencies: numpy, an image decoder, PyYAML,
ONNX Runtime). PyYAML reads YAML 1.1 and keeps the last of two duplicate keys where DVC refuses the
file; the loader here refuses duplicates too, and a test holds the repository's ``params.yaml`` to
the same profiles under both readers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from edgeproof.device.gated import EXIT_BAD_INPUT, Refused
from edgeproof.device.manifest import BundleError, read_json_file
from edgeproof.profiles import Profile, parse_profiles, profiles_from_params
from edgeproof.settings import SettingsError

RULE = "rules_params"


def _strict_loader() -> Any:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """Safe loading that refuses a key given twice in one mapping, as DVC does."""

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen = []  # the mapping's own keys: a merged-in key (<<: *anchor) may be overridden, not repeated
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.append(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)  # flattens the merge keys

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


def read_rules_profiles(path: Path) -> Dict[str, Profile]:
    """The ``profiles`` section of the base branch's params file, validated like the pipeline's.

    Raises :class:`Refused` (rule ``rules_params``): the rules to measure with are unusable, which says
    nothing about the pull request's model.
    """
    import yaml

    try:
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_strict_loader())
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
