#!/usr/bin/env bash
# Which TensorRT engine cache the Jetson job may use: `bash ci/jetson/engine-cache.sh` prints the folder.
# Serialized TensorRT engines are executable artifacts (NVIDIA: deserializing an untrusted engine is running
# untrusted code), and the board's shared cache ($EDGEPROOF_ENGINE_CACHE, /var/cache/edgeproof/engines)
# outlives the job's fresh instance: the shared cache is for main's own commit only: a push to main as
# ci/main_push.sh decides it (the one home of that proof: HEAD_SHA on refs/remotes/origin/main, which the
# board's fetch brings), and the commit this checkout is (HEAD: github.sha), so the code on the board built it.
# Any other job (a pull request's) gets a job-local folder, deleted with the job: it neither loads what
# another job left nor leaves anything for main's jobs to load. Costs a pull request's job its engine build.
# Environment: CLAIMS_MAIN_PUSH and HEAD_SHA (read by ci/main_push.sh), EDGEPROOF_ENGINE_CACHE (the shared
# cache), RUNNER_TEMP (the job's own, emptied per job).
set -euo pipefail
cd "$(dirname "$0")/../.."
shared="${EDGEPROOF_ENGINE_CACHE:-}"
here="$(git rev-parse -q --verify 'HEAD^{commit}' 2>/dev/null || true)"
# its answer on stdout, not into the step's outputs; a failure of the proof itself is "not main's" too
main_push="$(GITHUB_OUTPUT=/dev/stdout bash ci/main_push.sh || true)"
if [ -n "$shared" ] && [ "$main_push" = "main_push=true" ] && [ -n "$here" ] && [ "${HEAD_SHA:-}" = "$here" ]; then
  echo "ci/jetson: main's own commit $here: the shared engine cache" >&2
  printf '%s\n' "$shared"
else
  local_cache="${RUNNER_TEMP:-$PWD/.runner-temp}/edgeproof-engines"
  echo "ci/jetson: not main's own commit: a job-local engine cache (engines are built, never shared)" >&2
  printf '%s\n' "$local_cache"
fi
