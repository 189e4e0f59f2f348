"""Fixtures for notifications: the fake Telegram Bot API, fast rate limits, a real Celery worker, drivers."""
from contextlib import contextmanager

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings

from config.celery_app import app as celery_app
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


@contextmanager
def running_worker():
    """A real Celery worker (in a thread of this process) consuming the real Redis broker."""
    celery_app.conf.task_always_eager = False
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10,
                      loglevel="WARNING") as worker:
        yield worker


@pytest.fixture
def celery_worker(transactional_db):
    celery_app.control.purge()
    with running_worker() as worker:
        yield worker
    celery_app.control.purge()
