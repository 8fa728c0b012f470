#!/usr/bin/env bash
# The self-hosted Jetson job: `bash ci/jetson/run-device.sh PROFILE` with the bundle in release/bundle.
# Preflight (board ready?), then the device side with only the device dependencies:
#   PYTHONPATH=src python -m edgeproof.device measure --bundle release/bundle --profile PROFILE \
#     --out reports/device/PROFILE --rules-params params.yaml
# params.yaml is this checkout's, the BASE branch's: its profile sets what is measured and how; the
# pull request's bundle (profiles.json included) is data and cannot loosen its own measurement.
# The interpreter is the runner's prepared venv (ci/jetson/prepare-runner.sh), or $EDGEPROOF_DEVICE_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${1:?usage: ci/jetson/run-device.sh PROFILE}"
py="${EDGEPROOF_DEVICE_PYTHON:-/opt/edgeproof/venv/bin/python}"
if [ ! -x "$py" ]; then py="$(command -v python3)"; fi
out="reports/device/$profile"
mkdir -p "$out"
rules=(--rules-params params.yaml)
if ! PYTHONPATH=src "$py" -m edgeproof.device preflight --bundle release/bundle --profile "$profile" "${rules[@]}" > "$out/preflight.json"; then
  echo "ci/jetson: the board is not ready for $profile:" >&2
  cat "$out/preflight.json" >&2
  # a refusal the device gate can report (rule "preflight", the failed checks named)
  "$py" -c 'import json, sys
checks = json.load(open(sys.argv[1]))["checks"]
bad = ["%s (%s)" % (c["name"], c["detail"]) for c in checks if not c["ok"]]
json.dump({"status": "refused", "rule": "preflight", "reason": "board not ready: " + "; ".join(bad),
           "exit_code": 6, "profile": sys.argv[3]}, open(sys.argv[2], "w"))' "$out/preflight.json" "$out/measure.json" "$profile"
  exit 6
fi
PYTHONPATH=src exec "$py" -m edgeproof.device measure --bundle release/bundle --profile "$profile" --out "$out" "${rules[@]}"
