"""A library scan in a process of its own, for a long-running program that must stay small.

The scan needs mutagen, soundfile, scikit-learn and SciPy (K-means and the mood naming), about
100 MB of resident memory once imported, which a Python process never gives back. The appliance
runs the scan here instead, so its own memory holds none of that; the scan writes the same
SQLite file (WAL, short transactions) and bumps ``Library.tracks_revision``, so the daemon's
recommender reloads by itself. Killed half way, the database stays consistent and the next scan
resumes (see :meth:`Library.scan`).

Command line (prints one JSON line with the report; exit status 0, or 1 with one line on
stderr)::

    python -m rescnn_appliance.music.scan_job /var/lib/rescnn-appliance/library.sqlite ~/Music

Example::

    >>> job = ScanJob.start(db_path, [Path("~/Music")])     # doctest: +SKIP
    >>> ok, message = job.wait()                            # doctest: +SKIP
    >>> message                                             # doctest: +SKIP
    '12 analysed, 340 unchanged, 1 errors'
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


class ScanJob:
    """One ``scan_job`` child process; :meth:`wait` gives (ok, one-line message)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    @classmethod
    def start(cls, db_path: Path | str, folders: Sequence[Path | str]) -> ScanJob:
        cmd = [sys.executable, "-m", "rescnn_appliance.music.scan_job", str(db_path),
               *map(str, folders)]
        return cls(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True))

    def wait(self, timeout: float | None = None) -> tuple[bool, str]:
        out, err = self.proc.communicate(timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if self.proc.returncode == 0 and lines:
            report = json.loads(lines[-1])
            return True, (f"{report['analysed']} analysed, {report['unchanged']} unchanged, "
                          f"{report['errors']} errors")
        why = [line for line in err.splitlines() if line.strip()]
        return False, (why[-1] if why else f"scan process exited with {self.proc.returncode}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop a running scan (what it stored so far stays; the next scan resumes)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m rescnn_appliance.music.scan_job DB [FOLDER...]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from rescnn_appliance.music.library import Library

    try:
        lib = Library.open(args[0])
        try:
            report = lib.scan(args[1:], progress=False)
        finally:
            lib.close()
    except Exception as exc:  # noqa: BLE001 - any failure is one line for the caller's log
        print((" ".join(str(exc).split()) or type(exc).__name__)[:300], file=sys.stderr)
        return 1
    print(json.dumps({"analysed": report.analysed, "unchanged": report.unchanged,
                      "errors": len(report.errors), "missing": report.missing,
                      "seconds": round(report.seconds, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
