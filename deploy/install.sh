#!/usr/bin/env bash
# Installs rescnn-appliance as a systemd service on Raspberry Pi OS Bookworm 64-bit
# (Pi 3B, 3B+, 4, 5). Run it as root from a checkout of the project:
#
#   sudo deploy/install.sh            install or update, enable and (re)start the service
#   deploy/install.sh --dry-run       print every action instead of doing it; changes nothing
#
# Safe to run twice: what is already there (packages, user, venv, config) is kept; the package,
# models and unit are refreshed and the service restarted, so a second run is also the update.
#
# What it sets up:
#   apt packages      python3-picamera2, python3-lgpio, python3-systemd, VLC, libsndfile, ...
#   user rescnn       system user in groups video (camera), audio, gpio, i2c (power meter)
#   /opt/rescnn-appliance/venv            venv with --system-site-packages, so apt's picamera2,
#                                         lgpio and systemd bindings are importable; the device
#                                         pins of deploy/requirements-pi.txt (torch 2.9.1 CPU)
#   /usr/share/rescnn-appliance/models    the shipped models (where the package looks for them)
#   /etc/rescnn-appliance/appliance.toml  root:rescnn 0640, from deploy/appliance.toml.example,
#                                         never overwritten
#   /etc/systemd/system/rescnn-appliance.service   enabled and started; then `doctor` runs
#
# For tests and packaging, the environment may override:
#   RESCNN_PREFIX      prefix for every installed path (like DESTDIR; default: none)
#   RESCNN_ARCH        machine name instead of `uname -m`
#   RESCNN_LONG_BIT    userland word size instead of `getconf LONG_BIT`
#   RESCNN_MODELS_SRC  folder with the models to install (default: models/ of this checkout)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${RESCNN_PREFIX:-}
arch=${RESCNN_ARCH:-$(uname -m)}
long_bit=${RESCNN_LONG_BIT:-$(getconf LONG_BIT 2>/dev/null || echo 64)}
models_src=${RESCNN_MODELS_SRC:-$repo/models}

user=rescnn
groups=(video audio gpio i2c)
app_dir=$prefix/opt/rescnn-appliance
venv=$app_dir/venv
models_dir=$prefix/usr/share/rescnn-appliance/models
config_dir=$prefix/etc/rescnn-appliance
config=$config_dir/appliance.toml
unit_name=rescnn-appliance.service
unit_dir=$prefix/etc/systemd/system
music_dir=$prefix/srv/music
state_dir=/var/lib/rescnn-appliance
apt_packages=(python3-venv python3-picamera2 python3-lgpio python3-systemd libvlc5
              vlc-plugin-base libsndfile1 libsystemd-dev pkg-config ca-certificates)

dry_run=0
for arg in "$@"; do
  case "$arg" in
    --dry-run|-n) dry_run=1 ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# Every change goes through run: printed with --dry-run (quoted where the shell needs it),
# done otherwise.
run() {
  if [ "$dry_run" -eq 1 ]; then
    local word line="+"
    for word in "$@"; do
      case "$word" in
        *[!A-Za-z0-9_./:=,@+-]*|'') line+=" $(printf '%q' "$word")" ;;
        *) line+=" $word" ;;
      esac
    done
    printf '%s\n' "$line"
  else
    "$@"
  fi
}

check_platform() {
  case "$arch" in
    armv6l|armv7l|armv8l|armhf|arm)
      die "this is a 32-bit system ($arch). PyTorch has no 32-bit ARM build: install Raspberry Pi OS (64-bit) Bookworm and run this again." ;;
  esac
  if [ "$long_bit" = 32 ]; then
    die "this is a 32-bit userland on a 64-bit kernel ($arch, LONG_BIT 32). PyTorch has no 32-bit ARM build: install Raspberry Pi OS (64-bit) Bookworm and run this again."
  fi
  if [ "$arch" != aarch64 ]; then
    [ "$dry_run" -eq 1 ] || die "this installer is for a Raspberry Pi with 64-bit Raspberry Pi OS (aarch64), not $arch; on a PC use 'make install'."
    say "dry run on $arch: showing what a Raspberry Pi (aarch64) would do"
  fi
  if [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo $0"
  fi
  local codename
  codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null | tr -d '"')
  [ "$codename" = bookworm ] || say "warning: made for Bookworm, this is '${codename:-unknown}'; carrying on"
}

