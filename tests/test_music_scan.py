"""Library scan on real files: tags, imported CSV, audio estimate, bad files, resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mutagen.flac import FLAC

from rescnn_appliance.music.db import downgrade
from rescnn_appliance.music.library import Library
from rescnn_appliance.music.tags import read_tags
from tests.music_clips import RATE, energetic_major, sad_minor, tone


def _flac_with_va(path: Path, valence: str, arousal: str, artist: str, title: str) -> Path:
    tone(path, 2.0, fmt="FLAC")
    tags = FLAC(str(path))
    tags["VALENCE"], tags["AROUSAL"] = valence, arousal
    tags["ARTIST"], tags["TITLE"] = artist, title
    tags.save()
    return path


@pytest.fixture
def music(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    (root / "sub").mkdir(parents=True)
    energetic_major(root / "fast_major.wav")
    sad_minor(root / "sub" / "slow_minor.wav")
    _flac_with_va(root / "tagged.flac", "0.5", "-0.25", "Ana Band", "Tagged Song")
    _flac_with_va(root / "odd_tags.flac", "very happy", "0.1", "Ana Band", "Odd")
    (root / "empty.mp3").write_bytes(b"")
    (root / "notes.ogg").write_text("this is a shopping list, not audio\n" * 50)
    (root / "corrupt.flac").write_bytes(b"fLaC\x00\x00\x00\x22" + os.urandom(3000))
    (root / "readme.txt").write_text("ignored: not an audio extension")
    os.symlink(root, root / "sub" / "loop")          # a folder loop
    os.symlink(root / "self.mp3", root / "self.mp3")  # a file that points at itself
    return root


def test_scan_gives_every_good_file_va_and_records_each_bad_one(music: Path, tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib.sqlite")
    report = lib.scan([music], progress=False, workers=1)
    ok = {Path(t.path).name: t for t in lib.tracks("ok")}
    assert set(ok) == {"fast_major.wav", "slow_minor.wav", "tagged.flac", "odd_tags.flac"}
    tagged = ok["tagged.flac"]
    assert (tagged.valence, tagged.arousal, tagged.va_source) == (0.5, -0.25, "tags")
    assert (tagged.artist, tagged.title) == ("Ana Band", "Tagged Song")
    assert ok["odd_tags.flac"].va_source == "audio" and "VALENCE" in ok["odd_tags.flac"].error
    assert all(t.mood in ("happy", "energetic", "calm", "sad") for t in ok.values())
    errors = {Path(p).name: e for p, e in report.errors}
    assert errors["empty.mp3"] == "empty file (0 bytes)"
    assert "decode" in errors["notes.ogg"] and "decode" in errors["corrupt.flac"]
    assert "symlink loop" in errors["self.mp3"] and "symlink loop" in errors["loop"]
    bad = {Path(p).name for p, _ in lib.stats()["errors"]}
    assert bad == {"empty.mp3", "notes.ogg", "corrupt.flac", "self.mp3"}


def test_fast_loud_major_and_slow_quiet_minor_land_in_opposite_quadrants(
        music: Path, tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib.sqlite")
    lib.scan([music], progress=False, workers=1)
    fast = lib.track("fast_major")
    slow = lib.track("slow_minor")
    assert fast.va_source == slow.va_source == "audio"
    assert fast.valence > 0 and fast.arousal > 0, (fast.valence, fast.arousal)
    assert slow.valence < 0 and slow.arousal < 0, (slow.valence, slow.arousal)


def test_rescan_is_incremental_and_marks_removed_files_missing(music: Path, tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib.sqlite")
    lib.scan([music], progress=False, workers=1)
    lib.add_user("ana")
    gone = lib.track("tagged.flac")
    lib.record_feedback("ana", gone.id, "like")
    again = lib.scan([music], progress=False, workers=1)
    assert again.analysed == 0 and again.unchanged == 4
    (music / "tagged.flac").unlink()
    tone(music / "sub" / "slow_minor.wav", 1.5, freq=300.0)  # changed size and mtime
    third = lib.scan([music], progress=False, workers=1)
    assert third.analysed == 1 and third.missing == 1
    assert lib.track(gone.id).status == "missing"
    assert lib.stats()["feedback"] == 1  # history kept
    _flac_with_va(music / "tagged.flac", "0.5", "-0.25", "Ana Band", "Tagged Song")
    lib.scan([music], progress=False, workers=1)
    assert lib.track(gone.id).status == "ok"


def test_genre_tags_are_read_from_vorbis_and_id3(tmp_path: Path) -> None:
    import soundfile as sf
    from mutagen.id3 import ID3, TCON

    flac = _flac_with_va(tmp_path / "a.flac", "0.1", "0.1", "Ana Band", "A")
    tags = FLAC(str(flac))
    tags["GENRE"] = ["Jazz", "Swing"]
    tags.save()
    mp3 = tmp_path / "b.mp3"
    sf.write(str(mp3), np.zeros(RATE, np.float32), RATE, format="MP3")
    id3 = ID3()
    id3.add(TCON(encoding=3, text=["(17)"]))  # an ID3v1 genre number: Rock
    id3.save(str(mp3))
    assert read_tags(flac).genre == "Jazz; Swing"
    assert read_tags(mp3).genre == "Rock"


def test_a_library_from_before_genres_gets_them_on_the_next_scan_without_reanalysis(
        tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    tagged = _flac_with_va(music / "tagged.flac", "0.5", "-0.25", "Ana Band", "Tagged Song")
    tags = FLAC(str(tagged))
    tags["GENRE"] = "Bossa Nova"
    tags.save()
    energetic_major(music / "untagged.wav")
    path = tmp_path / "lib.sqlite"
    lib = Library.open(path)
    lib.scan([music], progress=False, workers=1)
    assert {Path(t.path).name: t.genre for t in lib.tracks("ok")} == {
        "tagged.flac": "Bossa Nova", "untagged.wav": ""}
    downgrade(lib.engine, "0001")  # as if scanned by the version before genres
    lib.close()
    lib = Library.open(path)
    assert {t.genre for t in lib.tracks("ok")} == {None}
    report = lib.scan([music], progress=False, workers=1)
    assert (report.unchanged, report.analysed) == (2, 0)
    assert {Path(t.path).name: t.genre for t in lib.tracks("ok")} == {
        "tagged.flac": "Bossa Nova", "untagged.wav": ""}


def test_imported_csv_beats_audio_and_a_bad_row_names_its_line(music: Path, tmp_path: Path) -> None:
    lib = Library.open(tmp_path / "lib.sqlite")
    csv_path = tmp_path / "export.csv"
    csv_path.write_text(
        "path,valence,arousal\n"
        f"{music / 'fast_major.wav'},-0.7,0.6\n"
        f"{music / 'tagged.flac'},-0.9,-0.9\n"
        f"{music / 'nothing.wav'},lots,0.1\n"
        f"{music / 'nothing.wav'},0.2,1.5\n")
    report = lib.import_va(csv_path)
    assert report.imported == 2
    assert report.errors == [f"{csv_path}:4: valence 'lots' is not a number",
                             f"{csv_path}:5: arousal 1.5 is outside -1..1"]
    lib.scan([music], progress=False, workers=1)
    fast = lib.track("fast_major")
    assert (fast.valence, fast.arousal, fast.va_source) == (-0.7, 0.6, "csv")
    assert lib.track("tagged.flac").va_source == "tags"  # tags win over the CSV
    spotify = tmp_path / "spotify.csv"
    spotify.write_text("Artist Name(s),Track Name,Valence,Energy\nAna Band,Odd,0.9,0.1\n")
    assert lib.import_va(spotify).imported == 1
    odd = lib.track("odd_tags")
    assert odd.va_source == "csv" and odd.valence == pytest.approx(0.8)
    assert odd.arousal == pytest.approx(-0.8)


SCANNER = """
import sys
from rescnn_appliance.music.library import Library
Library.open(sys.argv[1]).scan([sys.argv[2]], progress=False, workers=1)
"""


def test_a_scan_killed_half_way_leaves_a_consistent_db_and_the_next_resumes(tmp_path: Path) -> None:
    music = tmp_path / "many"
    music.mkdir()
    n = 120
    for i in range(n):
        tone(music / f"t{i:03d}.wav", 1.0, freq=200.0 + 5 * i)
    db = tmp_path / "lib.sqlite"
    Library.open(db).close()
    proc = subprocess.Popen([sys.executable, "-c", SCANNER, str(db), str(music)])
    done = 0
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        con = sqlite3.connect(db, timeout=5)
        done = con.execute("select count(*) from tracks").fetchone()[0]
        con.close()
        if done:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < done < n, "the scan should have been killed part way"
    con = sqlite3.connect(db)
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    committed = con.execute("select count(*) from tracks where status='ok'").fetchone()[0]
    con.close()
    lib = Library.open(db)
    report = lib.scan([music], progress=False, workers=1)
    assert report.unchanged == committed and report.analysed == n - committed
    assert len(lib.tracks("ok")) == n
