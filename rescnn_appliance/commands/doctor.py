"""``rescnn-appliance doctor``: check camera, audio, GPIO, models, database and permissions.

Each check prints one line, ``ok``, ``warn`` or ``FAIL``, and for anything not ok a line saying
how to fix it. Exit status 0 when nothing failed, 1 otherwise (78 for a bad configuration,
before any check runs).

Example::

    $ rescnn-appliance doctor
    ok    config: /usr/lib/python3/.../defaults.toml
    FAIL  camera: /dev/video0: no such video device (is a USB webcam plugged in?)
          fix: connect the camera, or set camera.source = "demo" to try without one
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from rescnn_appliance.config import SYSTEM_CONFIG, Settings

Check = tuple[str, str, str, str]  # level, name, what, fix


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check camera, audio, GPIO, models, database, permissions",
                       description="Check every part the appliance needs and say how to fix "
                                   "what is broken. Exit status 1 if something is broken.")
    p.add_argument("--skip", action="append", default=[], metavar="CHECK",
                   choices=("camera", "audio", "gpio", "models", "database", "permissions",
                            "music"), help="leave out one check (repeatable)")
    p.set_defaults(func=handler)


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:240]


def check_camera(s: Settings) -> Check:
    from rescnn_appliance.vision.frames import CameraError, open_source

    try:
        source = open_source(s.camera)
    except CameraError as exc:
        return ("FAIL", "camera", _one_line(exc),
                ("connect the camera (Pi: 'rpicam-hello --list-cameras'; USB: 'ls /dev/video*'), "
                "add the service user to group 'video', or set camera.source = \"demo\""))
    try:
        frame = source.read()
        what = source.describe() + ("" if frame is None else f", frame {frame.image.shape[1]}x"
                                                                f"{frame.image.shape[0]}")
    finally:
        source.close()
    level = "warn" if source.name == "demo" and s.camera.source == "auto" else "ok"
    return (level, "camera", what, "no camera found: the demo faces stand in; connect a camera"
            if level == "warn" else "")


def check_audio(s: Settings) -> Check:
    try:
        from rescnn_appliance.devices.player import Player

        player = Player(aout=s.player.aout, device=s.player.device, volume=s.player.volume)
        player.close()
    except Exception as exc:  # noqa: BLE001 - ImportError, OSError, RuntimeError from libVLC
        return ("FAIL", "audio", f"libVLC: {_one_line(exc)}",
                ("sudo apt install libvlc5 vlc-plugin-base; add the user to group 'audio'; "
                "check player.aout / player.device ('aplay -l' lists ALSA devices)"))
    out = s.player.aout or "VLC's default output"
    return ("ok", "audio", f"libVLC starts ({out}{', ' + s.player.device if s.player.device else ''})",
            "")


def check_gpio(s: Settings) -> Check:
    if not s.buttons.enabled:
        return ("ok", "gpio", "buttons.enabled = false: buttons and LED not used", "")
    import warnings

    try:
        from rescnn_appliance.devices.buttons import Buttons, StatusLed

        with warnings.catch_warnings():  # gpiozero warns once per pin library it falls back from
            warnings.simplefilter("ignore")
            Buttons.from_settings(s, lambda word: None).close()
            StatusLed.from_settings(s).close()
    except Exception as exc:  # noqa: BLE001 - gpiozero raises many kinds off a Pi
        return ("FAIL", "gpio", f"{type(exc).__name__}: {_one_line(exc)}",
                ("on a Pi: sudo apt install python3-lgpio and add the user to group 'gpio'; "
                "elsewhere set buttons.enabled = false (or run --no-buttons)"))
    b = s.buttons
    return ("ok", "gpio", (f"buttons like={b.like_pin} skip={b.skip_pin} user={b.user_pin}, "
                          f"LED={b.led_pin} (BCM)"), "")


def check_models(s: Settings) -> Check:
    from rescnn_appliance.vision.affect import AffectModel, ModelError

    try:
        AffectModel.load(s.models_dir, s.models.precision, s.models.threads)
    except ModelError as exc:
        return ("FAIL", "models", _one_line(exc),
                ("reinstall the package (the models ship in models/), run 'make models', "
                "or point models.dir at a folder with ecnn.json and va.json"))
    return ("ok", "models", f"{s.models_dir} ({s.models.precision}, sha256 verified)", "")


def check_database(s: Settings) -> Check:
    try:
        from rescnn_appliance.music.library import Library

        lib = Library.open(s.database_path)
        try:
            stats = lib.stats()
        finally:
            lib.close()
    except Exception as exc:  # noqa: BLE001 - MigrationError, DatabaseBusy, OSError
        return ("FAIL", "database", f"{s.database_path}: {_one_line(exc)}",
                ("check that the state folder is writable; a damaged file can be moved aside "
                "(the appliance rebuilds it with a scan, losing likes)"))
    ok = stats["by_status"].get("ok", 0)
    return ("ok", "database", (f"{s.database_path}: {ok} playable tracks, {stats['users']} users, "
                              f"{stats['feedback']} feedback"), "")


def check_permissions(s: Settings) -> Check:
    state = s.state_dir
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return ("FAIL", "permissions", f"{state}: cannot create ({exc.strerror})",
                f"sudo install -d -o $USER {state} (systemd: StateDirectory= does it)")
    if not os.access(state, os.W_OK | os.X_OK):
        return ("FAIL", "permissions", f"{state}: not writable by {_user()}",
                f"sudo chown {_user()} {state}")
    conf = SYSTEM_CONFIG.parent
    if conf.exists() and not os.access(conf, os.R_OK | os.X_OK):
        return ("FAIL", "permissions", f"{conf}: not readable by {_user()}",
                f"sudo chmod o+rx {conf} (or ConfigurationDirectory= in the unit)")
    return ("ok", "permissions", f"state {state} writable" +
            (f", config {conf} readable" if conf.exists() else ""), "")


def check_music(s: Settings) -> Check:
    from rescnn_appliance.demo import has_audio

    usable = [str(f) for f in s.music_folders if has_audio(f)]
    if usable:
        return ("ok", "music", ", ".join(usable), "")
    return ("warn", "music", (f"no audio in {', '.join(str(f) for f in s.music_folders) or '-'}: "
                             "the demo library will play"),
            "put music in a folder and list it in library.folders")


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return str(os.getuid())


CHECKS: dict[str, Callable[[Settings], Check]] = {
    "permissions": check_permissions, "models": check_models, "database": check_database,
    "audio": check_audio, "camera": check_camera, "gpio": check_gpio, "music": check_music,
}


def handler(args: argparse.Namespace, settings: Settings) -> int:
    import logging as _logging

    _logging.getLogger("alembic").setLevel(_logging.WARNING)  # migration chatter
    import logging

    logging.getLogger().setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    print(f"ok    config: {' + '.join(str(Path(p)) for p in settings.sources)}")
    failed = 0
    for name, check in CHECKS.items():
        if name in args.skip:
            continue
        try:
            level, what, detail, fix = check(settings)
        except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check
            level, what, detail, fix = "FAIL", name, _one_line(exc), "see the message"
        print(f"{level:<5} {what}: {detail}", flush=True)
        if fix and level != "ok":
            print(f"      fix: {fix}", flush=True)
        failed += level == "FAIL"
    return 1 if failed else 0
