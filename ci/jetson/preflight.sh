#!/usr/bin/env bash
# Is this Jetson ready to gate a release? `bash ci/jetson/preflight.sh PROFILE [BUNDLE]`
# Run it after preparing the runner (ci/jetson/prepare-runner.sh) and before registering it; the
# Jetson job runs the same checks (ci/jetson/run-device.sh) before every measurement.
# Checks: JetPack/L4T and model match the profile; Python + device packages; the profile's ONNX
# Runtime providers are built in and really load; power mode; clocks at max (jetson_clocks);
# temperature; free disk for TensorRT engine caches. Exit 0 ready, 1 not ready.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${1:?usage: ci/jetson/preflight.sh PROFILE [BUNDLE]}"
bundle="${2:-release/bundle}"
py="${EDGEPROOF_DEVICE_PYTHON:-/opt/edgeproof/venv/bin/python}"
if [ ! -x "$py" ]; then py="$(command -v python3)"; fi
if [ ! -f /etc/nv_tegra_release ] && [ -z "${EDGEPROOF_SYSROOT:-}" ]; then
  echo "preflight: /etc/nv_tegra_release not found: this is not a Jetson (JetPack) system" >&2
fi
if command -v nvpmodel >/dev/null; then nvpmodel -q 2>/dev/null | sed 's/^/preflight: /' >&2 || true; fi
if sudo -n true 2>/dev/null && command -v jetson_clocks >/dev/null; then
  sudo -n jetson_clocks --show 2>/dev/null | sed 's/^/preflight: /' >&2 || true
fi
if [ ! -f "$bundle/manifest.json" ]; then
  echo "preflight: no bundle at $bundle (download the release-bundle artifact of a workflow run)" >&2
  exit 1
fi
PYTHONPATH=src "$py" -m edgeproof.device verify --bundle "$bundle" >/dev/null
# this checkout's params.yaml sets the profile (the board's own repo: the base branch), never the bundle's
PYTHONPATH=src exec "$py" -m edgeproof.device preflight --bundle "$bundle" --profile "$profile" --rules-params params.yaml
