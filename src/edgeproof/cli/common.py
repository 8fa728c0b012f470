"""What every ``edgeproof`` subcommand shares: results as JSON on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit(data: Any) -> None:
    """Write ``data`` to stdout as indented JSON (the result of every subcommand)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
