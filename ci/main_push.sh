#!/usr/bin/env bash
# Is this device-gate run main's own push? The one home of that decision: `bash ci/main_push.sh` in the gate job,
# after a full-history checkout (fetch-depth: 0) of the default branch, and in the Jetson job through
# ci/jetson/engine-cache.sh, after the board's depth-1 fetch of github.sha and of refs/heads/main. Writes
# `main_push=true|false` to $GITHUB_OUTPUT (stdout outside Actions). The answer guards what only main may do:
# upload the next pull requests' baseline (device-gate-main), judge without one (main's first), the MLflow job
# with its secrets, and the board's shared TensorRT engine cache.
# `workflow_run.head_branch == 'main'` is only a name (a tag called main, say); an environment's deployment
# branch rule adds nothing either (a workflow_run job runs on the default branch's ref). So the built commit
# (HEAD_SHA) must also be on refs/heads/main: an ancestor of the branch as fetched, never a ref of that name.
# It fails closed: no claim, no sha, no main branch, or an ancestry this checkout cannot show (a shallow one
# after main moved on) is not main's push.
# Environment: CLAIMS_MAIN_PUSH ("true": the workflow saw event push, head_branch main, this repository), HEAD_SHA.
set -euo pipefail
cd "$(dirname "$0")/.."
answer=false
branch=""
for ref in refs/remotes/origin/main refs/heads/main; do  # full names: a tag called main never matches
  if git rev-parse -q --verify "$ref^{commit}" >/dev/null; then branch="$ref"; break; fi
done
if [ "${CLAIMS_MAIN_PUSH:-}" != "true" ]; then
  echo "ci/main_push: not a push to main of this repository" >&2
elif ! [[ "${HEAD_SHA:-}" =~ ^[0-9a-f]{40}$ ]]; then
  echo "ci/main_push: no commit sha in HEAD_SHA: not taken for main's" >&2
elif [ -z "$branch" ]; then
  echo "ci/main_push: no main branch in this checkout (fetch-depth: 0 or refs/heads/main): not main's" >&2
elif git merge-base --is-ancestor "$HEAD_SHA" "$branch" 2>/dev/null; then
  answer=true
  echo "ci/main_push: $HEAD_SHA is on $branch" >&2
elif [ "$(git rev-parse --is-shallow-repository)" = "true" ]; then
  echo "ci/main_push: this shallow checkout does not show $HEAD_SHA on $branch (or main moved on): not main's" >&2
else
  echo "ci/main_push: $HEAD_SHA is not on $branch (a tag or other ref named main?): not main's push" >&2
fi
echo "main_push=$answer" >> "${GITHUB_OUTPUT:-/dev/stdout}"
