"""``rescnn-appliance library``: scan the music folders and look at what was found.

Examples::

    rescnn-appliance library scan                 # the configured folders (library.folders)
    rescnn-appliance library scan /mnt/usb/music  # that folder joins the configured ones
    rescnn-appliance library list --json
    rescnn-appliance library show "Feeling Good"
    rescnn-appliance library stats
    rescnn-appliance library import-va spotify_export.csv
    rescnn-appliance library refit               # refit the K-means moods now
    rescnn-appliance library restore             # the copies taken before schema upgrades
    rescnn-appliance library restore --latest    # put the newest back (service stopped)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXTRA_FOLDERS_KEY = "library.extra_folders"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("library", help="scan and inspect the music library",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="library_command", metavar="ACTION")
    sub.required = True
    scan = sub.add_parser("scan", help="scan the music folders (and any named here)")
    scan.add_argument("folders", nargs="*", type=Path, metavar="DIR",
                      help="extra folder(s); remembered and scanned from now on")
    scan.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar")
    ls = sub.add_parser("list", help="every track with its tags, valence, arousal and mood")
    ls.add_argument("--json", action="store_true", help="one JSON array")
    show = sub.add_parser("show", help="one track in detail (id, path, or part of path/title)")
    show.add_argument("track")
    sub.add_parser("stats", help="counts per mood, per VA source, and errors")
    imp = sub.add_parser("import-va", help="import valence/arousal from a CSV")
    imp.add_argument("csv", type=Path, metavar="FILE.csv")
    sub.add_parser("refit", help="refit the K-means moods over the library")
    restore = sub.add_parser(
        "restore", help="list the copies taken before schema upgrades, or put one back",
        description="Without BACKUP (or --latest): list the copies, newest first. With one: "
        "check it, set the current file aside (restore it to undo), and put the copy in "
        "place. Stop the service first: sudo systemctl stop rescnn-appliance")
    restore.add_argument("backup", nargs="?", metavar="BACKUP",
                         help="a file name from the list (or a path)")
    restore.add_argument("--latest", action="store_true", help="the newest copy")
    p.set_defaults(func=handle)


def _track_dict(t) -> dict:
    return {"id": t.id, "path": t.path, "title": t.title, "artist": t.artist, "album": t.album,
            "genre": t.genre, "duration_s": None if t.duration_s is None else round(t.duration_s, 1),
            "valence": None if t.valence is None else round(t.valence, 3),
            "arousal": None if t.arousal is None else round(t.arousal, 3),
            "va_source": t.va_source, "mood": t.mood, "status": t.status, "error": t.error}


def handle(args, settings) -> int:
    from rescnn_appliance.commands._library_session import with_library
    from rescnn_appliance.music.library import UnknownTrack
    from rescnn_appliance.music.va_import import VAImportError
    from rescnn_appliance.music.va_model import VAModelError

    if args.library_command == "restore":  # the file may be too damaged to open: no Library
        return _restore(args, settings.database_path)
    return with_library(settings.database_path, lambda lib: _act(args, settings, lib),
                        (UnknownTrack, VAImportError, VAModelError))


def _act(args, settings, lib) -> int:
    """One library action on the open library."""
    cmd = args.library_command
    if cmd == "scan":
        extra = [str(Path(f).expanduser().absolute()) for f in args.folders]
        for f in extra:
            if not Path(f).is_dir():
                print(f"rescnn-appliance: {f}: not a folder", file=sys.stderr)
                return 2
        remembered = lib.get_state(EXTRA_FOLDERS_KEY, [])
        remembered += [f for f in extra if f not in remembered]
        lib.set_state(EXTRA_FOLDERS_KEY, remembered)
        folders = [str(f) for f in settings.music_folders]
        folders += [f for f in remembered if f not in folders]
        report = lib.scan(folders, progress=not args.no_progress and sys.stderr.isatty(),
                          workers=args.workers)
        for path, err in report.errors:
            print(f"{path}: {err}", file=sys.stderr)
        print(report.summary())
    elif cmd == "list":
        tracks = [_track_dict(t) for t in lib.tracks()]
        if args.json:
            json.dump(tracks, sys.stdout, indent=1)
            print()
        else:
            for t in tracks:
                va = ("      -       -" if t["valence"] is None
                      else f"{t['valence']:+.2f} {t['arousal']:+.2f}")
                print(f"{t['id']:>5} {t['status']:<7} {(t['mood'] or '-'):<9} {va} "
                      f"{(t['va_source'] or '-'):<5} {t['artist'] or '?'} - {t['title']}  "
                      f"({t['genre'] or 'no genre'}) [{t['path']}]")
    elif cmd == "show":
        for k, v in _track_dict(lib.track(args.track)).items():
            print(f"{k:>10}: {v}")
    elif cmd == "stats":
        st = lib.stats()
        print(f"tracks: {st['tracks']}  " + "  ".join(f"{k} {v}" for k, v in
                                                      sorted(st["by_status"].items())))
        print("by mood:      " + "  ".join(f"{k} {v}" for k, v in sorted(st["by_mood"].items())))
        print("by VA source: " + "  ".join(f"{k} {v}" for k, v in
                                            sorted(st["by_va_source"].items())))
        print(f"users {st['users']}  feedback {st['feedback']}  plays {st['plays']}")
        print(f"mood model: {lib.mood_model()}")
        for path, err in st["errors"]:
            print(f"error: {path}: {err}")
    elif cmd == "import-va":
        report = lib.import_va(args.csv)
        for line in report.errors:
            print(line, file=sys.stderr)
        print(f"{args.csv}: imported {report.imported} rows, {len(report.errors)} bad rows")
        return 1 if report.errors else 0
    elif cmd == "refit":
        print(lib.refit_moods())
    return 0


def _restore(args, db: Path) -> int:
    from rescnn_appliance.music import backup

    try:
        if args.backup is None and not args.latest:
            found = backup.list_backups(db)
            if not found:
                print(f"no backups of {db} in {db.parent}")
            for b in found:
                print(f"{b.path.name}  {b.taken:%Y-%m-%d %H:%M:%S}  {_size(b.size):>9}  "
                      f"schema {b.revision}")
            if found:
                print(f"restore one with: rescnn-appliance library restore {found[0].path.name}"
                      " (or --latest); stop the service first")
            return 0
        chosen = backup.latest(db) if args.latest else backup.find_backup(db, args.backup)
        done = backup.restore(db, chosen)
    except backup.BackupError as exc:
        print(f"rescnn-appliance: {exc}", file=sys.stderr)
        return 1
    print(f"{db}: restored from {chosen.path.name} (schema {done.revision}; the next start "
          "upgrades it)")
    if done.previous is not None:
        print(f"the file it replaced is kept as {done.previous.name}; to undo: "
              f"rescnn-appliance library restore {done.previous.name}")
    return 0


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} kB"
