"""A minimal Type=notify daemon for the nspawn unit test: READY=1, WATCHDOG=1 every second.

It runs under the shipped unit's sandbox and prints what the sandbox let it do, one line each,
so the test can read them back from the container's journal. With ``--probe`` it only prints
those lines and exits (the test's ExecStartPre= in front of the real daemon).
"""

import os
import socket
import sys
import time


def notify(message: str) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    address = "\0" + address[1:] if address.startswith("@") else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


def main() -> None:
    print(f"standin: uid={os.getuid()}", flush=True)
    state = os.environ.get("STATE_DIRECTORY", "")
    with open(os.path.join(state, "probe"), "w") as fh:
        fh.write("ok")
    print(f"standin: state {state} writable", flush=True)
    try:
        with open("/usr/rescnn-probe", "w"):
            pass
        print("standin: /usr writable", flush=True)
    except OSError as exc:
        print(f"standin: /usr refused ({exc.strerror})", flush=True)
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        print("standin: inet socket allowed", flush=True)
    except OSError as exc:
        print(f"standin: inet socket refused ({exc.strerror})", flush=True)
    if "--probe" in sys.argv:
        return
    notify("READY=1\nSTATUS=standin running")
    while True:
        notify("WATCHDOG=1")
        time.sleep(1)


main()
