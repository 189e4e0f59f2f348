"""Fixtures for order tests: a clean webhook endpoint cache and an empty broker queue."""
import pytest

from config.celery_app import app
from webhooks.selectors import endpoints_cache_clear
from webhooks.tests.receiver import FakeReceiver


@pytest.fixture(autouse=True)
def _endpoint_cache_clean():
    endpoints_cache_clear()
    yield
    endpoints_cache_clear()


@pytest.fixture
def empty_queue():
    # Tasks queued by earlier tests (whose rows are gone) would only slow the worker down.
    app.control.purge()


@pytest.fixture
def receiver():
    fake = FakeReceiver(secret="order-secret").start()
    yield fake
    fake.stop()
