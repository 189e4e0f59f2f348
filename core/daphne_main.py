"""Daphne's command line on the event loop chosen by WEB_EVENT_LOOP: ``python -m core.daphne_main <daphne arguments>``.

``uvloop`` (the default) or ``asyncio``. Measured with ``make bench-reserve``: uvloop cut each
reservation's server CPU by about a tenth against the standard loop (docs/bench-resv.md). Daphne
runs Twisted's asyncio reactor on this loop; the reactor only needs the loop's readers, writers
and timers, which uvloop provides.

With WEB_SPARE_CHANNEL_FD set (scripts/serve.py's spare), the process loads the application and
Daphne first, then waits on that Unix socket for the listening socket to serve, and serves it
with ``--fd`` once it arrives: it takes over from a process that died in a few milliseconds,
where a process started then needs the whole load (about 1 s of CPU, 3-5 s on two busy cores).
"""
import asyncio
import os
import socket
import sys

EVENT_LOOPS = ("uvloop", "asyncio")


def event_loop_install(name: str) -> None:
    """Make new event loops of this kind. Before Daphne is imported: its server module builds the
    reactor's loop at import."""
    if name not in EVENT_LOOPS:
        raise SystemExit(f"WEB_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {name!r}")
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def application_load(application: str) -> None:
    """Import the application and what Django leaves to the first request: the URLconf, with every view
    module it imports (about 0.13 s)."""
    from daphne.utils import import_by_path

    import_by_path(application)
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports the URLconf)


def listener_wait(channel_fd: int, application: str) -> int | None:
    """As a spare: load the application, then wait for the listening socket to serve; its descriptor,
    or None when the channel closed first (serve.py stopped, or no longer needs a spare)."""
    application_load(application)
    with socket.socket(fileno=channel_fd) as channel:
        _, fds, _, _ = socket.recv_fds(channel, 1, 1)
    return fds[0] if fds else None


def main() -> None:
    event_loop_install(os.environ.get("WEB_EVENT_LOOP", "uvloop"))
    from daphne.cli import CommandLineInterface

    channel = os.environ.pop("WEB_SPARE_CHANNEL_FD", None)
    if channel is not None:
        listener = listener_wait(int(channel), sys.argv[-1])
        if listener is None:
            return
        sys.argv[1:1] = ["--fd", str(listener)]
    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
