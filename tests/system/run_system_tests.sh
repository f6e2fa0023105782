#!/usr/bin/env bash
# System tests under a real systemd: boots a cached Debian bookworm root with systemd-nspawn and
# runs the REAL daemon (this checkout's venv, read-only) under the shipped unit.
# Prints why it skips (exit 0) where that cannot work: not root, no systemd-nspawn, no debootstrap.
# Root cached at $RESCNN_NSPAWN_ROOT (default /var/cache/rescnn-appliance-nspawn/bookworm); built
# once by debootstrap, libVLC added once with apt inside it (both need the Debian mirror).
# Without a venv (.venv/bin/rescnn-appliance) or libVLC in the root, a stand-in notify daemon
# runs instead, and the reason is printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="${RESCNN_NSPAWN_ROOT:-/var/cache/rescnn-appliance-nspawn/bookworm}"
NSPAWN=(systemd-nspawn -q --keep-unit --register=no)
skip() { echo "system tests skipped: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (systemd-nspawn)"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn missing (apt-get install systemd-container)"
if [ ! -x "$ROOT/lib/systemd/systemd" ]; then
    command -v debootstrap >/dev/null || skip "debootstrap missing (apt-get install debootstrap)"
    mkdir -p "$(dirname "$ROOT")"
    rm -rf "$ROOT.tmp"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3 bookworm \
        "$ROOT.tmp" http://deb.debian.org/debian
    chroot "$ROOT.tmp" sh -c 'groupadd -f gpio && groupadd -f i2c && useradd --system \
        --home-dir /var/lib/rescnn-appliance --shell /usr/sbin/nologin \
        --groups video,audio,gpio,i2c rescnn'
    mv "$ROOT.tmp" "$ROOT"
fi
mkdir -p .cache
mode=real why=""
if ! ls "$ROOT"/usr/lib/*/libvlc.so.5 >/dev/null 2>&1; then
    echo "adding libVLC to the cached root (once)"
    "${NSPAWN[@]}" -D "$ROOT" --pipe sh -c 'apt-get update -q >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libvlc5 vlc-plugin-base >/dev/null && apt-get clean' 2>&1 | grep -v "Attempted to remove" \
        || true
    ls "$ROOT"/usr/lib/*/libvlc.so.5 >/dev/null 2>&1 || { mode=standin; why="libVLC could not be installed in $ROOT"; }
fi
binds=(--bind-ro="$PWD:/src")
PREFIX_IN=/opt/rescnn-src
if [ "$mode" = real ]; then
    venv="$PWD/.venv"
    pyhome=$(sed -n 's/^home = //p' "$venv/pyvenv.cfg" 2>/dev/null || true)
    if [ ! -x "$venv/bin/rescnn-appliance" ] || [ -z "$pyhome" ]; then
        mode=standin why="no venv with rescnn-appliance at $venv (make install)"
    else
        # the venv's python tree is named by absolute path: mount it where it is; the checkout
        # goes to a fixed path outside /tmp (in_container.sh sets PYTHONPATH to it)
        binds+=(--bind-ro="$PWD:$PREFIX_IN" --bind-ro="$(dirname "$pyhome")")
    fi
fi
[ "$mode" = standin ] && echo "system test runs the stand-in daemon: $why"
printf 'MODE=%s\nPREFIX=%s\nPYHOME=%s\n' "$mode" "$PREFIX_IN" "${pyhome:-}" > .cache/nspawn-mode.env
status=0
timeout 420 "${NSPAWN[@]}" -b --volatile=overlay -D "$ROOT" "${binds[@]}" \
    systemd.run=/src/tests/system/in_container.sh \
    > .cache/nspawn-last.log 2>&1 || status=$?
grep -a -E "in_container.sh\[[0-9]+\]:" .cache/nspawn-last.log | sed 's/^.*in_container.sh\[[0-9]*\]: //' || true
if [ "$status" != 0 ]; then
    echo "system test FAILED: in_container.sh exited $status (full boot log: .cache/nspawn-last.log)"
    exit 1
fi
echo "system test passed ($mode daemon): shipped unit under systemd 252, watchdog restart after SIGSTOP"
