#!/usr/bin/env bash
# Which TensorRT engine cache the Jetson job may use: `bash ci/jetson/engine-cache.sh` prints the folder.
# Serialized TensorRT engines are executable artifacts (NVIDIA: deserializing an untrusted engine is running
# untrusted code), and the board's shared cache ($EDGEPROOF_ENGINE_CACHE, /var/cache/edgeproof/engines)
# outlives the job's fresh instance: the shared cache is for main's own commit only, the commit this
# checkout is (HEAD: github.sha, the default branch) and that the workflow says was pushed to main.
# Any other job (a pull request's) gets a job-local folder, deleted with the job: it neither loads what
# another job left nor leaves anything for main's jobs to load. Costs a pull request's job its engine build.
# Environment: CLAIMS_MAIN_PUSH ("true": event push, head_branch main, this repository), HEAD_SHA (the built
# commit), EDGEPROOF_ENGINE_CACHE (the shared cache), RUNNER_TEMP (the job's own, emptied per job).
set -euo pipefail
cd "$(dirname "$0")/../.."
shared="${EDGEPROOF_ENGINE_CACHE:-}"
here="$(git rev-parse -q --verify 'HEAD^{commit}' 2>/dev/null || true)"
if [ -n "$shared" ] && [ "${CLAIMS_MAIN_PUSH:-}" = "true" ] && [ -n "${HEAD_SHA:-}" ] && [ "$HEAD_SHA" = "$here" ]; then
  echo "ci/jetson: main's own commit $here: the shared engine cache" >&2
  printf '%s\n' "$shared"
else
  local_cache="${RUNNER_TEMP:-$PWD/.runner-temp}/edgeproof-engines"
  echo "ci/jetson: not main's own commit: a job-local engine cache (engines are built, never shared)" >&2
  printf '%s\n' "$local_cache"
fi
