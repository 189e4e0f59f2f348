"""Serve the ASGI app (HTTP + WebSocket) with several Daphne processes on one port, a listening socket each (``daphne --fd``).

Django runs sync views on one thread per process, so one Daphne process uses about one core at
most; several processes on one port (SO_REUSEPORT) let the kernel spread connections over the cores.

    .venv/bin/python scripts/serve.py --host 127.0.0.1 --port 8000 --workers 2

`make run` (Procfile `web`) serves this way; WEB_WORKERS sets the number of processes (default: cores).

Stops every process it started on SIGINT/SIGTERM, and all of them if one dies.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def port_taken(host: str, port: int) -> bool:
    """Whether something already accepts connections on the port.

    SO_REUSEPORT lets a second server bind the same port beside a leftover one (same user), and the
    kernel would then split connections between old and new code without a word; so look first.
    """
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def listener_open(host: str, port: int) -> socket.socket:
    """One listening socket per process, all on the same port (SO_REUSEPORT).

    With a single shared socket, whichever process happens to be in accept() takes the next
    connection, and clients that keep their connections open (storefronts, dashboards) ended up
    mostly on one process while the other idled. With one socket each, the kernel spreads new
    connections evenly over the processes.
    """
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(1024)
    listener.set_inheritable(True)
    return listener


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", os.cpu_count() or 1)))
    parser.add_argument("--app", default=os.environ.get("WEB_APP", "config.asgi:application"))
    args = parser.parse_args()

    if port_taken(args.host, args.port):
        print(f"serve.py: something already listens on {args.host}:{args.port}; stop it or pick another PORT",
              file=sys.stderr)
        return 1
    listeners = [listener_open(args.host, args.port) for _ in range(args.workers)]
    daphne = str(ROOT / ".venv" / "bin" / "daphne")
    children = [
        subprocess.Popen([daphne, "-v", "0", "--fd", str(listener.fileno()), "--proxy-headers", args.app],
                         pass_fds=(listener.fileno(),), cwd=ROOT)
        for listener in listeners
    ]

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while not stopping:
        dead = [c for c in children if c.poll() is not None]
        if dead:
            code = dead[0].returncode or 1
            break
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
    for listener in listeners:
        listener.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
