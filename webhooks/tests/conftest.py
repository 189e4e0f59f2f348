"""Fixtures for webhook tests: a clean endpoint cache around each test and a fake receiver."""
import pytest

from webhooks.selectors import endpoints_cache_clear
from webhooks.tests.receiver import FakeReceiver


@pytest.fixture(autouse=True)
def _endpoint_cache_clean():
    # The cache is per process and outlives the test's rolled-back rows.
    endpoints_cache_clear()
    yield
    endpoints_cache_clear()


@pytest.fixture
def receiver():
    fake = FakeReceiver(secret="test-secret").start()
    yield fake
    fake.stop()
