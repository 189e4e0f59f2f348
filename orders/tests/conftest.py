"""Fixtures for order tests: an empty broker queue."""
import pytest

from config.celery_app import app


@pytest.fixture
def empty_queue():
    # Tasks queued by earlier tests (whose rows are gone) would only slow the worker down.
    app.control.purge()
