#!/bin/sh
# Runs as systemd.run= inside the booted container; its exit status is the test's verdict.
set -u
unit=rescnn-appliance
mkdir -p /etc/systemd/system/$unit.service.d
cp /src/systemd/$unit.service /etc/systemd/system/
cat > /etc/systemd/system/$unit.service.d/test.conf <<CONF
[Service]
ExecStart=
ExecStart=/usr/bin/python3 -u /src/tests/system/standin_daemon.py
WatchdogSec=3
RestartSec=1
CONF
systemctl daemon-reload
log() { journalctl -u $unit --no-pager -o cat; }
systemctl start $unit || { log | tail -20; exit 10; }
[ "$(systemctl is-active $unit)" = active ] || { log | tail -20; exit 11; }
pid1=$(systemctl show -p MainPID --value $unit)
kill -STOP "$pid1"
n=0
for _ in $(seq 40); do
    sleep 0.5
    n=$(systemctl show -p NRestarts --value $unit)
    [ "$n" = 1 ] && break
done
[ "$n" = 1 ] || { echo "NRestarts=$n"; log | tail -20; exit 12; }
for _ in $(seq 20); do [ "$(systemctl is-active $unit)" = active ] && break; sleep 0.5; done
pid2=$(systemctl show -p MainPID --value $unit)
[ "$pid2" != 0 ] && [ "$pid2" != "$pid1" ] || { echo "MainPID $pid1 -> $pid2"; exit 13; }
log | grep -q "Watchdog timeout" || { log | tail -20; exit 14; }
uid=$(id -u rescnn)
log | grep -q "standin: uid=$uid" || { log | tail; exit 15; }
log | grep -q "standin: state /var/lib/rescnn-appliance writable" || { log | tail; exit 16; }
log | grep -q "standin: /usr refused (Read-only file system)" || { log | tail; exit 17; }
log | grep -q "standin: inet socket refused" || { log | tail; exit 18; }
[ "$(stat -c %a /var/lib/rescnn-appliance)" = 750 ] || exit 19
echo "watchdog restart: MainPID $pid1 -> $pid2, NRestarts=1"
log | grep standin | head -4
exit 0
