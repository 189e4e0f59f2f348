"""Serve the ASGI app (HTTP + WebSocket) with several Daphne processes sharing one listening socket (``daphne --fd``).

Django runs sync views on one thread per process, so one Daphne process uses about one core at
most; several processes on one socket let the kernel spread connections over the cores.

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", os.cpu_count() or 1)))
    parser.add_argument("--app", default=os.environ.get("WEB_APP", "config.asgi:application"))
    args = parser.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(1024)
    listener.set_inheritable(True)
    fd = listener.fileno()
    daphne = str(ROOT / ".venv" / "bin" / "daphne")
    command = [daphne, "-v", "0", "--fd", str(fd), "--proxy-headers", args.app]
    children = [subprocess.Popen(command, pass_fds=(fd,), cwd=ROOT) for _ in range(args.workers)]

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
    listener.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
