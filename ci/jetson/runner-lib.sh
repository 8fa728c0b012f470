# shellcheck shell=bash
# Functions of the Jetson runner's set-up, sourced by prepare-runner.sh and runner-instance.sh and
# tested with fakes (tests/unit/test_ci_runner_scripts.py): `source ci/jetson/runner-lib.sh`.
#
# The actions/runner release is resolved at install time (GitHub's "latest release"), checked against
# the sha256 its release notes publish per package (and the asset digest where the API gives one),
# and refused below RUNNER_MIN_VERSION: GitHub no longer registers older runners, and assigns jobs
# only to runners at most 30 days behind, so the runner keeps self-updating after that (no
# --disableupdate). Nothing is downloaded without being verified.

RUNNER_MIN_VERSION="${RUNNER_MIN_VERSION:-2.329.0}"
RUNNER_RELEASES_API="${RUNNER_RELEASES_API:-https://api.github.com/repos/actions/runner/releases/latest}"
RUNNER_PLATFORM="${RUNNER_PLATFORM:-linux-arm64}"

# version_ge A B: true when dotted version A >= B
version_ge() {
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

# verify_sha256 FILE EXPECTED: refuse (exit status 1, one line naming the file) on a mismatch
verify_sha256() {
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  if [ -z "$2" ] || [ "$got" != "$2" ]; then
    echo "refused: $1 has sha256 $got, expected ${2:-<none published>}" >&2
    return 1
  fi
}

# runner_release: print "VERSION SHA256 URL" of the latest actions/runner release for RUNNER_PLATFORM
runner_release() {
  curl -fsSL -H "Accept: application/vnd.github+json" "$RUNNER_RELEASES_API" | python3 -c '
import json, re, sys
platform = sys.argv[1]
rel = json.load(sys.stdin)
version = rel["tag_name"].lstrip("v")
m = re.search(r"<!-- BEGIN SHA %s -->([0-9a-f]{64})<!-- END SHA %s -->" % (platform, platform), rel.get("body") or "")
name = "actions-runner-%s-%s.tar.gz" % (platform, version)
asset = [a for a in rel.get("assets", []) if a.get("name") == name]
if not m or not asset:
    sys.exit("release %s publishes no sha256 or no package for %s" % (version, name))
digest = asset[0].get("digest") or ""
if digest and digest != "sha256:" + m.group(1):
    sys.exit("release %s: the asset digest %s disagrees with the release notes sha256 %s" % (version, digest, m.group(1)))
print(version, m.group(1), asset[0]["browser_download_url"])
' "$RUNNER_PLATFORM"
}

# install_runner DIST_ROOT: the latest verified release in DIST_ROOT/<version> (read-only), DIST_ROOT/current
install_runner() {
  local dist="$1" version sha url tmp
  read -r version sha url < <(runner_release) || { echo "refused: no usable actions/runner release" >&2; return 1; }
  [ -n "${version:-}" ] || { echo "refused: no usable actions/runner release" >&2; return 1; }
  if ! version_ge "$version" "$RUNNER_MIN_VERSION"; then
    echo "refused: actions/runner $version is older than $RUNNER_MIN_VERSION (GitHub no longer registers it)" >&2
    return 1
  fi
  if [ ! -x "$dist/$version/run.sh" ]; then
    tmp="$(mktemp -d)"
    curl -fsSL -o "$tmp/runner.tar.gz" "$url" || { rm -rf "$tmp"; return 1; }
    verify_sha256 "$tmp/runner.tar.gz" "$sha" || { rm -rf "$tmp"; return 1; }
    mkdir -p "$tmp/x" && tar -xzf "$tmp/runner.tar.gz" -C "$tmp/x"
    chmod -R go-w "$tmp/x"
    mkdir -p "$dist" && rm -rf "${dist:?}/$version" && mv "$tmp/x" "$dist/$version" && rm -rf "$tmp"
  fi
  ln -sfn "$version" "$dist/current"
  echo "actions/runner $version ($sha) in $dist/$version"
}

# clean_stale_registration DIR: what a killed job leaves behind makes config.sh refuse to register
clean_stale_registration() {
  rm -f "$1/.runner" "$1"/.credentials*
}

# fresh_instance DIST INSTANCE USER: a new copy of the runner for exactly one job, owned by USER;
# everything the previous job wrote there (code, caches, a planted script) is gone
fresh_instance() {
  local dist="$1" instance="$2" user="$3"
  rm -rf "${instance:?}"
  mkdir -p "$instance/home"
  cp -a "$dist/current/." "$instance/runner"
  clean_stale_registration "$instance/runner"
  chown -R "$user" "$instance"
  chmod 0700 "$instance"
}

# install_ort_wheel WHEELS_FILE L4T_MAJOR PY PIP...: the JetPack-matched onnxruntime-gpu wheel.
# Jetson Zoo links end in <hash>.whl, a name pip refuses: download to the wheel's real file name
# (column 3), check its sha256 (column 5), then install that file by path.
install_ort_wheel() {
  local wheels="$1" l4t="$2" py="$3" name url sha tmp
  shift 3
  read -r _ _ name url sha < <(awk -v l="$l4t" -v p="$py" '$1==l && $2==p {print; exit}' "$wheels") || true
  if [ -z "${sha:-}" ]; then
    echo "refused: no pinned onnxruntime-gpu wheel for L4T R$l4t / Python $py in $wheels" >&2
    return 1
  fi
  if ! [[ "$name" =~ ^onnxruntime_gpu-[0-9][0-9A-Za-z.+]*-cp[0-9]+-cp[0-9]+-linux_aarch64\.whl$ ]]; then
    echo "refused: '$name' is not an onnxruntime_gpu linux_aarch64 wheel file name" >&2
    return 1
  fi
  tmp="$(mktemp -d)"
  curl -fsSL -o "$tmp/$name" "$url" || { rm -rf "$tmp"; return 1; }
  verify_sha256 "$tmp/$name" "$sha" || { rm -rf "$tmp"; return 1; }
  local rc=0
  "$@" install --no-deps "$tmp/$name" || rc=$?
  rm -rf "$tmp"
  return "$rc"
}

# profile_power_mode PY REPO PROFILE: print PROFILE's power_mode in REPO/params.yaml (an empty line when it
# requires none), read by the board's one strict profile reader: python -m edgeproof.device with
# --rules-params, as run-device.sh and preflight.sh read it, so a key given twice, an unknown profile or key
# refuse here as they do there. PY needs only the device dependencies (edgeproof comes from REPO/src).
profile_power_mode() {
  PYTHONPATH="$2/src" "$1" -m edgeproof.device power-mode --profile "$3" --rules-params "$2/params.yaml" --name \
    || { echo "profile $3: no power mode can be read from $2/params.yaml (why: above)" >&2; return 1; }
}

# profile_matches_board PY REPO PROFILE: is this board one PROFILE (in REPO/params.yaml) matches (its L4T range,
# model, architecture)? A board it never matches (e.g. JetPack 6.0 for the Orin profile's L4T 36.4.3+) would
# fail machine_match on every pull request: the set-up stops here instead, naming the check
profile_matches_board() {
  PYTHONPATH="$2/src" "$1" -m edgeproof.device facts --profile "$3" --rules-params "$2/params.yaml" >/dev/null \
    || { echo "this board does not match profile $3 in $2/params.yaml (why: above): flash the JetPack it names" >&2; return 1; }
}

# board_power_mode_id PY REPO MODE: print the nvpmodel id of power mode MODE on this board
board_power_mode_id() {
  PYTHONPATH="$2/src" "$1" -m edgeproof.device power-mode --mode "$3" \
    || { echo "no nvpmodel id for power mode $3 on this board: set POWER_MODE_ID" >&2; return 1; }
}
