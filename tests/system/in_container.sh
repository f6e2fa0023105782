#!/bin/sh
# Runs as systemd.run= inside the booted container; its exit status is the test's verdict.
# /src is this checkout; /src/.cache/nspawn-mode.env says whether the real daemon (MODE=real,
# the checkout's venv mounted read-only at PREFIX) or the stand-in runs.
set -u
unit=rescnn-appliance
# shellcheck disable=SC1091  # written by run_system_tests.sh before the boot
. /src/.cache/nspawn-mode.env
if [ "$MODE" = real ]; then
    # the checkout is mounted at PREFIX, wherever it lies on the host (a host path under /tmp
    # would be hidden by the unit's PrivateTmp=): run the venv's python on the mounted source
    exec_start="$PREFIX/.venv/bin/python -m rescnn_appliance run --source demo --aout dummy --no-buttons"
    extra_env="Environment=PYTHONPATH=$PREFIX"
    # the service user must reach the mounted python tree (parents in the container's overlay)
    d="$PYHOME"
    while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null; d=$(dirname "$d"); done
    ready_line="ready in"
    wd=5
else
    exec_start="/usr/bin/python3 -u /src/tests/system/standin_daemon.py"
    extra_env=""
    ready_line="standin: uid="
    wd=3
fi
mkdir -p /etc/systemd/system/$unit.service.d
cp /src/systemd/$unit.service /etc/systemd/system/
# The sandbox probe runs first under the same unit settings (User=, ProtectSystem=, families).
cat > /etc/systemd/system/$unit.service.d/test.conf <<CONF
[Service]
ExecStartPre=/usr/bin/python3 -u /src/tests/system/standin_daemon.py --probe
ExecStart=
ExecStart=$exec_start
$extra_env
WatchdogSec=$wd
RestartSec=1
CONF
systemctl daemon-reload
log() { journalctl -u $unit --no-pager -o cat; }
t0=$(date +%s)
systemctl start $unit || { log | tail -30; exit 10; }
[ "$(systemctl is-active $unit)" = active ] || { log | tail -30; exit 11; }
echo "$MODE daemon active after READY=1 in $(( $(date +%s) - t0 )) s"
log | grep -q "$ready_line" || { log | tail -30; exit 20; }
pid1=$(systemctl show -p MainPID --value $unit)
[ "$(stat -c %U /proc/"$pid1")" = rescnn ] || { stat -c "%U %n" /proc/"$pid1"; exit 21; }
if [ "$MODE" = real ]; then
    for _ in $(seq 60); do log | grep -q "library scan:" && break; sleep 0.5; done
    status_text=$(systemctl show -p StatusText --value $unit)
    echo "STATUS: $status_text"
    case "$status_text" in user=owner*) ;; *) log | tail -30; exit 22 ;; esac
    [ -s /var/lib/rescnn-appliance/library.sqlite ] || { ls -la /var/lib/rescnn-appliance; exit 23; }
    [ "$(stat -c %U /var/lib/rescnn-appliance/library.sqlite)" = rescnn ] || exit 24
    # ProtectSystem=strict in the daemon's own mount namespace: /usr and the code are read-only
    nsenter -t "$pid1" -m touch /usr/rescnn-probe 2>/dev/null && { echo "/usr writable"; exit 25; }
    nsenter -t "$pid1" -m touch "$PREFIX/rescnn-probe" 2>/dev/null && { echo "code writable"; exit 26; }
    # PrivateNetwork=: only the loopback device
    [ "$(grep -c : /proc/"$pid1"/net/dev)" = 1 ] || { cat /proc/"$pid1"/net/dev; exit 27; }
fi
kill -STOP "$pid1"
n=0
for _ in $(seq 120); do
    sleep 0.5
    n=$(systemctl show -p NRestarts --value $unit)
    [ "$n" = 1 ] && break
done
[ "$n" = 1 ] || { echo "NRestarts=$n"; log | tail -30; exit 12; }
for _ in $(seq 240); do [ "$(systemctl is-active $unit)" = active ] && break; sleep 0.5; done
pid2=$(systemctl show -p MainPID --value $unit)
if [ "$pid2" = 0 ] || [ "$pid2" = "$pid1" ]; then echo "MainPID $pid1 -> $pid2"; exit 13; fi
log | grep -q "Watchdog timeout" || { log | tail -30; exit 14; }
[ "$(log | grep -c "$ready_line")" -ge 2 ] || { log | tail -30; exit 15; }
uid=$(id -u rescnn)
log | grep -q "standin: uid=$uid" || { log | tail; exit 16; }
log | grep -q "standin: state /var/lib/rescnn-appliance writable" || { log | tail; exit 17; }
log | grep -q "standin: /usr refused (Read-only file system)" || { log | tail; exit 18; }
log | grep -q "standin: inet socket refused" || { log | tail; exit 19; }
[ "$(stat -c %a /var/lib/rescnn-appliance)" = 750 ] || exit 30
echo "watchdog restart: MainPID $pid1 -> $pid2, NRestarts=1, after $(( $(date +%s) - t0 )) s"
log | grep -E "standin:|ready in|Watchdog timeout|playing " | head -12
exit 0
