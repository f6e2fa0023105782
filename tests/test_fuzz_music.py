"""Fuzz tags of scanned files and the VA CSV import: bad values are recorded, nothing stops.

A tag that is not a number in [-1, 1] is noted against its file and the audio estimate is used;
a bad CSV row is one ``FILE:LINE: ...`` message and the good rows are still imported.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mutagen.flac import FLAC

from rescnn_appliance.music.library import Library
from rescnn_appliance.music.scan import analyse_file
from rescnn_appliance.music.va_import import VAImportError, import_csv
from tests.fuzz_count import FuzzCount, fuzz_settings
from tests.music_clips import tone

COUNT = FuzzCount()
_report_count = COUNT.reporter("music")


@pytest.fixture(scope="module")
def flac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tone(tmp_path_factory.mktemp("clip") / "clip.flac", 1.0, fmt="FLAC")


tag_text = st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr),
                     st.sampled_from(["0.5", "-1", "1.0000001", "nan", "inf", "1e308", " 0.2 ",
                                      "0,5", "", "\x00"]))


@fuzz_settings(20)
@given(valence=tag_text, arousal=tag_text, title=tag_text, artist=tag_text)
def test_random_tag_values(tmp_path: Path, flac: Path, valence: str, arousal: str, title: str,
                           artist: str) -> None:
    COUNT.add("tags")
    path = tmp_path / "song.flac"
    shutil.copy(flac, path)
    tags = FLAC(str(path))
    tags["VALENCE"], tags["AROUSAL"], tags["TITLE"], tags["ARTIST"] = valence, arousal, title, artist
    tags.save()
    res = analyse_file((str(path), path.stat().st_size, path.stat().st_mtime))
    assert res.error is None, res.error            # the audio is fine: the file is usable
    assert res.va_source in ("tags", "audio")
    assert -1.0 <= res.valence <= 1.0 and -1.0 <= res.arousal <= 1.0
    if res.va_source == "tags":
        assert res.valence == float(valence) and res.arousal == float(arousal)
    else:
        both_unit = all(_unit(x) for x in (valence, arousal))
        assert not both_unit
        if _number(valence) or _number(arousal) or valence.strip() or arousal.strip():
            assert res.note and "VALENCE" in res.note   # says which tags were ignored


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _unit(text: str) -> bool:
    return _number(text) and -1.0 <= float(text) <= 1.0


@fuzz_settings(4)
@given(values=st.lists(st.tuples(tag_text, tag_text), min_size=2, max_size=4),
       garbage=st.binary(min_size=1, max_size=200))
def test_scan_goes_on_past_bad_tags_and_files(tmp_path: Path, flac: Path, values: list,
                                              garbage: bytes) -> None:
    COUNT.add("scan")
    music = tmp_path / "music"
    shutil.rmtree(music, ignore_errors=True)
    music.mkdir()
    for i, (v, a) in enumerate(values):
        shutil.copy(flac, music / f"{i}.flac")
        tags = FLAC(str(music / f"{i}.flac"))
        tags["VALENCE"], tags["AROUSAL"] = v, a
        tags.save()
    (music / "garbage.mp3").write_bytes(garbage)
    lib = Library.open(tmp_path / "lib.sqlite")
    try:
        report = lib.scan([music], progress=False, workers=1)
        ok = {Path(t.path).name for t in lib.tracks("ok")}
    finally:
        lib.close()
    assert ok >= {f"{i}.flac" for i in range(len(values))}
    assert "garbage.mp3" in ok or any(p.endswith("garbage.mp3") for p, _ in report.errors)


cell = st.one_of(st.floats(-1.5, 1.5).map(lambda x: f"{x:.3f}"), st.text(max_size=12),
                 st.sampled_from(["nan", "inf", "", "0.5", "-0.5", "1", "~nobody/x.flac",
                                  '"', "a\nb", "\x00"]))
header = st.lists(st.sampled_from(["path", "artist", "title", "track_name", "valence", "arousal",
                                   "energy", "Valence", "x", ""]), min_size=0, max_size=5)


@fuzz_settings(40)
@given(columns=header, rows=st.lists(st.lists(cell, max_size=6), max_size=8))
def test_random_csv(tmp_path: Path, columns: list, rows: list) -> None:
    COUNT.add("csv random")
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    path = tmp_path / "va.csv"
    path.write_text(buf.getvalue())
    lib = Library.open(tmp_path / "lib.sqlite")
    try:
        report = import_csv(lib, path)
    except VAImportError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{path}:")
        return
    finally:
        lib.close()
    assert report.imported + len(report.errors) <= len(rows)
    for message in report.errors:
        assert message.startswith(f"{path}:") and "\n" not in message.replace("\\n", ""), message


good_row = st.tuples(st.text("abcxyz/", min_size=1, max_size=10),
                     st.floats(-1, 1), st.floats(-1, 1)).map(
    lambda r: ("good", [f"/music/{r[0]}.flac", repr(r[1]), repr(r[2])]))
bad_row = st.one_of(
    st.tuples(st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not -1 <= x <= 1),
              st.floats(-1, 1)).map(lambda r: ("bad", ["/m/a.flac", repr(r[0]), repr(r[1])])),
    st.text(max_size=8).filter(lambda t: not _number(t) and not set(t) & set("\r\n")).map(lambda t: ("bad", ["/m/b.flac", t, "0"])),
    st.just(("bad", ["", "0.1", "0.1"])),
    st.just(("bad", ["/m/c.flac", "0.1"])))


@fuzz_settings(30)
@given(rows=st.lists(st.one_of(good_row, bad_row), max_size=10))
def test_csv_good_rows_kept_bad_rows_named(tmp_path: Path, rows: list) -> None:
    """Every good row imported, every bad row one message naming FILE:LINE."""
    COUNT.add("csv rows")
    path = tmp_path / "va.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "valence", "arousal"])
        writer.writerows(r for _, r in rows)
    lib = Library.open(tmp_path / "lib.sqlite")
    try:
        report = import_csv(lib, path)
    finally:
        lib.close()
    bad_lines = [i + 2 for i, (kind, _) in enumerate(rows) if kind == "bad"]
    assert report.imported == len(rows) - len(bad_lines)
    assert [int(m.split(":")[1]) for m in report.errors] == bad_lines
    assert all(m.startswith(f"{path}:") for m in report.errors)


def test_known_bug_csv_path_with_unknown_home_is_a_row_error(tmp_path: Path) -> None:
    """``~nobody/x.flac`` in the path column: Path.expanduser() raises RuntimeError and the
    whole import stops (va_import.py), instead of one FILE:LINE message for that row."""
    COUNT.add("csv rows")
    path = tmp_path / "va.csv"
    path.write_text("path,valence,arousal\n~no_such_user_here/x.flac,0.1,0.2\n/m/ok.flac,0.3,0.4\n")
    lib = Library.open(tmp_path / "lib.sqlite")
    try:
        report = import_csv(lib, path)
    finally:
        lib.close()
    assert report.imported == 1
    assert len(report.errors) == 1 and report.errors[0].startswith(f"{path}:2: ")


