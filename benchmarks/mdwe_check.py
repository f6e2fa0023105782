"""Does the appliance's stack run under W^X (systemd's MemoryDenyWriteExecute=yes)?

Linux 6.3+ offers the same rule per process as ``prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)``.
Each check runs in a child process with and without it: a ctypes callback (how python-vlc
delivers events), a VLC error event, and a TorchScript convolution with oneDNN on and off.

Run: ``.venv/bin/python benchmarks/mdwe_check.py`` (about 20 s).
"""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import ctypes, sys, threading
if sys.argv[1] == "wx":
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:   # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        print("prctl(PR_SET_MDWE) unsupported by this kernel"); sys.exit(2)
check = sys.argv[2]
if check == "ctypes-callback":
    assert ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)(41) == 42
elif check == "vlc-event":
    import vlc
    inst = vlc.Instance(["--aout=dummy", "--quiet"]); mp = inst.media_player_new()
    done = threading.Event()
    mp.event_manager().event_attach(vlc.EventType.MediaPlayerEncounteredError,
                                    lambda e: done.set())
    mp.set_media(inst.media_new_path("/nonexistent.wav")); mp.play()
    assert done.wait(5)
else:
    import torch
    torch.backends.mkldnn.enabled = check == "torch-onednn"
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3), torch.nn.ReLU(), torch.nn.Conv2d(16, 8, 3))
    x = torch.randn(1, 1, 48, 48)
    with torch.no_grad():
        torch.jit.freeze(torch.jit.trace(net.eval(), x))(x)
print("ok")
"""


def main() -> int:
    print("| check | normal | under W^X |\n|---|---|---|")
    for check in ("ctypes-callback", "vlc-event", "torch-onednn", "torch-without-onednn"):
        cells = []
        for mode in ("normal", "wx"):
            try:
                done = subprocess.run([sys.executable, "-c", CHILD, mode, check],
                                      check=False, capture_output=True, text=True, timeout=600)
            except subprocess.TimeoutExpired:
                cells.append("timed out (machine busy?)")
                continue
            last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["?"]
            cells.append("ok" if done.returncode == 0 else f"fails: {last[0][:70]}")
        print(f"| {check} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
