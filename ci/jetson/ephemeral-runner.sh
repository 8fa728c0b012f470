#!/usr/bin/env bash
# systemd ExecStart of edgeproof-runner.service: register an EPHEMERAL runner (it takes exactly one
# job and then de-registers), run it, exit; systemd restarts this for the next job. Every job thus
# starts from a fresh registration and a clean work folder.
# Needs in /etc/edgeproof/runner.env (root-only, 0600): GITHUB_PAT = a fine-grained token limited to
# this repository with "Administration: read and write" (it can only mint runner registration
# tokens; it never reaches a workflow, which holds no secrets on this board).
set -euo pipefail
: "${GITHUB_REPO:?}" "${GITHUB_PAT:?}" "${RUNNER_LABELS:?}"
cd /opt/edgeproof/runner
rm -rf _work
token="$(curl -fsS -X POST -H "Authorization: Bearer $GITHUB_PAT" -H "Accept: application/vnd.github+json" \
  "https://api.github.com/repos/$GITHUB_REPO/actions/runners/registration-token" | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')"
[ -n "$token" ] || { echo "no registration token (check GITHUB_PAT)" >&2; exit 1; }
unset GITHUB_PAT  # the job's environment never sees it
./config.sh --unattended --ephemeral --replace --disableupdate \
  --url "https://github.com/$GITHUB_REPO" --token "$token" \
  --name "$(hostname)-$(date +%s)" --labels "$RUNNER_LABELS" --work _work
exec ./run.sh
