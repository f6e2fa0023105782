"""Library scan: find audio files, read tags, give every track a valence and arousal.

Valence/arousal come from the first source that has them: the file's tags (see
:mod:`.tags`), a CSV the user imported (:mod:`.va_import`), else the audio itself
(:mod:`.audio_features` + :mod:`.va_model`). The scan is incremental (a file whose size and
mtime match its row is skipped), analyses on every core, commits in small batches (a scan
killed half way leaves a consistent database; the next one resumes), records a bad file with
its error and goes on, and marks files that have gone as ``missing`` (their history stays).

Use it through :meth:`rescnn_appliance.music.library.Library.scan`.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

from rescnn_appliance.music.tags import TrackTags

AUDIO_EXTENSIONS = frozenset({".mp3", ".flac", ".ogg", ".oga", ".opus", ".wav", ".m4a"})
# libsndfile has no AAC decoder: an m4a needs VA from its tags or an imported CSV.
UNDECODABLE = frozenset({".m4a"})
log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class FileResult(TrackTags):
    """What analysing one file produced: its tags (``genre`` is "" when the file has none) and
    where its valence/arousal came from; ``error`` set means the file is unusable.

    Example::

        >>> FileResult(path="/music/a.ogg", size=10, mtime=0.0, title="a").artist is None
        True
    """

    path: str
    size: int
    mtime: float
    va_source: str | None = None
    error: str | None = None
    note: str | None = None
    gone: bool = False
    audio_s: float = 0.0
    cpu_s: float = 0.0


@dataclass
class ScanReport:
    """Counts from one scan; ``errors`` lists (path, message) for every bad file."""

    found: int = 0
    analysed: int = 0
    unchanged: int = 0
    missing: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    audio_s: float = 0.0
    cpu_s: float = 0.0

    def summary(self) -> str:
        src = ", ".join(f"{k} {v}" for k, v in sorted(self.by_source.items())) or "none"
        return (f"{self.found} audio files: {self.analysed} analysed ({src}), "
                f"{self.unchanged} unchanged, {len(self.errors)} errors, "
                f"{self.missing} newly missing, {self.seconds:.1f} s")


def key(text: str | None) -> str:
    """Artist/title key for matching imported VA: case and spacing folded."""
    return " ".join((text or "").casefold().split())


# --- walking -----------------------------------------------------------------------------

def walk_audio(roots: Iterable[Path], errors: list[tuple[str, str]],
               bad_files: dict[str, str]) -> Iterator[tuple[str, int, float]]:
    """Yield (path, size, mtime) for audio files under ``roots``.

    Follows symlinks, but never enters a directory twice (a symlink loop is appended to
    ``errors``); an audio file that cannot even be stat'ed goes to ``bad_files`` with its reason.
    """
    visited: set[tuple[int, int]] = set()
    for root in roots:
        root = Path(root).expanduser().absolute()
        if not root.is_dir():
            errors.append((str(root), "folder not found"))
            continue
        for dirpath, dirnames, filenames in os.walk(
                root, followlinks=True,
                onerror=lambda e: errors.append((str(e.filename), f"cannot read folder: {e.strerror}"))):
            try:
                st = os.stat(dirpath)
            except OSError as exc:
                errors.append((dirpath, f"cannot read folder: {exc.strerror}"))
                dirnames[:] = []
                continue
            if (st.st_dev, st.st_ino) in visited:
                errors.append((dirpath, "symlink loop: folder already scanned, skipped"))
                dirnames[:] = []
                continue
            visited.add((st.st_dev, st.st_ino))
            dirnames.sort()
            for name in sorted(filenames):
                if Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
                    continue
                path = os.path.join(dirpath, name)
                try:
                    fst = os.stat(path)
                except OSError as exc:
                    why = "symlink loop" if exc.errno == errno.ELOOP else exc.strerror
                    bad_files[path] = f"cannot open: {why}"
                    continue
                yield path, fst.st_size, fst.st_mtime


# --- analysing one file (runs in a worker process) ---------------------------------------

_csv_keys: frozenset = frozenset()
_va_model = None


def _init_worker(csv_keys: frozenset) -> None:
    global _csv_keys
    _csv_keys = csv_keys


def analyse_file(item: tuple[str, int, float]) -> FileResult:
    """Tags, then VA from tags, else (unless a CSV row covers it) from the audio."""
    global _va_model
    path, size, mtime = item
    res = FileResult(path=path, size=size, mtime=mtime)
    t0 = time.process_time()
    try:
        if size == 0:
            res.error = "empty file (0 bytes)"
            return res
        import mutagen

        from rescnn_appliance.music.tags import read_tags

        res.genre = ""  # looked at: no genre tag (None is a row from before genres were read)
        try:
            tags = read_tags(path)
            for f in fields(TrackTags):
                setattr(res, f.name, getattr(tags, f.name))
            res.genre = tags.genre or ""
            if tags.valence is not None:
                res.va_source = "tags"
        except (mutagen.MutagenError, ValueError, KeyError, IndexError, TypeError) as exc:
            res.note = f"unreadable tags ({type(exc).__name__}: {exc})"
        if res.title is None:
            res.title = Path(path).stem
        if res.va_source is None and (path in _csv_keys
                                      or (key(res.artist), key(res.title)) in _csv_keys):
            res.va_source = "csv"  # the main process fills the values in
        suffix = Path(path).suffix.lower()
        if res.va_source is None or res.duration_s is None:
            if suffix in UNDECODABLE:
                if res.va_source is None:
                    res.error = (f"cannot decode {suffix} here (no AAC decoder); give it VALENCE/"
                                 "AROUSAL tags or import-va a CSV row")
                return res
            from rescnn_appliance.music.audio_features import (
                features_from_samples,
                read_excerpt,
            )
            from rescnn_appliance.music.va_model import VAModel

            mono, rate, duration = read_excerpt(path)
            res.duration_s = res.duration_s or duration
            if res.va_source is None:
                if _va_model is None:
                    _va_model = VAModel.load()
                res.valence, res.arousal = _va_model.predict(features_from_samples(mono, rate))
                res.va_source = "audio"
                res.audio_s = len(mono) / rate
    except FileNotFoundError:
        res.error, res.gone = "file vanished during the scan", True
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the scan
        msg = str(exc).splitlines()[0] if str(exc) else ""
        res.error = f"{type(exc).__name__}: {msg}" if not msg.startswith("cannot") else msg
        if not os.path.exists(path):
            res.error, res.gone = "file vanished during the scan", True
    finally:
        res.cpu_s = time.process_time() - t0
    return res


def read_genre(path: str) -> str:
    """The genre tag alone ("" when there is none or the tags cannot be read)."""
    import mutagen

    from rescnn_appliance.music.tags import read_tags

    try:
        return read_tags(path).genre or ""
    except (OSError, mutagen.MutagenError, ValueError, KeyError, IndexError, TypeError):
        return ""


def analyse_all(items: list[tuple[str, int, float]], csv_keys: frozenset,
                workers: int | None) -> Iterator[FileResult]:
    """Analyse ``items`` on ``workers`` processes (all cores by default), in any order."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(items) < 4:
        _init_worker(csv_keys)
        for item in items:
            yield analyse_file(item)
        return
    # fork is cheapest but unsafe once other threads exist (a daemon with camera and button
    # threads); then forkserver, whose workers re-import __main__: callers need a main guard.
    methods = multiprocessing.get_all_start_methods()
    if threading.active_count() == 1 and "fork" in methods:
        ctx = multiprocessing.get_context("fork")
    else:
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    pool = ctx.Pool(min(workers, len(items)), initializer=_init_worker, initargs=(csv_keys,))
    try:
        yield from pool.imap_unordered(analyse_file, items, chunksize=2)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
