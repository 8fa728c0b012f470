#!/usr/bin/env bash
# The test command: set up (if needed), lint, and run the whole test suite (unit, data, pipeline).
# Extra arguments go to pytest (e.g. `bash ci/test.sh -m "not pipeline"` for the fast tests only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check .
exec python -m pytest "$@"
