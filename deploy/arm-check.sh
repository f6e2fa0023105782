#!/usr/bin/env bash
# Proves the package and the shipped models work on a Raspberry Pi 3's processor with the Pi's
# torch, without a Pi: a Debian bookworm arm64 root (python 3.11, as on Raspberry Pi OS Bookworm)
# run through `qemu-aarch64-static -cpu cortex-a53`, with the aarch64 wheels of
# deploy/requirements-pi.txt installed into a target folder. deploy/arm_check.py then loads
# models/ecnn + models/va (fp32 and int8) through AffectModel, compares their outputs on a fixed
# batch of faces with this machine's, fits the K-means mood model and decodes a FLAC file.
#
# Usage: deploy/arm-check.sh [--models DIR] [--prepare-only] [--offline]
#   --models DIR    models folder to check (default: models/ of this checkout)
#   --prepare-only  build the cached root and wheel folder, run nothing emulated
#   --offline       never download; fail if the cache is incomplete
#
# Everything downloaded is cached under $ARM_CHECK_CACHE (default .cache/arm64, gitignored):
#   root/     the arm64 root    wheels/   aarch64 wheels of the device pins
#   site/     those wheels installed (with bytecode, so the emulated imports are quicker)
# A second run downloads nothing. Delete the folder to start over. Needs root (debootstrap).
# No binfmt_misc: the emulator is called directly, so only single processes run emulated.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${ARM_CHECK_CACHE:-$repo/.cache/arm64}
root=$cache/root
wheels=$cache/wheels
site=$cache/site
requirements=$repo/deploy/requirements-pi.txt
suite=bookworm
qemu="qemu-aarch64-static"
cpu=cortex-a53
host_python=${ARM_CHECK_HOST_PYTHON:-$repo/.venv/bin/python}
pip_platform=(--platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64
              --platform manylinux2014_aarch64 --python-version 3.11 --implementation cp
              --abi cp311 --abi abi3 --abi none --only-binary=:all:)

models=$repo/models
prepare_only=0
offline=0
while [ $# -gt 0 ]; do
  case "$1" in
    --models) models=$(cd "${2:?--models needs a folder}" && pwd); shift 2 ;;
    --prepare-only) prepare_only=1; shift ;;
    --offline) offline=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "arm-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'arm-check: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

