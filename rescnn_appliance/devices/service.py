"""systemd integration: service notifications (sd_notify) and logs with structured fields.

:class:`ServiceNotifier` tells systemd ``READY=1``, ``STATUS=...``, ``WATCHDOG=1`` and
``STOPPING=1`` through ``$NOTIFY_SOCKET``. It uses systemd-python's ``daemon.notify`` (libsystemd)
when installed and otherwise writes the same datagram itself, so it behaves the same on a machine
without systemd-python. Without ``$NOTIFY_SOCKET`` (not started by systemd) every call is a no-op.

:func:`configure_logging` sends log records to journald with structured fields when the process
runs under systemd with its output in the journal, and to stderr otherwise. Fields are passed
with ``extra=``: ``log.info("playing", extra={"USER": "ana", "TRACK": "x.ogg"})`` becomes the
journal fields ``USER=ana TRACK=x.ogg``, or ``[USER=ana TRACK=x.ogg]`` at the end of the stderr
line. ``systemd`` is imported only inside these functions.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO, Literal

IDENTIFIER = "rescnn-appliance"
JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
#: Fields the appliance logs; any other UPPER_CASE ``extra=`` key is passed on as well.
STRUCTURED_FIELDS = ("USER", "MOOD", "TRACK", "VALENCE", "AROUSAL")
_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}


def _send_datagram(address: str, message: str) -> bool:
    """The sd_notify protocol without libsystemd: one datagram to ``$NOTIFY_SOCKET``."""
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(message.encode("utf-8"), address)
        except OSError:
            return False
    return True


class ServiceNotifier:
    """Tells systemd how the service is doing; silently does nothing outside systemd.

    ``backend`` is ``auto`` (libsystemd through systemd-python when installed, else a plain
    socket), ``libsystemd`` or ``socket``.

    Example::

        >>> notifier = ServiceNotifier()
        >>> notifier.ready("user=ana mood=calm")     # READY=1 + STATUS=, if under systemd
        False
        >>> notifier.watchdog_interval_s is None     # no WatchdogSec= outside systemd
        True
    """

    def __init__(self, backend: Literal["auto", "libsystemd", "socket"] = "auto") -> None:
        self.address = os.environ.get("NOTIFY_SOCKET") or None
        self._notify = None
        if backend in ("auto", "libsystemd"):
            try:
                from systemd import daemon
            except ImportError:
                if backend == "libsystemd":
                    raise
            else:
                self._notify = daemon.notify
        self._last_watchdog = float("-inf")

    @property
    def active(self) -> bool:
        """True when systemd is listening (``$NOTIFY_SOCKET`` was set at start)."""
        return self.address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """``WatchdogSec=`` in seconds when the watchdog is on for this process, else None."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid.strip() != str(os.getpid())):
            return None
        try:
            value = int(usec)
        except ValueError:
            return None
        return value / 1e6 if value > 0 else None

    @property
    def ping_every_s(self) -> float | None:
        """How often to send ``WATCHDOG=1``: half the interval, as sd_watchdog_enabled advises."""
        interval = self.watchdog_interval_s
        return interval / 2 if interval else None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines in one message; True if systemd got it."""
        if self.address is None:
            return False
        message = "\n".join(a.replace("\n", " ") for a in assignments)
        # libsystemd reads $NOTIFY_SOCKET on each call; if someone unset it, write it ourselves.
        if self._notify is not None and os.environ.get("NOTIFY_SOCKET") == self.address:
            try:
                return bool(self._notify(message))
            except OSError:  # the socket went away: systemd is stopping or gone
                return False
        return _send_datagram(self.address, message)

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: models, database and player are up."""
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """``STATUS=``: the line ``systemctl status`` shows (user, mood, track)."""
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: call only when the main loop has really made progress."""
        self._last_watchdog = time.monotonic()
        return self.send("WATCHDOG=1")

    def watchdog_due(self) -> bool:
        """True when the watchdog is on and ``ping_every_s`` has passed since the last ping."""
        every = self.ping_every_s
        return every is not None and time.monotonic() - self._last_watchdog >= every

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutting down on purpose."""
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))


def structured_fields(record: logging.LogRecord) -> dict[str, str]:
    """The UPPER_CASE fields a record carries from ``extra=``, known fields first."""
    fields = {}
    for key in (*STRUCTURED_FIELDS, *sorted(vars(record))):
        if key in fields or key in _RECORD_KEYS or not key.isupper():
            continue
        value = getattr(record, key, None)
        if value is not None:
            fields[key] = f"{value:.3f}" if isinstance(value, float) else str(value)
    return fields


class FieldsFormatter(logging.Formatter):
    """Formats a line for stderr and appends the structured fields in brackets.

    Example::

        >>> record = logging.makeLogRecord({"msg": "playing", "levelname": "INFO",
        ...                                 "name": "rescnn", "MOOD": "calm", "VALENCE": 0.25})
        >>> FieldsFormatter("%(levelname)s %(name)s: %(message)s").format(record)
        'INFO rescnn: playing [MOOD=calm VALENCE=0.250]'
    """

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = structured_fields(record)
        if fields:
            line += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return line


def journal_available() -> bool:
    """True when this process runs under systemd with its output going to the journal."""
    return bool(os.environ.get("JOURNAL_STREAM")) and JOURNAL_SOCKET.exists()


def _journal_handler(identifier: str) -> logging.Handler:
    from systemd import journal

    def send(message: str, /, **fields: object) -> None:
        # journald drops lower-case names anyway; send only real fields, floats rounded.
        clean = {k: (f"{v:.3f}" if isinstance(v, float) else v)
                 for k, v in fields.items() if k.isupper() and v is not None}
        journal.send(message, **clean)

    return journal.JournalHandler(sender_function=send, SYSLOG_IDENTIFIER=identifier)


_installed: logging.Handler | None = None


def configure_logging(
    level: int | str = logging.INFO,
    journal: Literal["auto", "yes", "no"] = "auto",
    stream: IO[str] | None = None,
    identifier: str = IDENTIFIER,
) -> logging.Handler:
    """Send the root logger to journald (``auto``: when running under systemd) or to stderr.

    Calling it again replaces the handler it installed before. Returns the handler.
    """
    global _installed
    use_journal = journal == "yes" or (journal == "auto" and journal_available())
    handler: logging.Handler | None = None
    if use_journal:
        try:
            handler = _journal_handler(identifier)
        except ImportError:
            if journal == "yes":
                raise
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
        _installed.close()
    root.addHandler(handler)
    root.setLevel(level)
    _installed = handler
    return handler
