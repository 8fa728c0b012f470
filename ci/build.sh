#!/usr/bin/env bash
# The hosted build job (and a local dry run): set up, fetch what the DVC remote already has,
# reproduce the pipeline up to the hand-off bundle, verify it, and write the metrics diff against
# main for the pull-request comment (ci-out/metrics-diff.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if [ -n "$(dvc remote list)" ]; then
  # a team remote (README "Gating on a Jetson"): unchanged stages are pulled instead of rerun
  dvc pull --allow-missing || echo "ci/build: dvc pull incomplete; the missing stages rerun" >&2
fi
dvc repro bundle
PYTHONPATH=src python -m edgeproof.device verify --bundle release/bundle
mkdir -p ci-out
base="${EDGEPROOF_DIFF_BASE:-origin/main}"
if git rev-parse --verify -q "$base" >/dev/null; then
  dvc metrics diff "$base" --md > ci-out/metrics-diff.md || echo "_dvc metrics diff failed_" > ci-out/metrics-diff.md
else
  echo "_no $base to compare with_" > ci-out/metrics-diff.md
fi
