"""Privacy of the running daemon: no picture of a face is written anywhere, nothing listens.

The real ``rescnn-appliance run`` (demo camera with a face in view, VLC --aout=dummy, the demo
library) runs in a subprocess with its own state folder, HOME and TMPDIR; while it runs, its
sockets (and its children's) are sampled; afterwards every file it could have written is checked
by name and by content for an image or an array dump.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.reliability_support import export_models
from tests.test_appliance_e2e import NotifyListener

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pbm", ".npy", ".npz",
                  ".webp", ".tif", ".tiff"}
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"BM", b"P5\n", b"P6\n", b"\x93NUMPY", b"PK\x03\x04",
               b"RIFF", b"II*\x00", b"MM\x00*")


def _looks_like_an_image(path: Path) -> bool:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return any(head.startswith(magic) for magic in IMAGE_MAGIC)


def _listening(proc: psutil.Process) -> list[str]:
    found = []
    for p in [proc, *proc.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="all")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        # a stream socket in LISTEN (TCP or unix), or an inet datagram socket with an address
        found += [f"pid {p.pid}: {c.family.name} {c.laddr} {c.status}" for c in conns
                  if c.status == psutil.CONN_LISTEN
                  or (c.family in (socket.AF_INET, socket.AF_INET6)
                      and c.type == socket.SOCK_DGRAM and c.laddr)]
    return found


def test_the_running_daemon_writes_no_image_and_opens_no_listening_socket(
        tmp_path: Path) -> None:
    models = export_models(tmp_path / "models")
    state, home, tmp = tmp_path / "state", tmp_path / "home", tmp_path / "tmpdir"
    for folder in (state, home, tmp):
        folder.mkdir()
    listener = NotifyListener(tmp_path / "notify")
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp), "NOTIFY_SOCKET":
           str(tmp_path / "notify"), "XDG_STATE_HOME": str(home / ".local" / "state"),
           "XDG_CACHE_HOME": str(home / ".cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rescnn_appliance", "--set", f'models.dir="{models}"',
         "--set", f'service.state_dir="{state}"', "--set", 'privacy.store_readings="full"',
         "run", "--duration", "12", "--source", "demo", "--aout", "dummy", "--no-buttons"],
        env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples, listening = 0, []
    try:
        listener.wait_for("READY=1", 180)
        daemon = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                listening += _listening(daemon)
            except psutil.NoSuchProcess:
                break
            samples += 1
            time.sleep(0.2)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        listener.close()
    assert proc.returncode == 0, err[-2000:]
    assert "playing " in err and samples >= 20, err[-2000:]
    assert any(line.startswith("STATUS=") and "mood=" in line for line in listener.lines)
    assert listening == []
    images = [p for root in (state, home, tmp) for p in root.rglob("*")
              if p.is_file() and _looks_like_an_image(p)]
    assert images == []
    written = sorted(str(p.relative_to(tmp_path)) for root in (state, home, tmp)
                     for p in root.rglob("*") if p.is_file())
    assert any(name.endswith("library.sqlite") for name in written), written
    print(f"{samples} socket samples, none listening; {len(written)} files written, no image")


@pytest.mark.parametrize("name", ["face.PNG", "x.npy", "plain.bin"])
def test_the_image_check_finds_images_by_name_or_content(tmp_path: Path, name: str) -> None:
    import cv2
    import numpy as np

    path = tmp_path / name
    _ok, png = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    path.write_bytes(png.tobytes())  # a PNG, whatever the name says
    assert _looks_like_an_image(path)
    (tmp_path / "notes.txt").write_text("no picture here")
    assert not _looks_like_an_image(tmp_path / "notes.txt")


def test_the_socket_check_finds_a_listening_socket() -> None:
    me = psutil.Process()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        assert _listening(me) == []
        server.listen()
        assert len(_listening(me)) == 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        assert len(_listening(me)) == 1
