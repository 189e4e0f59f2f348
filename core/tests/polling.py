"""Waiting in tests for something another process does, with a guard against a hang that is no speed check."""
import time

import pytest

POLL_SECONDS = 0.05


def wait_for(predicate, what: str, polls: int = 1200):
    """Poll ``predicate()`` every 50 ms until it returns something true, and return it. After ``polls``
    tries the test fails saying ``what`` never happened. How fast things happen is measured in bench/,
    never here."""
    for _ in range(polls):
        if found := predicate():
            return found
        time.sleep(POLL_SECONDS)
    pytest.fail(what)
