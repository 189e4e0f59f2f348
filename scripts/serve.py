"""Serve the ASGI app (HTTP + WebSocket) with several Daphne processes on one port, a listening socket each (``daphne --fd``).

Django runs sync views on one thread per process, so one Daphne process uses about one core at
most; several processes on one port (SO_REUSEPORT) let the kernel spread connections over the cores.

    .venv/bin/python scripts/serve.py --host 127.0.0.1 --port 8000 --workers 2

`make run` (Procfile `web`) serves this way; WEB_WORKERS sets the number of processes (default: cores),
WEB_EVENT_LOOP (or --loop) their event loop: uvloop (default) or asyncio.

The processes share one Prometheus multiprocess directory (PROMETHEUS_MULTIPROC_DIR, or a temporary one
made here) so that /metrics, whichever process answers, reports the counters of all of them.

Stops every process it started on SIGINT/SIGTERM, and all of them if one dies.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import multiprocess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.daphne_main import EVENT_LOOPS  # noqa: E402


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


def metrics_dir_prepare() -> tuple[Path, bool]:
    """The Prometheus multiprocess directory for the children, emptied, and whether it was made here.

    Each child writes its counters to files of its own (named by pid) in this directory and /metrics sums
    them all. Files left by an earlier run would be counted as if these processes had served them (and
    could share a reused pid), so they go first. A configured directory belongs to the operator: only
    its metric files are removed, never the directory.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not configured:
        return Path(tempfile.mkdtemp(prefix="stockpulse-metrics-")), True
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path, False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", os.cpu_count() or 1)))
    parser.add_argument("--app", default=os.environ.get("WEB_APP", "config.asgi:application"))
    parser.add_argument("--loop", choices=EVENT_LOOPS, default=os.environ.get("WEB_EVENT_LOOP", "uvloop"),
                        help="the event loop of the Daphne processes (core/daphne_main.py)")
    args = parser.parse_args()

    if port_taken(args.host, args.port):
        print(f"serve.py: something already listens on {args.host}:{args.port}; stop it or pick another PORT",
              file=sys.stderr)
        return 1
    metrics_dir, metrics_dir_ours = metrics_dir_prepare()
    try:
        return serve(args, metrics_dir)
    finally:
        if metrics_dir_ours:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def serve(args: argparse.Namespace, metrics_dir: Path) -> int:
    """Run the Daphne children until a signal or the first death, then stop them all."""
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    # Before the children start, so a signal in between still stops them and lets main() clean up.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    listeners = [listener_open(args.host, args.port) for _ in range(args.workers)]
    # Through the environment, so it is set before the children import prometheus_client, which picks
    # its value storage (per-process files or memory) once, at import.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "WEB_EVENT_LOOP": args.loop}
    # No --proxy-headers: Daphne would take the client's address from the first X-Forwarded-For entry,
    # which the client writes itself, and every per-address limit could be dodged with a made-up header.
    # The app reads that header behind TRUSTED_PROXY_COUNT proxies only (core/security.py).
    children = [
        subprocess.Popen([sys.executable, "-m", "core.daphne_main", "-v", "0", "--fd", str(listener.fileno()),
                          args.app],
                         pass_fds=(listener.fileno(),), cwd=ROOT, env=env)
        for listener in listeners
    ]
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
            child.wait()
        # Drops the dead process's live-gauge files; its counters stay, so totals do not go backwards.
        multiprocess.mark_process_dead(child.pid, str(metrics_dir))
    for listener in listeners:
        listener.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
