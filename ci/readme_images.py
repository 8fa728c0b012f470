"""Copy the browser tests' screenshots over the README's images, so they show what the code renders now.

The README's pictures are not drawn by hand: each is a screenshot a services test takes in headless
Chromium (``test-artifacts/``). After ``pytest -m services tests/services`` (on a repo whose pipeline
has run, so the pages show real numbers), run this and commit the changed images:

    python ci/readme_images.py            # copy; names what changed
    python ci/readme_images.py --check    # exit 1 if a screenshot differs from its README image

tests/unit/test_readme.py checks that every image the README shows is listed here.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
# README image -> (screenshot, the test that takes it)
IMAGES = {
    "docs/images/mlflow-runs.png": ("mlflow-ui/runs-cropped.png", "tests/services/test_mlflow_ui.py"),
    "docs/images/mlflow-registered-model.png": (
        "mlflow-ui/registered-model-cropped.png",
        "tests/services/test_mlflow_ui.py",
    ),
    "docs/images/dvc-plots.png": ("dvc_plots.png", "tests/services/test_dvc_plots_offline.py"),
}


def main(argv: list[str] | None = None) -> int:
    """Copy (or ``--check``) each screenshot that exists; 1 when one is missing or differs in check mode."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    status = 0
    for image, (shot, test) in IMAGES.items():
        source, target = ARTIFACTS / shot, ROOT / image
        if not source.is_file():
            sys.stderr.write(f"{image}: no screenshot {source} (run pytest -m services {test})\n")
            status |= int(args.check)
        elif not target.is_file() or not filecmp.cmp(source, target, shallow=False):
            if args.check:
                sys.stderr.write(f"{image}: differs from {source}\n")
                status = 1
            else:
                shutil.copyfile(source, target)
                sys.stderr.write(f"{image}: updated from {source}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
