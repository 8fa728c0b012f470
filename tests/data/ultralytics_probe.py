"""Run ultralytics' own image/label checks on files and print what it saw, as JSON (one process per call).

Kept out of the test process: importing ultralytics patches ``PIL.Image.open`` and ``cv2.imread``
for everything that runs after it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """``probe.py STATE_DIR N_CLASSES IMAGE:LABEL ...`` -> JSON list of ``{msg, corrupt, shape, labels}``."""
    from edgeproof.training.ultralytics_env import configure

    configure(Path(argv[0]))
    from ultralytics.data.utils import verify_image_label

    out = []
    for pair in argv[2:]:
        image, label = pair.split(":", 1)
        result = verify_image_label((image, label, "", False, int(argv[1]), 0, 0, False))
        _, lb, shape, *_, nc, msg = result
        out.append({"msg": msg, "corrupt": nc, "shape": list(shape or []), "labels": [] if lb is None else lb.tolist()})
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
