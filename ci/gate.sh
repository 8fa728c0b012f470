#!/usr/bin/env bash
# The hosted gate job: `bash ci/gate.sh PROFILE...`, from the BASE branch's checkout, after the
# workflow downloaded the pull request's data (docs/jetson.md):
#   release/bundle/                          the bundle (build artifact "release-bundle")
#   ci-out/build/{metrics-diff.md,release.json,params.yaml,pr.json}   (build artifact "build-report")
#   ci-out/device/device-results-PROFILE/    the Jetson job's results (artifact "device-results-PROFILE")
# Judges every profile with the base's params.yaml (the PR's shown as proposed) and writes
# ci-out/device-gate/{PROFILE/,comment.md}: the ONE folder the workflow uploads (its fixed layout is the
# next PRs' regression baseline). Environment: JETSON_RESULT (needs.jetson.result), GITHUB_TOKEN (PR
# comment, statuses, main's baseline), MAIN_PUSH (ci/main_push.sh's answer: may go without main's baseline),
# BUILD_RESULT (the build's conclusion: not success, every profile is inconclusive, saying so),
# MLFLOW_TRACKING_URI + ON_MAIN (the track job only).
# Exit: 0 pass, 1 fail, 3 inconclusive (the worst over the profiles).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EDGEPROOF_GATE_SKIP_INSTALL:-}" != "1" ]; then
  python -m pip install --quiet --disable-pip-version-check -e ".[cpu]"  # light: no torch, no ultralytics, no DVC
fi
out=ci-out/device-gate
build=ci-out/build
mkdir -p "$out" ci-out/baseline
if [ "${EDGEPROOF_GATE_JUDGED:-}" != "1" ]; then  # the track job reuses the gate job's folder as it is
  for p in "$@"; do
    rm -rf "${out:?}/$p"
    if [ -d "ci-out/device/device-results-$p" ]; then cp -r "ci-out/device/device-results-$p" "$out/$p"; fi
  done
fi
args=(--profile "$@" --results-root "$out" --baseline-root ci-out/baseline --comment-out "$out/comment.md")
args+=(--metrics-diff "$build/metrics-diff.md" --release "$build/release.json" --pr-json "$build/pr.json")
if [ -f "$build/params.yaml" ]; then args+=(--params params.yaml --proposed-params "$build/params.yaml"); fi
if [ -n "${JETSON_RESULT:-}" ]; then args+=(--jetson-result "$JETSON_RESULT"); fi
built=true  # BUILD_RESULT: the build run's conclusion (device-gate.yml's build-failed job); nothing to judge
if [ -n "${BUILD_RESULT:-}" ] && [ "$BUILD_RESULT" != "success" ]; then args+=(--build-result "$BUILD_RESULT"); built=false; fi
if [ "${EDGEPROOF_GATE_JUDGED:-}" = "1" ]; then args+=(--judged); fi
# main's last passing device verdicts (artifact device-gate-main, uploaded only by passing pushes to main).
# A pull request is judged against them: without one (none, none accepted, a profile main has no verdict
# for) its val set and regression rules are inconclusive (--require-baseline), never dropped. Only a push to
# main (MAIN_PUSH=true: ci/main_push.sh proved its commit is on refs/heads/main) goes without, to make the first.
if [ -n "${GITHUB_TOKEN:-}" ] && [ "${ON_MAIN:-false}" != "true" ]; then
  rc=0
  if [ "$built" = true ]; then python ci/artifacts.py latest --name device-gate-main --dest ci-out/baseline || rc=$?; fi
  why=""
  if [ "$rc" = 4 ]; then why="no device-gate-main artifact on main (none yet, expired or deleted)"
  elif [ "$rc" = 5 ]; then why="device-gate-main artifacts found, none made by main's device-gate workflow (see the job log)"
  elif [ "$rc" != 0 ]; then  # a failed look-up is not "none yet": inconclusive, even on main
    echo "ci/gate: main's baseline could not be fetched (exit $rc): regression and val set not judged" >&2
    args+=(--baseline-error "ci/artifacts.py exit $rc, see the job log")
  fi
  if [ -n "$why" ]; then echo "ci/gate: $why" >&2; args+=(--baseline-absent "$why"); fi
  if [ "${MAIN_PUSH:-false}" != "true" ]; then args+=(--require-baseline); fi
  args+=(--github)
fi
if [ -n "${MLFLOW_TRACKING_URI:-}" ]; then
  args+=(--mlflow)
  if [ "${ON_MAIN:-false}" = "true" ]; then args+=(--move-alias); fi
fi
python ci/device_gate.py "${args[@]}"
