"""The library scan in a child process: same database result, none of its libraries in the
caller's memory, one clear line when it fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mutagen.flac import FLAC

from tests.music_clips import tone

REPO = Path(__file__).resolve().parent.parent


def _tagged(path: Path, title: str) -> None:
    tone(path, 2.0, fmt="FLAC")
    tags = FLAC(str(path))
    tags["VALENCE"], tags["AROUSAL"], tags["TITLE"] = "0.5", "-0.2", title
    tags.save()


def test_a_scan_job_fills_the_library_and_leaves_the_caller_small(tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    _tagged(music / "one.flac", "one")
    _tagged(music / "two.flac", "two")
    (music / "broken.flac").write_bytes(b"fLaC not really")
    db = tmp_path / "lib.sqlite"
    caller = (
        "import json, sys\n"
        "from rescnn_appliance.music.library import Library\n"
        "from rescnn_appliance.music.scan_job import ScanJob\n"
        "lib = Library.open(sys.argv[1]); before = lib.tracks_revision\n"
        "ok, message = ScanJob.start(sys.argv[1], [sys.argv[2]]).wait(120)\n"
        "heavy = sorted(m for m in ('sklearn', 'scipy', 'mutagen', 'soundfile') if m in sys.modules)\n"
        "print(json.dumps([ok, message, heavy, lib.tracks_revision > before,\n"
        "                  sorted(t.title for t in lib.tracks('ok'))]))\n")
    out = subprocess.run([sys.executable, "-c", caller, str(db), str(music)], cwd=REPO,
                         capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    ok, message, heavy, revision_moved, titles = json.loads(out.stdout.splitlines()[-1])
    assert ok and message == "2 analysed, 0 unchanged, 1 errors"
    assert heavy == []  # K-means, SciPy and the tag/audio readers stayed in the child
    assert revision_moved and titles == ["one", "two"]


def test_a_failing_scan_job_is_one_line_naming_the_file(tmp_path: Path) -> None:
    from rescnn_appliance.music.scan_job import ScanJob

    bad = tmp_path / "lib.sqlite"
    bad.write_bytes(b"not a database at all" * 200)
    ok, message = ScanJob.start(bad, [tmp_path]).wait(120)
    assert not ok and str(bad) in message and "\n" not in message
    assert "not a usable SQLite database" in message


def test_the_command_line_prints_its_report_as_json(tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    _tagged(music / "one.flac", "one")
    out = subprocess.run([sys.executable, "-m", "rescnn_appliance.music.scan_job",
                          str(tmp_path / "lib.sqlite"), str(music)], cwd=REPO,
                         capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.splitlines()[-1])
    assert report["analysed"] == 1 and report["errors"] == 0
