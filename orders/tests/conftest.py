"""Fixtures for order tests: empty broker queues."""
import pytest

from core.tests.celery_worker import queues_purge


@pytest.fixture
def empty_queue():
    # Tasks queued by earlier tests (whose rows are gone) would only slow the worker down.
    queues_purge()
