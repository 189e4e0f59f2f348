"""Run one command and start it again whenever it dies, until told to stop: each process of the Procfile runs under it.

    .venv/bin/python scripts/keep_running.py .venv/bin/celery -A config.celery_app beat ...

honcho (`make run`) stops every process as soon as one exits, so a single crashed worker or beat
used to take the whole stack down with it. Under this loop a dead process is started again at once
(after a backoff that grows while it keeps dying within seconds of its start: a broken command
does not spin), and honcho never sees it go. SIGTERM/SIGINT are passed to the command, which gets
10 s to stop before it is killed; then this loop exits with its code. The command dies with this
loop (PR_SET_PDEATHSIG), so killing the loop itself leaves nothing behind.

A small loop rather than a supervisor daemon: honcho and docker-compose already run the processes,
and what was missing is only "start it again"; one file, no configuration, no new dependency.
"""
import ctypes
import os
import signal
import subprocess
import sys
import time

# A run shorter than this counts as a crash at start: the next start waits longer.
QUICK_DEATH_SECONDS = 10.0
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0
STOP_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before exec: the kernel sends it SIGTERM when its parent dies (Linux; elsewhere a no-op)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def backoff_after(quick_deaths: int) -> float:
    """Seconds to wait before the next start, after this many quick deaths in a row (0 after a long run)."""
    if quick_deaths <= 1:
        return 0.0
    return min(BACKOFF_FIRST * 2 ** (quick_deaths - 2), BACKOFF_MAX)


def log(message: str) -> None:
    print(f"keep_running: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    quick_deaths = 0
    while True:
        started = time.monotonic()
        # A process group of its own: honcho signals this loop's group, and the command then gets the
        # signal once, from here, rather than twice.
        child = subprocess.Popen(argv, preexec_fn=die_with_parent, process_group=0)
        code = _wait(child, lambda: stopping)
        if stopping:
            return code
        quick_deaths = quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH_SECONDS else 1
        delay = backoff_after(quick_deaths)
        log(f"{argv[0]} (pid {child.pid}) exited with {code}; starting it again"
            + (f" in {delay:.1f} s" if delay else ""))
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
        if stopping:
            return code


def _wait(child: subprocess.Popen, stopping) -> int:
    """The child's exit code; once a stop was asked, at most STOP_GRACE_SECONDS before it is killed."""
    stop_seen: float | None = None
    while True:
        try:
            code = child.wait(timeout=0.2)
            return code if code >= 0 else 128 - code  # killed by a signal: the shell's 128 + N
        except subprocess.TimeoutExpired:
            pass
        if stopping():
            stop_seen = stop_seen or time.monotonic()
            if time.monotonic() - stop_seen > STOP_GRACE_SECONDS:
                child.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
