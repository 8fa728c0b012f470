"""What the ``edgeproof`` subcommands share: results as JSON on stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The one ``--params`` default object: a command may tell the implicit default (``args.params is
# DEFAULT_PARAMS``) from a file the user named, even when it is named ``params.yaml`` too.
DEFAULT_PARAMS = Path("params.yaml")


def emit(data: Any) -> None:
    """Write ``data`` to stdout as indented JSON (how most subcommands give their result)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
