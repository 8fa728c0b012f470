#!/usr/bin/env bash
# Root half of edgeproof-runner.service (installed to /opt/edgeproof/bin by prepare-runner.sh):
#   runner-instance.sh prepare   ExecStartPre=+  before every job: refresh the verified runner release
#                                (at most daily), make a FRESH instance from it for the runner user,
#                                and hand it a one-time registration token
#   runner-instance.sh remove    ExecStopPost=+  after every job: delete the instance
# The runner user can write only its instance (deleted after the job) and the engine cache; the runner
# release, this script, the device venv and the code that registers runners stay root-owned. The
# fine-grained token (/etc/edgeproof/runner.env, root 0600) never enters the runner user's environment.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=ci/jetson/runner-lib.sh
source "$here/runner-lib.sh"
DIST="${EDGEPROOF_RUNNER_DIST:-/opt/edgeproof/runner-dist}"
INSTANCE="${EDGEPROOF_RUNNER_INSTANCE:-/var/lib/edgeproof/instance}"
RUNNER_USER="${EDGEPROOF_RUNNER_USER:-edgeproof-runner}"
API="${GITHUB_API_URL:-https://api.github.com}"

case "${1:-}" in
  prepare)
    # shellcheck disable=SC1091
    source "${EDGEPROOF_RUNNER_ENV:-/etc/edgeproof/runner.env}"  # GITHUB_REPO, GITHUB_PAT (Administration: read and write, this repo)
    if [ ! -e "$DIST/current" ] || [ -n "$(find "$DIST/.checked" -mtime +0 2>/dev/null)" ] || [ ! -e "$DIST/.checked" ]; then
      install_runner "$DIST" || [ -x "$DIST/current/run.sh" ]  # the API down: keep the verified one we have
      touch "$DIST/.checked"
    fi
    fresh_instance "$DIST" "$INSTANCE" "$RUNNER_USER"
    token="$(curl -fsS -X POST -H "Authorization: Bearer $GITHUB_PAT" -H "Accept: application/vnd.github+json" \
      "$API/repos/$GITHUB_REPO/actions/runners/registration-token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
    [ -n "$token" ] || { echo "no registration token (check GITHUB_PAT)" >&2; exit 1; }
    install -o "$RUNNER_USER" -m 0600 /dev/null "$INSTANCE/registration-token"
    printf '%s\n' "$token" > "$INSTANCE/registration-token"
    printf 'GITHUB_REPO=%s\n' "$GITHUB_REPO" > "$INSTANCE/repo.env"
    ;;
  remove)
    rm -rf "${INSTANCE:?}"
    ;;
  *)
    echo "usage: runner-instance.sh prepare|remove" >&2
    exit 2
    ;;
esac
