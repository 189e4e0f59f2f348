"""Daphne's command line on the event loop chosen by WEB_EVENT_LOOP: ``python -m core.daphne_main <daphne arguments>``.

``uvloop`` (the default) or ``asyncio``. Measured with ``make bench-reserve``: uvloop cut each
reservation's server CPU by about a tenth against the standard loop (docs/bench-resv.md). Daphne
runs Twisted's asyncio reactor on this loop; the reactor only needs the loop's readers, writers
and timers, which uvloop provides.
"""
import asyncio
import os
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


def main() -> None:
    event_loop_install(os.environ.get("WEB_EVENT_LOOP", "uvloop"))
    from daphne.cli import CommandLineInterface

    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
