"""``python -m edgeproof.cli``: the ``edgeproof`` command."""

from edgeproof.cli import main

raise SystemExit(main())
