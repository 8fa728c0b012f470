#!/usr/bin/env bash
# The hosted build job (and a local dry run): set up, fetch what the DVC remote already has,
# reproduce the pipeline up to the hand-off bundle, verify it, and lay out ci-out/ for the device gate
# (docs/jetson.md): metrics-diff.md (`dvc metrics diff` against main), release.json (THIS build's
# release record: the sha chain is checked against it, never against a committed one) and
# params.yaml (the PR's proposed thresholds; the gate judges with the base branch's).
# EDGEPROOF_SKIP_SETUP=1 uses the dvc/python already on PATH (tests).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EDGEPROOF_SKIP_SETUP:-}" != "1" ]; then
  bash ci/setup.sh
  export PATH="$PWD/.venv/bin:$PATH"
fi
if [ -n "$(dvc remote list)" ]; then
  # the team path (docs/jetson.md "A DVC remote"): outputs of unchanged stages are pulled, not rerun;
  # training is not bit-identical across machines, so a retrain would ship different weights
  dvc pull --allow-missing || echo "ci/build: dvc pull incomplete; the missing stages rerun" >&2
fi
dvc repro bundle
PYTHONPATH=src python -m edgeproof.device verify --bundle release/bundle
mkdir -p ci-out
cp reports/release.json ci-out/release.json
cp params.yaml ci-out/params.yaml
if [ -n "${PR_NUMBER:-}" ]; then
  # which PR this build is (a workflow_run event carries no PR number for a fork's PR); the gate job
  # trusts it only when GitHub confirms that PR's head is the commit it judges (ci/github_pr.py)
  [[ "$PR_NUMBER" =~ ^[0-9]+$ && "${PR_HEAD_SHA:-}" =~ ^[0-9a-f]{40}$ ]] || { echo "ci/build: bad PR_NUMBER/PR_HEAD_SHA" >&2; exit 1; }
  printf '{"number": %s, "head_sha": "%s"}\n' "$PR_NUMBER" "$PR_HEAD_SHA" > ci-out/pr.json
fi
base="${EDGEPROOF_DIFF_BASE:-origin/main}"
if git rev-parse --verify -q "$base" >/dev/null; then
  dvc metrics diff "$base" --md > ci-out/metrics-diff.md || echo "_dvc metrics diff failed_" > ci-out/metrics-diff.md
  if ! dvc status gate -q; then
    # this build stops at the bundle: the gate's outputs (metrics/headline.json) are the committed files, and
    # dvc.lock says they do not belong to this build's outputs (stale, or edited by hand): their rows go
    echo "ci/build: dvc status gate is not clean: metrics/headline.json left out of the metrics diff" >&2
    grep -v '^| *metrics/headline.json *|' ci-out/metrics-diff.md > ci-out/metrics-diff.tmp || true
    echo "| metrics/headline.json | left out: dvc status gate says it does not match this build | | | |" >> ci-out/metrics-diff.tmp
    mv ci-out/metrics-diff.tmp ci-out/metrics-diff.md
  fi
else
  echo "_no $base to compare with_" > ci-out/metrics-diff.md
fi
