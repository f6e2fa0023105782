"""``rescnn-appliance users`` and ``library`` on a real database and real audio files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mutagen.flac import FLAC

from rescnn_appliance.cli import main
from tests.music_clips import tone


def _run(tmp_path: Path, *argv: str) -> int:
    return main(["--set", f"library.database=\"{tmp_path / 'lib.sqlite'}\"",
                 "--set", f"library.folders=[\"{tmp_path / 'configured'}\"]", *argv])


def test_users_add_list_select_remove(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run(tmp_path, "users", "add", "ana") == 0
    assert _run(tmp_path, "users", "add", "ben") == 0
    assert _run(tmp_path, "users", "add", "ana") == 1
    assert "already exists" in capsys.readouterr().err
    assert _run(tmp_path, "users", "select", "ben") == 0
    capsys.readouterr()
    assert _run(tmp_path, "users", "list") == 0
    assert capsys.readouterr().out.splitlines() == ["  ana", "* ben"]
    assert _run(tmp_path, "users", "remove", "ben") == 0
    assert _run(tmp_path, "users", "select", "zoe") == 1
    assert "no user named 'zoe'" in capsys.readouterr().err


def test_library_scan_list_show_stats_and_import(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "configured").mkdir()
    tone(tmp_path / "configured" / "one.wav", 2.0)
    extra = tmp_path / "usb"
    extra.mkdir()
    tone(extra / "two.flac", 2.0, freq=300.0, fmt="FLAC")
    tagged = FLAC(extra / "two.flac")
    tagged["genre"] = "Jazz"
    tagged.save()
    (extra / "broken.mp3").write_bytes(b"\xff\xfb" + b"\x00" * 50)
    assert _run(tmp_path, "library", "scan", "--no-progress", "--workers", "1", str(extra)) == 0
    out = capsys.readouterr()
    assert "3 audio files: 2 analysed (audio 2)" in out.out
    assert "broken.mp3" in out.err
    assert _run(tmp_path, "library", "scan", "--no-progress", "--workers", "1") == 0
    assert "2 unchanged" in capsys.readouterr().out  # the extra folder was remembered
    assert _run(tmp_path, "library", "list", "--json") == 0
    tracks = json.loads(capsys.readouterr().out)
    ok = [t for t in tracks if t["status"] == "ok"]
    assert {Path(t["path"]).name for t in ok} == {"one.wav", "two.flac"}
    assert all(t["va_source"] == "audio" and t["mood"] and -1 <= t["valence"] <= 1 for t in ok)
    assert {Path(t["path"]).name: t["genre"] for t in ok} == {"one.wav": "", "two.flac": "Jazz"}
    assert _run(tmp_path, "library", "show", "two") == 0
    shown = capsys.readouterr().out
    assert "two.flac" in shown and "genre: Jazz" in shown
    bad = tmp_path / "va.csv"
    bad.write_text(f"path,valence,arousal\n{extra / 'two.flac'},0.9,0.9\n,0.1,0.1\n")
    assert _run(tmp_path, "library", "import-va", str(bad)) == 1
    out = capsys.readouterr()
    assert f"{bad}:3: no path and no artist/title" in out.err
    assert _run(tmp_path, "library", "stats") == 0
    stats = capsys.readouterr().out
    assert "by VA source: audio 1  csv 1" in stats and "broken.mp3" in stats