# Everything the install copies from this checkout, checked before anything changes.
check_sources() {
  local f
  for f in deploy/requirements-pi.txt deploy/appliance.toml.example "systemd/$unit_name" README.md; do
    [ -f "$repo/$f" ] || die "$repo/$f is missing: run this from a complete checkout"
  done
  if [ ! -f "$models_src/ecnn.json" ] || [ ! -f "$models_src/va.json" ]; then
    local problem="$models_src has no ecnn.json and va.json: train and export the models first (make models)"
    [ "$dry_run" -eq 1 ] || die "$problem"
    say "warning: $problem; a real run would stop here" >&2
  fi
}

install_packages() {
  local missing=() pkg
  for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "apt packages: all present"
    return
  fi
  run apt-get update
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

create_user() {
  local group
  for group in "${groups[@]}"; do
    # Raspberry Pi OS has them all; gpio and i2c are missing on plain Debian.
    getent group "$group" >/dev/null || run groupadd --system "$group"
  done
  if id -u "$user" >/dev/null 2>&1; then
    say "user $user: present"
  else
    run useradd --system --user-group --home-dir "$state_dir" --no-create-home \
      --shell /usr/sbin/nologin --comment "rescnn-appliance service" "$user"
  fi
  local joined
  joined=$(IFS=,; echo "${groups[*]}")
  run usermod --append --groups "$joined" "$user"
}

install_venv() {
  if [ -x "$venv/bin/python" ]; then
    say "venv $venv: present"
  else
    run install -d -m 0755 "$app_dir"
    run python3 -m venv --system-site-packages "$venv"
  fi
  # Wheels only: nothing may compile on a Pi 3 (1 GB of RAM).
  run "$venv/bin/python" -m pip install --disable-pip-version-check --only-binary=:all: \
    -r "$repo/deploy/requirements-pi.txt"
  # The pins above are the whole dependency closure, so the package itself needs nothing more.
  run "$venv/bin/python" -m pip install --disable-pip-version-check --no-deps --no-build-isolation \
    --force-reinstall "$repo"
  run install -m 0644 "$repo/README.md" "$app_dir/README.md"
}

install_models() {
  local files=() f
  for f in "$models_src"/*.json "$models_src"/*.pt "$models_src"/*.md; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  run install -d -m 0755 "$models_dir"
  run install -m 0644 "${files[@]}" "$models_dir/"
}

install_config() {
  run install -d -m 0755 "$config_dir"
  if [ -e "$config" ]; then
    say "config $config: present, kept"
  else
    run install -m 0640 -o root -g "$user" "$repo/deploy/appliance.toml.example" "$config"
  fi
  [ -d "$music_dir" ] || run install -d -m 0755 "$music_dir"
}

install_unit() {
  run install -m 0644 "$repo/systemd/$unit_name" "$unit_dir/$unit_name"
  run systemctl daemon-reload
  run systemctl enable "$unit_name"
  run systemctl restart "$unit_name"
}

run_doctor() {
  # As the service user, so missing group rights show up here rather than in the journal.
  if [ "$dry_run" -eq 1 ]; then
    run runuser -u "$user" -- env "STATE_DIRECTORY=$state_dir" "$venv/bin/rescnn-appliance" doctor
    return
  fi
  if runuser -u "$user" -- env "STATE_DIRECTORY=$state_dir" "$venv/bin/rescnn-appliance" doctor; then
    say "done. Follow it with: journalctl -u $unit_name -f"
  else
    say "doctor found a problem (above). The service is installed; after fixing it run:"
    say "  sudo systemctl restart $unit_name && journalctl -u $unit_name -f"
    exit 1
  fi
}

check_platform
check_sources
install_packages
create_user
install_venv
install_models
install_config
install_unit
run_doctor
[ "$dry_run" -eq 0 ] || say "dry run: nothing was changed"
