#!/usr/bin/env bash
# Installs the Debian / Raspberry Pi OS packages the project needs, only those still missing, so a
# second run is quick and needs no network. Usage: deploy/apt-deps.sh [runtime|test|all]
set -euo pipefail

profile="${1:-runtime}"
runtime=(python3-venv python3-dev gcc libvlc5 vlc-plugin-base libsystemd-dev pkg-config libsndfile1)
test_extra=(shellcheck systemd systemd-container debootstrap)
case "$profile" in
  runtime) wanted=("${runtime[@]}") ;;
  test|all) wanted=("${runtime[@]}" "${test_extra[@]}") ;;
  *) echo "apt-deps.sh: unknown profile '$profile' (runtime, test or all)" >&2; exit 2 ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-deps.sh: missing ${missing[*]} and no apt-get: install them by hand" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "apt-deps.sh: need root to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "apt-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
