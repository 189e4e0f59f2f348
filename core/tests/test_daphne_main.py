"""core/daphne_main.py: Daphne's reactor runs on the event loop WEB_EVENT_LOOP names; a spare waits for its socket."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.daphne_main import listener_wait

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: Daphne builds its reactor's loop once, when its server module is imported.
_REACTOR_LOOP = """
from core.daphne_main import event_loop_install
event_loop_install({name!r})
import daphne.server
from twisted.internet import reactor
print(type(daphne.server.twisted_loop).__module__, reactor._asyncioEventloop is daphne.server.twisted_loop)
"""


@pytest.mark.parametrize(("name", "module"), [("uvloop", "uvloop"), ("asyncio", "asyncio.unix_events")])
def test_daphnes_reactor_runs_on_the_named_event_loop(name, module):
    result = subprocess.run([sys.executable, "-c", _REACTOR_LOOP.format(name=name)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [module, "True"]


def test_an_unknown_event_loop_is_refused_before_daphne_starts():
    result = subprocess.run([sys.executable, "-m", "core.daphne_main", "--help"], cwd=ROOT,
                            env={"PATH": "", "WEB_EVENT_LOOP": "tokio"}, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "WEB_EVENT_LOOP must be one of uvloop, asyncio, not 'tokio'" in result.stderr


# What a spare loads before it waits: any importable application will do.
application = object()
SPARE_APP = "core.tests.test_daphne_main:application"


def test_a_spare_loads_the_application_then_takes_the_listening_socket_handed_over():
    ours, theirs = socket.socketpair()
    with ours, socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        socket.send_fds(ours, [b"L"], [listener.fileno()])

        received = listener_wait(theirs.detach(), SPARE_APP)

        try:
            assert received != listener.fileno()
            assert os.fstat(received).st_ino == os.fstat(listener.fileno()).st_ino  # the same socket
        finally:
            os.close(received)


def test_a_spare_whose_channel_closes_before_a_socket_arrives_gets_none():
    ours, theirs = socket.socketpair()
    ours.close()

    assert listener_wait(theirs.detach(), SPARE_APP) is None
