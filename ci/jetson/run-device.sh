#!/usr/bin/env bash
# The self-hosted Jetson job: `bash ci/jetson/run-device.sh PROFILE` with the bundle in release/bundle.
# Preflight (bundle verified, board ready?), then the device side with only the device dependencies:
#   PYTHONPATH=src python -m edgeproof.device measure --bundle release/bundle --profile PROFILE \
#     --out reports/device/PROFILE --rules-params params.yaml
# params.yaml is this checkout's, the BASE branch's: its profile sets what is measured and how; the
# pull request's bundle (profiles.json included) is data and cannot loosen its own measurement.
# The interpreter is the runner's prepared venv (ci/jetson/prepare-runner.sh), or $EDGEPROOF_DEVICE_PYTHON.
# TensorRT engines: the board's shared cache for main's own commit, a job-local one otherwise (engine-cache.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${1:?usage: ci/jetson/run-device.sh PROFILE}"
py="${EDGEPROOF_DEVICE_PYTHON:-/opt/edgeproof/venv/bin/python}"
if [ ! -x "$py" ]; then py="$(command -v python3)"; fi
out="reports/device/$profile"
mkdir -p "$out"
rm -f "$out/measure.json"  # an older run's status never stands for this one (even if python cannot start)
EDGEPROOF_ENGINE_CACHE="$(bash ci/jetson/engine-cache.sh)"  # the shared one for main's own commit only
export EDGEPROOF_ENGINE_CACHE
rules=(--rules-params params.yaml)
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
# The preflight verifies the bundle before anything opens its model. Refused (bundle: exit 2, rule
# bundle_verified; board: exit 6, rule preflight), it writes measure.json for the device gate itself.
code=0
PYTHONPATH=src "$py" -m edgeproof.device preflight --bundle release/bundle --profile "$profile" "${rules[@]}" \
  --refusal-out "$out/measure.json" > "$report" || code=$?
if [ "$code" -ne 0 ]; then
  echo "ci/jetson: the preflight refused $profile (the bundle or the board):" >&2
  cat "$report" >&2
  if [ ! -s "$out/measure.json" ]; then  # it did not even start: still a status the gate can report
    printf '{"status": "refused", "rule": "preflight", "exit_code": 6, "profile": "%s", "reason": "%s"}\n' \
      "$profile" "the preflight exited $code without a report: see the Jetson job's log" > "$out/measure.json"
    code=6
  fi
else
  PYTHONPATH=src "$py" -m edgeproof.device measure --bundle release/bundle --profile "$profile" --out "$out" \
    "${rules[@]}" || code=$?
fi
cat "$report" > "$out/preflight.json"  # after measure, which clears an older run's files from $out
exit "$code"
