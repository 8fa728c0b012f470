"""DVC stages: one thin module per stage, run as ``python -m stages.<name>``.

Each ``main()`` parses the paths ``dvc.yaml`` passes, loads and validates ``params.yaml``, calls
the ``edgeproof`` library and writes exactly the outputs ``dvc.yaml`` declares, atomically.

The stages import the library from the ``src/`` next to them, not from wherever ``edgeproof`` is
installed: ``dvc exp run --temp`` / ``--queue`` run a snapshot of the repo in a temporary folder,
and an editable install would otherwise run the live workspace's code for the snapshot's commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parent.parent / "src")
if Path(_SRC).is_dir() and (not sys.path or sys.path[0] != _SRC):
    sys.path.insert(0, _SRC)
