#!/usr/bin/env bash
# The hosted gate job: `bash ci/gate.sh PROFILE...` after the build and Jetson artifacts were
# downloaded (ci-out/, release/bundle, ci-out/device/device-results-PROFILE/). Runs the device gate
# for every profile and, where the job provides them, updates the PR comment and commit statuses
# (GITHUB_TOKEN), logs to MLflow (MLFLOW_TRACKING_URI) and on main moves the registry alias (ON_MAIN).
# Exit: 0 pass, 1 fail, 3 inconclusive (the worst over the profiles).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EDGEPROOF_GATE_SKIP_INSTALL:-}" != "1" ]; then
  python -m pip install --quiet --disable-pip-version-check -e ".[cpu]"  # light: no torch, no ultralytics, no DVC
fi
mkdir -p reports/device ci-out/baseline
for p in "$@"; do
  rm -rf "reports/device/$p"
  if [ -d "ci-out/device/device-results-$p" ]; then cp -r "ci-out/device/device-results-$p" "reports/device/$p"; fi
done
# main's last passing device verdicts: the baseline of the profiles' regression rules
if [ -n "${GITHUB_TOKEN:-}" ] && [ "${ON_MAIN:-false}" != "true" ] && command -v gh >/dev/null; then
  run_id="$(GH_TOKEN="$GITHUB_TOKEN" gh run list --workflow release-gate.yml --branch main --event push \
    --status success --limit 1 --json databaseId --jq '.[0].databaseId' 2>/dev/null || true)"
  if [ -n "$run_id" ]; then
    GH_TOKEN="$GITHUB_TOKEN" gh run download "$run_id" --name device-gate --dir ci-out/baseline || true
  fi
fi
args=(--profile "$@" --baseline-root ci-out/baseline --metrics-diff ci-out/metrics-diff.md --comment-out ci-out/comment.md)
if [ -n "${GITHUB_TOKEN:-}" ]; then args+=(--github); fi
if [ -n "${MLFLOW_TRACKING_URI:-}" ]; then
  args+=(--mlflow)
  if [ "${ON_MAIN:-false}" = "true" ]; then args+=(--move-alias); fi
fi
python ci/device_gate.py "${args[@]}"
