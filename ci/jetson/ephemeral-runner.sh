#!/usr/bin/env bash
# systemd ExecStart of edgeproof-runner.service, as the runner user: register an EPHEMERAL runner from
# the fresh instance runner-instance.sh made (it takes exactly one job and de-registers), run it, exit;
# ExecStopPost deletes the instance and systemd starts the next one. No --disableupdate: the runner
# self-updates when GitHub requires a newer release (runner-instance.sh keeps the source current).
set -euo pipefail
: "${RUNNER_LABELS:?}"
INSTANCE="${EDGEPROOF_RUNNER_INSTANCE:-/var/lib/edgeproof/instance}"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=ci/jetson/runner-lib.sh
source "$here/runner-lib.sh"
# shellcheck disable=SC1091
source "$INSTANCE/repo.env"
token="$(cat "$INSTANCE/registration-token")"
rm -f "$INSTANCE/registration-token"
export HOME="$INSTANCE/home"  # a fresh home per job: nothing in it outlives the job
cd "$INSTANCE/runner"
clean_stale_registration .  # a fresh copy has none; a reused one would make config.sh refuse
./config.sh --unattended --ephemeral --replace \
  --url "https://github.com/$GITHUB_REPO" --token "$token" \
  --name "$(hostname)-$(date +%s)" --labels "$RUNNER_LABELS" --work _work
exec ./run.sh
