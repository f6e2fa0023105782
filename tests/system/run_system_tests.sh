#!/usr/bin/env bash
# System tests under a real systemd: boots a cached Debian bookworm root with systemd-nspawn.
# Prints why it skips (exit 0) where that cannot work: not root, no systemd-nspawn, no debootstrap.
# Root cached at $RESCNN_NSPAWN_ROOT (default /var/cache/rescnn-appliance-nspawn/bookworm).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="${RESCNN_NSPAWN_ROOT:-/var/cache/rescnn-appliance-nspawn/bookworm}"
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
status=0
timeout 180 systemd-nspawn -q -b --keep-unit --register=no --volatile=overlay -D "$ROOT" \
    --bind-ro="$PWD:/src" systemd.run=/src/tests/system/in_container.sh \
    > .cache/nspawn-last.log 2>&1 || status=$?
grep -a -E "in_container.sh\[[0-9]+\]:" .cache/nspawn-last.log | sed 's/^.*in_container.sh\[[0-9]*\]: //' || true
if [ "$status" != 0 ]; then
    echo "system test FAILED: in_container.sh exited $status (full boot log: .cache/nspawn-last.log)"
    exit 1
fi
echo "system test passed: shipped unit under systemd 252, watchdog restart after SIGSTOP"
