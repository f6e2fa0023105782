"""``rescnn-appliance status``: who is listening, their mood, the track and why it was chosen.

Reads the appliance's database (resume state, recent readings, library counts); works whether
or not the daemon is running.

Example::

    $ rescnn-appliance status
    user     ana
    mood     calm (valence +0.21, arousal -0.40)
    track    Slow Tide - rescnn-appliance demo, 42 s in
    because  calm; you liked this track twice
"""

from __future__ import annotations

import argparse
import json
import sys

from rescnn_appliance.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="user, mood, track, recent readings, why the track was chosen",
                       description="Show the appliance's current user, mood and track, why the "
                                   "track was chosen and the recent readings (from the database).")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=handler)


def gather(settings: Settings) -> dict:
    """Everything ``status`` shows, as a dict (read from the database)."""
    from rescnn_appliance.music.library import Library

    lib = Library.open(settings.database_path)
    try:
        out = {key: lib.get_state(key) for key in
               ("active_user", "mood", "last_track", "volume", "recent_readings")}
        stats = lib.stats()
    finally:
        lib.close()
    out["library"] = {k: stats[k] for k in ("tracks", "by_mood", "users", "feedback", "plays")}
    out["database"] = str(settings.database_path)
    return out


def handler(args: argparse.Namespace, settings: Settings) -> int:
    import logging as _logging

    _logging.getLogger("alembic").setLevel(_logging.WARNING)  # migration chatter
    from rescnn_appliance.music.db import DatabaseBusy, MigrationError

    if not settings.database_path.exists():
        print(f"rescnn-appliance: {settings.database_path}: no database yet "
              "(the appliance has not run with this state folder)", file=sys.stderr)
        return 1
    try:
        info = gather(settings)
    except (MigrationError, DatabaseBusy) as exc:
        print(f"rescnn-appliance: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    mood = info["mood"] or {}
    track = info["last_track"] or {}
    rows = [("user", info["active_user"] or "-")]
    if mood and "valence" in mood:
        rows.append(("mood", (f"{mood.get('mood')} (valence {mood.get('valence', 0):+.2f}, "
                              f"arousal {mood.get('arousal', 0):+.2f})")))
    elif mood:  # privacy.store_readings = coarse: the mood only
        rows.append(("mood", str(mood.get("mood"))))
    else:
        rows.append(("mood", "- (none read yet, or privacy.store_readings is off)"))
    if track:
        by = f" - {track['artist']}" if track.get("artist") else ""
        rows.append(("track", f"{track.get('title')}{by}, {track.get('position_s', 0):.0f} s in"))
        rows.append(("because", track.get("reason") or "-"))
    else:
        rows.append(("track", "-"))
    if info["volume"] is not None:
        rows.append(("volume", str(info["volume"])))
    lib = info["library"]
    rows.append(("library", (f"{lib['tracks']} tracks, {lib['users']} users, "
                             f"{lib['feedback']} feedback, {lib['plays']} plays")))
    for key, value in rows:
        print(f"{key:<9}{value}")
    readings = info["recent_readings"] or []
    if readings:
        print("recent readings:")
        for r in readings[-10:]:
            extra = (f" {r['emotion']} V{r['valence']:+.2f} A{r['arousal']:+.2f}"
                     if "valence" in r else "")
            print(f"  {r['at']}  {r['mood']}{extra}")
    return 0
