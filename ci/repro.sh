#!/usr/bin/env bash
# The main job: set up (if needed) and run the whole pipeline on the embedded default dataset.
# Extra arguments go to `dvc repro` (e.g. `bash ci/repro.sh gate` or `bash ci/repro.sh -f`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec dvc repro "$@"
