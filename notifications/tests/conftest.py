"""Fixtures for notifications: the fake Telegram Bot API, fast rate limits, a real Celery worker on the alerts queue."""
import pytest
import redis
from django.conf import settings as django_settings

from core.tests.celery_worker import queues_purge
from core.tests.celery_worker import running_worker as celery_running_worker
from notifications.tests.fake_telegram import FakeTelegram


def _rate_keys_clear() -> None:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    prefix = django_settings.CACHES["default"]["KEY_PREFIX"]
    for key in client.scan_iter(f"{prefix}:tg:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def fake_telegram(settings):
    """A fake Bot API on 127.0.0.1:<free port>, with the service pointed at it and rate limits made fast."""
    fake = FakeTelegram().start()
    settings.TELEGRAM_API_BASE = fake.base
    settings.TELEGRAM_BOT_TOKEN = fake.token
    settings.TELEGRAM_RATE_CHAT_SECONDS = 0.001
    settings.TELEGRAM_RATE_GROUP_PER_MINUTE = 60000
    settings.TELEGRAM_RATE_GLOBAL_PER_SECOND = 1000
    _rate_keys_clear()
    yield fake
    fake.stop()
    _rate_keys_clear()


def running_worker(*queues: str):
    """A real worker on the alerts queue by default, as the `alerts` process of the Procfile: whatever else
    the test's writes queue (projection recomputes, webhooks) waits unconsumed and is purged afterwards."""
    return celery_running_worker(*(queues or ("alerts",)))


@pytest.fixture
def celery_worker(transactional_db):
    queues_purge()
    with running_worker() as worker:
        yield worker
    queues_purge()
