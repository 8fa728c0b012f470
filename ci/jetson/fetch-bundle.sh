#!/usr/bin/env bash
# The Jetson job's bundle: `bash ci/jetson/fetch-bundle.sh BUILD_RUN_ID` downloads the build run's
# "release-bundle" artifact into release/bundle through the REST API (ci/artifacts.py: standard
# library only, so it runs on the board's device Python, JetPack 4.6 included; no JavaScript action).
# Needs GITHUB_TOKEN (actions: read) and GITHUB_REPOSITORY. run-device.sh verifies it before use.
set -euo pipefail
cd "$(dirname "$0")/../.."
run_id="${1:?usage: ci/jetson/fetch-bundle.sh BUILD_RUN_ID}"
py="${EDGEPROOF_DEVICE_PYTHON:-/opt/edgeproof/venv/bin/python}"
if [ ! -x "$py" ]; then py="$(command -v python3)"; fi
rm -rf release/bundle
exec "$py" ci/artifacts.py download --run-id "$run_id" --name release-bundle --dest release/bundle
