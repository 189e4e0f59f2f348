"""Serve the ASGI app (HTTP + WebSocket) with several Daphne processes on one port, a listening socket each (``daphne --fd``).

Django runs sync views on one thread per process, so one Daphne process uses about one core at
most; several processes on one port (SO_REUSEPORT) let the kernel spread connections over the cores.

    .venv/bin/python scripts/serve.py --host 127.0.0.1 --port 8000 --workers 2

`make run` (Procfile `web`) serves this way; WEB_WORKERS sets the number of processes (default: cores),
WEB_EVENT_LOOP (or --loop) their event loop: uvloop (default) or asyncio.

The processes share one Prometheus multiprocess directory (PROMETHEUS_MULTIPROC_DIR, or a temporary one
made here) so that /metrics, whichever process answers, reports the counters of all of them.

A process that dies (a crash, kill -9, out of memory) is replaced at once on its own listening
socket, which this script keeps open: connections the kernel queued there meanwhile are served by the
new process, so only the requests in flight on the dead one fail, and the others keep serving. The
replacement is a spare (--spare, WEB_SPARE, on by default): one more process that has already loaded
the application and waits, listening on nothing, until it is handed the dead process's socket, so the
queued connections wait a fraction of a second. A process started only then needs the whole load first,
about 1 s of CPU, which took 1.7-7.7 s on two busy cores (make bench-outage): that is what happens
without a spare, or when two die before the next spare has loaded. Another spare is started at once.
A process that keeps dying within seconds of its start is restarted after a growing pause, and after
MAX_QUICK_DEATHS such deaths in a row everything stops (a broken release, not a crash).
Stops every process it started on SIGINT/SIGTERM; they also die if this script is killed.
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
from scripts.keep_running import QUICK_DEATH_SECONDS, backoff_after, die_with_parent  # noqa: E402

MAX_QUICK_DEATHS = 5


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
    parser.add_argument("--spare", action=argparse.BooleanOptionalAction,
                        default=os.environ.get("WEB_SPARE", "1").lower() not in ("0", "false", "no", "off"),
                        help="keep a loaded Daphne process ready to take over from one that dies (default: on)")
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


def child_start(args: argparse.Namespace, listener: socket.socket, env: dict[str, str]) -> subprocess.Popen:
    # No --proxy-headers: Daphne would take the client's address from the first X-Forwarded-For entry,
    # which the client writes itself, and every per-address limit could be dodged with a made-up header.
    # The app reads that header behind TRUSTED_PROXY_COUNT proxies only (core/security.py).
    return subprocess.Popen([sys.executable, "-m", "core.daphne_main", "-v", "0", "--fd", str(listener.fileno()),
                             args.app],
                            pass_fds=(listener.fileno(),), cwd=ROOT, env=env, preexec_fn=die_with_parent)


class Spare:
    """A Daphne process that loads the application and then waits for a listening socket (core/daphne_main.py)."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str]) -> None:
        ours, theirs = socket.socketpair()
        self.channel = ours
        self.started = time.monotonic()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "core.daphne_main", "-v", "0", args.app], pass_fds=(theirs.fileno(),),
                cwd=ROOT, env={**env, "WEB_SPARE_CHANNEL_FD": str(theirs.fileno())}, preexec_fn=die_with_parent)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()

    def take(self, listener: socket.socket) -> subprocess.Popen | None:
        """Hand it the listening socket to serve; the process, or None if it has died. Handed over while it
        still loads, the socket waits in the channel until it is ready, the same wait as a new process's."""
        if self.process.poll() is not None:
            return None
        try:
            socket.send_fds(self.channel, [b"L"], [listener.fileno()])
        except OSError:  # it died just now
            return None
        finally:
            self.channel.close()
        return self.process

    def stop(self) -> None:
        self.channel.close()  # a spare still waiting sees the channel close and exits
        if self.process.poll() is None:
            self.process.terminate()


def serve(args: argparse.Namespace, metrics_dir: Path) -> int:
    """Run the Daphne children (and a spare) until a signal, replacing each one that dies; then stop them all."""
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
    children = [child_start(args, listener, env) for listener in listeners]
    started = [time.monotonic()] * len(children)
    quick_deaths = [0] * len(children)
    due: dict[int, float] = {}  # index of a dead child -> when to start it again
    spare: Spare | None = None
    spare_due = time.monotonic() if args.spare else None  # when to start a spare; None while one runs
    spare_quick_deaths = 0
    code = 0
    while not stopping:
        now = time.monotonic()
        for index, child in enumerate(children):
            if index in due or child.poll() is None:
                continue
            multiprocess.mark_process_dead(child.pid, str(metrics_dir))
            quick_deaths[index] = quick_deaths[index] + 1 if now - started[index] < QUICK_DEATH_SECONDS else 1
            if quick_deaths[index] >= MAX_QUICK_DEATHS:
                print(f"serve.py: a Daphne process died {MAX_QUICK_DEATHS} times within seconds of its start; "
                      "stopping", file=sys.stderr, flush=True)
                code, stopping = child.returncode or 1, True
                break
            due[index] = now + backoff_after(quick_deaths[index])
            print(f"serve.py: Daphne process {child.pid} exited with {child.returncode}; starting another",
                  file=sys.stderr, flush=True)
        if spare is not None and spare.process.poll() is not None:
            # Died while waiting (it never served): started again, after a pause if it keeps dying at start.
            multiprocess.mark_process_dead(spare.process.pid, str(metrics_dir))
            spare_quick_deaths = spare_quick_deaths + 1 if now - spare.started < QUICK_DEATH_SECONDS else 1
            print(f"serve.py: the spare Daphne process {spare.process.pid} exited with {spare.process.returncode}",
                  file=sys.stderr, flush=True)
            spare.stop()
            spare, spare_due = None, now + backoff_after(spare_quick_deaths)
        for index, when in list(due.items()):
            if not stopping and when <= now:
                del due[index]
                taken = spare.take(listeners[index]) if spare is not None else None
                if taken is not None:
                    spare, spare_due = None, now
                children[index] = taken if taken is not None else child_start(args, listeners[index], env)
                started[index] = now
        if not stopping and spare is None and spare_due is not None and spare_due <= now:
            spare, spare_due = Spare(args, env), None
        time.sleep(0.1)
    if spare is not None:
        spare.stop()
        children.append(spare.process)
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
