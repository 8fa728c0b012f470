"""``python -m edgeproof``: the ``edgeproof`` command (as ``python -m edgeproof.cli``)."""

from edgeproof.cli import main

raise SystemExit(main())
