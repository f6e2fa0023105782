"""systemd notifications to a real unix datagram socket, and logs with structured fields."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid

import pytest

from rescnn_appliance.devices.service import ServiceNotifier, configure_logging

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A socket systemd would own: bound in tmp_path and named by $NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def received(sock) -> list[str]:
    return sock.recv(4096).decode().split("\n")


@pytest.mark.parametrize("backend", ["libsystemd", "socket"])
def test_systemd_hears_ready_status_watchdog_and_stopping(notify_socket, backend):
    if backend == "libsystemd":
        pytest.importorskip("systemd.daemon")
    notifier = ServiceNotifier(backend=backend)
    assert notifier.active
    assert notifier.ready("user=ana mood=calm track=Song")
    assert received(notify_socket) == ["READY=1", "STATUS=user=ana mood=calm track=Song"]
    assert notifier.status("mood=happy\ntrack=Other")  # a newline would split the message
    assert received(notify_socket) == ["STATUS=mood=happy track=Other"]
    assert notifier.watchdog()
    assert received(notify_socket) == ["WATCHDOG=1"]
    assert notifier.stopping()
    assert received(notify_socket) == ["STOPPING=1"]


def test_an_abstract_notify_socket_works_too(monkeypatch):
    name = f"rescnn-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        for backend in ("auto", "socket"):
            assert ServiceNotifier(backend=backend).ready()
            assert received(sock) == ["READY=1"]


def test_without_systemd_every_call_is_a_quiet_no_op():
    notifier = ServiceNotifier()
    assert not notifier.active
    assert notifier.ready("x") is False
    assert notifier.watchdog() is False
    assert notifier.watchdog_interval_s is None and not notifier.watchdog_due()


def test_a_vanished_socket_does_not_raise(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert ServiceNotifier(backend="socket").watchdog() is False
    assert ServiceNotifier().watchdog() is False


def test_watchdog_interval_comes_from_watchdog_usec(monkeypatch, notify_socket):
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    notifier = ServiceNotifier()
    assert notifier.watchdog_interval_s == 20.0
    assert notifier.ping_every_s == 10.0
    assert notifier.watchdog_due()
    notifier.watchdog()
    assert not notifier.watchdog_due()
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert notifier.watchdog_interval_s is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert notifier.watchdog_interval_s == 20.0


def test_logs_on_stderr_carry_the_structured_fields():
    out = io.StringIO()
    handler = configure_logging("INFO", journal="no", stream=out)
    try:
        log = logging.getLogger("rescnn_appliance.test")
        log.info("now playing", extra={"USER": "ana", "MOOD": "calm", "TRACK": "a.ogg",
                                       "VALENCE": 0.41234, "AROUSAL": -0.2})
        log.debug("hidden")
        line = out.getvalue().strip()
        assert line.endswith("now playing [USER=ana MOOD=calm TRACK=a.ogg VALENCE=0.412 "
                             "AROUSAL=-0.200]")
        assert "INFO rescnn_appliance.test" in line and "hidden" not in line
        assert configure_logging(journal="auto", stream=out) is not handler  # replaces it
        assert handler not in logging.getLogger().handlers
    finally:
        logging.getLogger().removeHandler(configure_logging(journal="no"))


JOURNAL_PROBE = textwrap.dedent("""
    import json, logging, os, socket, sys
    os.makedirs("/run/systemd/journal", exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/run/systemd/journal/socket")
    sock.settimeout(2)
    from rescnn_appliance.devices.service import configure_logging
    handler = configure_logging("INFO", stream=sys.stdout)
    logging.getLogger("rescnn_appliance.loop").warning(
        "mood changed", extra={"USER": "ana", "MOOD": "happy", "TRACK": "b.flac",
                               "VALENCE": 0.5, "AROUSAL": 0.25})
    fields = {}
    for line in sock.recv(65536).decode().split("\\n"):
        if "=" in line:
            key, _, value = line.partition("=")
            fields[key] = value
    print(json.dumps({"handler": type(handler).__name__, "fields": fields}))
""")


def test_under_systemd_logs_go_to_journald_with_fields(tmp_path):
    """Runs in a private mount namespace with a journald socket of our own at the real path."""
    pytest.importorskip("systemd.journal")
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-m", "true"], check=False).returncode != 0:
        pytest.skip("needs unshare -m (root or user namespaces) to stand in for journald")
    script = tmp_path / "probe.py"
    script.write_text(JOURNAL_PROBE)
    env = {**os.environ, "JOURNAL_STREAM": "8:12345", "PYTHONPATH": REPO}
    result = subprocess.run(
        [unshare, "-m", "sh", "-c", f"mount -t tmpfs tmpfs /run && exec {sys.executable} {script}"],
        env=env, check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["handler"] == "JournalHandler"
    fields = report["fields"]
    assert fields["MESSAGE"] == "mood changed"
    assert fields["PRIORITY"] == "4"
    assert fields["SYSLOG_IDENTIFIER"] == "rescnn-appliance"
    assert (fields["USER"], fields["MOOD"], fields["TRACK"]) == ("ana", "happy", "b.flac")
    assert (fields["VALENCE"], fields["AROUSAL"]) == ("0.500", "0.250")
    assert not any(key.islower() for key in fields)
