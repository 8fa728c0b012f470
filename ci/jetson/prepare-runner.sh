#!/usr/bin/env bash
# Prepare a Jetson as the edgeproof device runner. Run as root on the board, once (idempotent):
#   sudo GITHUB_REPO=owner/repo PROFILE=jetson-orin-nano bash ci/jetson/prepare-runner.sh
# Then put a registration credential in /etc/edgeproof/runner.env (see README "Gating on a Jetson")
# and `systemctl enable --now edgeproof-runner`.
#
# 1. JetPack check: L4T release -> the Python and ONNX Runtime GPU wheel that exist for it.
# 2. A venv /opt/edgeproof/venv with ONLY the device dependencies: numpy, Pillow, PyYAML and the
#    onnxruntime-gpu wheel pinned by URL + sha256 in ci/jetson/ort-wheels.txt (pip --require-hashes).
# 3. A user "edgeproof-runner" without a login shell or general sudo; only `jetson_clocks` and
#    `nvpmodel -q` through sudoers (the measurement reads clocks, it never changes the board).
# 4. Power mode and clocks: `nvpmodel -m <id>` for the profile's mode, `jetson_clocks` at boot.
# 5. The GitHub Actions runner registered as EPHEMERAL (one job, then it de-registers and a fresh
#    registration is made), with labels self-hosted,linux,ARM64,jetson,<profile>, as a systemd service.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${GITHUB_REPO:?set GITHUB_REPO=owner/repo}"
: "${PROFILE:?set PROFILE=jetson-orin-nano (or jetson-nano)}"
RUNNER_VERSION="${RUNNER_VERSION:-2.321.0}"  # actions/runner release; check its sha256 on the release page
RUNNER_SHA256="${RUNNER_SHA256:?set RUNNER_SHA256 to the sha256 of actions-runner-linux-arm64-$RUNNER_VERSION.tar.gz}"
POWER_MODE_ID="${POWER_MODE_ID:-0}"  # nvpmodel id of MAXN (Nano: 0; Orin Nano Super: MAXN_SUPER is 2)

[ "$(id -u)" = 0 ] || { echo "run as root (sudo)" >&2; exit 1; }
[ "$(uname -m)" = aarch64 ] || { echo "not an aarch64 machine" >&2; exit 1; }
release="$(head -n1 /etc/nv_tegra_release 2>/dev/null || true)"
l4t_major="$(sed -n 's/^# R\([0-9]*\) (release).*/\1/p' <<<"$release")"
case "$l4t_major" in
  32|35) py_want=3.8 ;;
  36) py_want=3.10 ;;
  *) echo "unsupported or missing L4T release: '$release' (JetPack 4.6, 5 or 6 expected)" >&2; exit 1 ;;
esac
echo "JetPack: $release -> Python $py_want"
python="$(command -v "python$py_want" || true)"
[ -n "$python" ] || { echo "python$py_want not found (apt-get install python$py_want python$py_want-venv)" >&2; exit 1; }

# --- 2. the device venv with the pinned wheel
read -r _ _ wheel_url wheel_sha < <(awk -v l="$l4t_major" -v p="$py_want" '$1==l && $2==p {print; exit}' \
  "$here/ort-wheels.txt") || true
if [ -z "${wheel_url:-}" ] || [ -z "${wheel_sha:-}" ]; then
  echo "no pinned onnxruntime-gpu wheel for L4T R$l4t_major / Python $py_want in ci/jetson/ort-wheels.txt" >&2
  exit 1
fi
"$python" -m venv /opt/edgeproof/venv
req="$(mktemp)"
printf 'onnxruntime-gpu @ %s --hash=sha256:%s\n' "$wheel_url" "$wheel_sha" > "$req"
/opt/edgeproof/venv/bin/python -m pip install --quiet --upgrade pip
/opt/edgeproof/venv/bin/python -m pip install --quiet --require-hashes --no-deps -r "$req"
/opt/edgeproof/venv/bin/python -m pip install --quiet "numpy<2" pillow pyyaml "protobuf" flatbuffers packaging coloredlogs sympy
# optional: OpenCV letterboxes ~20x faster than the numpy port (bit-identical), and reads video for `edgeproof detect`
/opt/edgeproof/venv/bin/python -m pip install --quiet opencv-python-headless || echo "no OpenCV wheel: the numpy letterbox is used"
/opt/edgeproof/venv/bin/python -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"

# --- 3. the runner user: no general sudo; clocks and power mode readable
id edgeproof-runner >/dev/null 2>&1 || useradd --system --create-home --shell /usr/sbin/nologin edgeproof-runner
usermod -aG video,render edgeproof-runner 2>/dev/null || usermod -aG video edgeproof-runner
cat > /etc/sudoers.d/edgeproof-runner <<'SUDO'
edgeproof-runner ALL=(root) NOPASSWD: /usr/bin/jetson_clocks --show, /usr/sbin/nvpmodel -q
SUDO
chmod 0440 /etc/sudoers.d/edgeproof-runner
install -d -o edgeproof-runner -m 0750 /var/cache/edgeproof/engines

# --- 4. power mode and clocks, every boot
nvpmodel -m "$POWER_MODE_ID"
cat > /etc/systemd/system/edgeproof-clocks.service <<'UNIT'
[Unit]
Description=edgeproof: lock Jetson clocks at maximum for reproducible measurements
After=nvpmodel.service
[Service]
Type=oneshot
ExecStart=/usr/bin/jetson_clocks
[Install]
WantedBy=multi-user.target
UNIT

# --- 5. the ephemeral runner as a service (a fresh registration for every job)
install -d -o edgeproof-runner /opt/edgeproof/runner
tarball="actions-runner-linux-arm64-$RUNNER_VERSION.tar.gz"
if [ ! -x /opt/edgeproof/runner/run.sh ]; then
  curl -fsSL -o "/tmp/$tarball" "https://github.com/actions/runner/releases/download/v$RUNNER_VERSION/$tarball"
  echo "$RUNNER_SHA256  /tmp/$tarball" | sha256sum -c -
  tar -xzf "/tmp/$tarball" -C /opt/edgeproof/runner
  chown -R edgeproof-runner /opt/edgeproof/runner
fi
install -m 0755 "$here/ephemeral-runner.sh" /opt/edgeproof/ephemeral-runner.sh
install -d -m 0700 /etc/edgeproof
cat > /etc/systemd/system/edgeproof-runner.service <<UNIT
[Unit]
Description=edgeproof: ephemeral GitHub Actions runner ($PROFILE)
After=network-online.target edgeproof-clocks.service
Wants=network-online.target
[Service]
User=edgeproof-runner
EnvironmentFile=/etc/edgeproof/runner.env
Environment=GITHUB_REPO=$GITHUB_REPO RUNNER_LABELS=self-hosted,linux,ARM64,jetson,$PROFILE
Environment=EDGEPROOF_DEVICE_PYTHON=/opt/edgeproof/venv/bin/python EDGEPROOF_ENGINE_CACHE=/var/cache/edgeproof/engines
WorkingDirectory=/opt/edgeproof/runner
ExecStart=/opt/edgeproof/ephemeral-runner.sh
Restart=always
RestartSec=10
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable edgeproof-clocks.service
systemctl start edgeproof-clocks.service
echo "prepared. Next: create /etc/edgeproof/runner.env (GITHUB_PAT=...), then: systemctl enable --now edgeproof-runner"
echo "and check the board: sudo -u edgeproof-runner bash ci/jetson/preflight.sh $PROFILE <bundle>"
