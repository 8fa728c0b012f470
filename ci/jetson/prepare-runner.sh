#!/usr/bin/env bash
# Prepare a Jetson as the edgeproof device runner. Run as root on the board, once (idempotent):
#   sudo GITHUB_REPO=owner/repo PROFILE=jetson-orin-nano bash ci/jetson/prepare-runner.sh
# Then put the registration credential in /etc/edgeproof/runner.env (docs/jetson.md) and
# `systemctl enable --now edgeproof-runner`.
#
# 1. JetPack check: L4T release -> the Python and ONNX Runtime GPU wheel that exist for it.
# 2. A venv /opt/edgeproof/venv with ONLY the device dependencies: the onnxruntime-gpu wheel saved under
#    its real name, checked against its sha256 (ci/jetson/ort-wheels.txt) and installed by path; numpy,
#    Pillow, PyYAML (and OpenCV if it installs) under ci/jetson/constraints.txt (numpy<2).
# 3. A user "edgeproof-runner": no login shell, no home of its own, no general sudo; only
#    `jetson_clocks --show` and `nvpmodel -q` through sudoers (the measurement reads clocks, never sets).
# 4. Power mode and clocks: `nvpmodel -m <id>` for the profile's mode, `jetson_clocks` at boot.
# 5. The GitHub Actions runner: the latest release, verified by its published sha256 and at least
#    2.329.0, kept root-owned in /opt/edgeproof/runner-dist; every job gets a FRESH copy
#    (runner-instance.sh), registered --ephemeral and deleted afterwards, under a systemd unit that
#    lets the job write only that copy and the engine cache (ProtectSystem=strict, PrivateTmp).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=ci/jetson/runner-lib.sh
source "$here/runner-lib.sh"
: "${GITHUB_REPO:?set GITHUB_REPO=owner/repo}"
: "${PROFILE:?set PROFILE=jetson-orin-nano (or jetson-nano)}"
# POWER_MODE_ID: the nvpmodel id to set; by default derived from the profile's power_mode and this board
# (ids differ per board: MAXN is 0 on a Nano, MAXN_SUPER is 2 on an Orin Nano Super)

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
venv=/opt/edgeproof/venv
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
install_ort_wheel "$here/ort-wheels.txt" "$l4t_major" "$py_want" "$venv/bin/python" -m pip --quiet
pipc=("$venv/bin/python" -m pip install --quiet -c "$here/constraints.txt")
"${pipc[@]}" "numpy<2" pillow pyyaml protobuf flatbuffers packaging coloredlogs sympy
# optional: OpenCV letterboxes ~20x faster than the numpy port (bit-identical), and reads video for `edgeproof detect`
"${pipc[@]}" opencv-python-headless || echo "no OpenCV wheel: the numpy letterbox is used"
"$venv/bin/python" -c "import numpy, onnxruntime as o; assert numpy.__version__ < '2'; print('onnxruntime', o.__version__, o.get_available_providers())"

# --- 3. the runner user: no general sudo; clocks and power mode readable
id edgeproof-runner >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin edgeproof-runner
usermod -aG video,render edgeproof-runner 2>/dev/null || usermod -aG video edgeproof-runner
cat > /etc/sudoers.d/edgeproof-runner <<'SUDO'
edgeproof-runner ALL=(root) NOPASSWD: /usr/bin/jetson_clocks --show, /usr/sbin/nvpmodel -q
SUDO
chmod 0440 /etc/sudoers.d/edgeproof-runner
install -d -o edgeproof-runner -m 0750 /var/cache/edgeproof/engines

# --- 4. power mode and clocks, every boot
repo_root="$(cd "$here/../.." && pwd)"
# read (strictly, as the jobs read it) even when POWER_MODE_ID is given: an unusable profile stops here
mode="$(profile_power_mode "$venv/bin/python" "$repo_root" "$PROFILE")" || exit 1
profile_matches_board "$venv/bin/python" "$repo_root" "$PROFILE" || exit 1
if [ -z "${POWER_MODE_ID:-}" ] && [ -n "$mode" ]; then
  POWER_MODE_ID="$(board_power_mode_id "$venv/bin/python" "$repo_root" "$mode")" || exit 1
fi
if [ -n "${POWER_MODE_ID:-}" ]; then
  echo "power mode: ${mode:-given} -> nvpmodel -m $POWER_MODE_ID"
  nvpmodel -m "$POWER_MODE_ID"
else
  echo "profile $PROFILE requires no power mode: nvpmodel left as it is"
fi
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

# --- 5. the runner: a verified release (root-owned), a fresh instance per job, an ephemeral registration
install_runner /opt/edgeproof/runner-dist
touch /opt/edgeproof/runner-dist/.checked
install -d -m 0755 /opt/edgeproof/bin
install -m 0755 "$here/runner-lib.sh" "$here/runner-instance.sh" "$here/ephemeral-runner.sh" /opt/edgeproof/bin/
chown -R root:root /opt/edgeproof && chmod -R go-w /opt/edgeproof  # the job's user cannot change any of it
install -d -m 0755 /var/lib/edgeproof
rm -rf /opt/edgeproof/runner  # the former single, reused install directory (stale .runner/.credentials)
install -d -m 0700 /etc/edgeproof
cat > /etc/systemd/system/edgeproof-runner.service <<UNIT
[Unit]
Description=edgeproof: ephemeral GitHub Actions runner ($PROFILE), one fresh instance per job
After=network-online.target edgeproof-clocks.service
Wants=network-online.target
[Service]
User=edgeproof-runner
Environment=RUNNER_LABELS=self-hosted,linux,ARM64,jetson,$PROFILE
Environment=EDGEPROOF_DEVICE_PYTHON=/opt/edgeproof/venv/bin/python EDGEPROOF_ENGINE_CACHE=/var/cache/edgeproof/engines
ExecStartPre=+/opt/edgeproof/bin/runner-instance.sh prepare
ExecStart=/opt/edgeproof/bin/ephemeral-runner.sh
ExecStopPost=+/opt/edgeproof/bin/runner-instance.sh remove
# the job may write only its instance and the engine cache; /tmp is private and goes with the unit;
# leftover processes of the job are killed with the unit's cgroup
ProtectSystem=strict
ReadWritePaths=/var/lib/edgeproof /var/cache/edgeproof/engines
ProtectHome=yes
PrivateTmp=yes
KillMode=control-group
Restart=always
RestartSec=10
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable edgeproof-clocks.service
systemctl start edgeproof-clocks.service
echo "prepared. Next: /etc/edgeproof/runner.env (root, 0600) with GITHUB_REPO=$GITHUB_REPO and GITHUB_PAT=...,"
echo "then: systemctl enable --now edgeproof-runner"
echo "and check the board: sudo -u edgeproof-runner bash ci/jetson/preflight.sh $PROFILE <bundle>"