need_tools() {
  local missing=()
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  command -v "$qemu" >/dev/null 2>&1 || missing+=(qemu-user-static)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$offline" -eq 1 ] && die "missing ${missing[*]} and --offline given"
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: run as root or apt-get install them"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The Debian mirror apt already uses (the only one reachable here); ARM_CHECK_MIRROR overrides.
debian_mirror() {
  if [ -n "${ARM_CHECK_MIRROR:-}" ]; then echo "$ARM_CHECK_MIRROR"; return; fi
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
          2>/dev/null | awk '
    /^[[:space:]]*#/ { next }
    $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { u = $i; break }
                  if (u ~ /\/debian\/?$/) { print u; exit } u = "" }
    $1 == "URIs:" { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')
  echo "${uri:-http://deb.debian.org/debian}"
}

# debootstrap's second stage runs dpkg, whose maintainer scripts are more aarch64 processes: that
# needs binfmt_misc, which this machine lacks. So the packages debootstrap fetched are unpacked the
# way its first stage unpacks the essential ones, then the emulator runs ldconfig and python3.
finish_second_stage() {
  local target=$1 pkg deb
  cp "$(command -v "$qemu")" "$target/usr/bin/$qemu"
  # shellcheck disable=SC2013  # the file is one line of space-separated package names
  for pkg in $(cat "$target/debootstrap/base"); do
    deb=$(awk -v p="$pkg" '$1 == p { print $2 }' "$target/debootstrap/debpaths")
    [ -n "$deb" ] || die "debootstrap fetched no .deb for $pkg"
    dpkg-deb --fsys-tarfile "$target$deb" | tar -x -C "$target" --keep-directory-symlink
  done
  chroot "$target" "/usr/bin/$qemu" -cpu "$cpu" /sbin/ldconfig
  # What python3's postinst (py3compile) would do; CPython 3.11 bytecode is the same on any CPU.
  nice -n 15 "$host_python" -m compileall -q -j 0 -s "$target" -p / "$target/usr/lib/python3.11" >/dev/null || true
  "$qemu" -cpu "$cpu" -L "$target" "$target/usr/bin/python3" -S -c 'import sys; print(sys.version)' \
    >/dev/null || die "python3 does not run in $target"
}

build_root() {
  [ -f "$root/.arm-check-root" ] && return 0
  [ "$offline" -eq 1 ] && die "no cached root at $root and --offline given"
  [ "$(id -u)" -eq 0 ] || die "building the arm64 root needs root (debootstrap)"
  local tmp=$root.tmp mirror
  mirror=$(debian_mirror)
  if [ ! -f "$tmp/.first-stage" ]; then
    rm -rf "$tmp"
    say "debootstrap --foreign arm64 $suite from $mirror (a few minutes)"
    nice -n 15 debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 \
      "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || die "debootstrap failed, see $cache/debootstrap.log"
    touch "$tmp/.first-stage"
  fi
  say "second stage under $qemu -cpu $cpu"
  finish_second_stage "$tmp"
  touch "$tmp/.arm-check-root"
  rm -rf "$root"
  mv "$tmp" "$root"
}

fetch_wheels() {
  mkdir -p "$wheels"
  if nice -n 15 "$host_python" -m pip download -q --no-deps --no-index --find-links "$wheels" \
       "${pip_platform[@]}" -d "$wheels" -r "$requirements" >/dev/null 2>&1; then
    return 0
  fi
  [ "$offline" -eq 1 ] && die "wheels for $requirements are not all cached in $wheels"
  say "downloading aarch64 wheels of $(basename "$requirements")"
  nice -n 15 "$host_python" -m pip download -q --no-deps "${pip_platform[@]}" -d "$wheels" \
    -r "$requirements"
}

install_site() {
  local stamp changed add entry
  stamp=$(sha256sum "$requirements" | cut -d' ' -f1)
  [ "$(cat "$site/.requirements.sha256" 2>/dev/null)" = "$stamp" ] && return 0
  mkdir -p "$site"
  # A changed pin (say torch) swaps that one wheel; the others stay (see arm_check.py prune-site).
  changed=$("$host_python" "$repo/deploy/arm_check.py" prune-site --site "$site" --requirements "$requirements")
  if [ -n "$changed" ]; then
    say "installing into $site: $(echo "$changed" | tr '\n' ' ')"
    add=$site.add
    rm -rf "$add"
    # shellcheck disable=SC2086  # one pin per word
    nice -n 15 "$host_python" -m pip install -q --no-deps --no-index --find-links "$wheels" \
      "${pip_platform[@]}" --target "$add" $changed
    for entry in "$add"/* "$add"/.[!.]*; do
      [ -e "$entry" ] || continue
      if [ -d "$entry" ] && [ -d "$site/$(basename "$entry")" ]; then
        cp -a "$entry/." "$site/$(basename "$entry")/"   # shared folders: bin/, __pycache__/
      else
        rm -rf "${site:?}/$(basename "$entry")"
        mv "$entry" "$site/"
      fi
    done
    rm -rf "$add"
  fi
  echo "$stamp" >"$site/.requirements.sha256"
}

[ -x "$host_python" ] || die "no python at $host_python (run make install, or set ARM_CHECK_HOST_PYTHON)"
# Each phase's wall time goes to stderr and into $cache/timings.txt for benchmarks/RESULTS-deploy.md.
timed() {
  local start=$SECONDS status=0
  "$@" || status=$?
  say "$1: $((SECONDS - start)) s$([ "$status" -eq 0 ] || echo ", exit status $status")"
  echo "$(date -u +%FT%TZ) $1 $((SECONDS - start))$([ "$status" -eq 0 ] || echo " failed")" >>"$cache/timings.txt"
  return "$status"
}

mkdir -p "$cache"
need_tools
timed build_root
timed fetch_wheels
timed install_site
[ "$prepare_only" -eq 1 ] && { say "cache ready in $cache"; exit 0; }

if [ ! -f "$models/ecnn.json" ] || [ ! -f "$models/va.json" ]; then
  die "$models has no ecnn.json and va.json (train and export the models, or pass --models DIR)"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

reference() {
  say "reference outputs on $(uname -m)"
  PYTHONPATH=$repo nice -n 15 "$host_python" "$repo/deploy/arm_check.py" reference \
    --models "$models" --out "$work"
}

emulated() {
  say "the same under $qemu -cpu $cpu (slow: minutes); report in $cache/report.json"
  # -S: no site-packages of the root (or, through -L's fall-back to host paths, of this
  # machine) on sys.path. No bytecode writes: a path missing from the root lands on the host.
  PYTHONPATH=$site:$repo PYTHONDONTWRITEBYTECODE=1 PYTHONNOUSERSITE=1 \
    nice -n 19 "$qemu" -cpu "$cpu" -L "$root" "$root/usr/bin/python3" -S \
    "$repo/deploy/arm_check.py" check --models "$models" --reference "$work" --json "$cache/report.json"
}

timed reference
timed emulated
