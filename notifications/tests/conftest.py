"""Fixtures for notifications: the fake Telegram Bot API, fast rate limits, a real Celery worker on the alerts queue."""
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


def queues_purge() -> int:
    """Drop what is waiting on every queue the app knows; return how many messages that was.

    Not ``control.purge()``: that empties only the queues the last in-process worker was told to consume.
    """
    with celery_app.connection_for_write() as conn:
        return celery_app.amqp.TaskConsumer(conn, queues=list(celery_app.amqp.queues.values())).purge()


def queue_size(name: str) -> int:
    """Messages waiting on one queue (none of them taken by a worker)."""
    with celery_app.connection_for_write() as conn:
        # Declared as configured, not passively: the Redis transport calls an empty queue missing.
        return celery_app.amqp.queues[name].bind(conn.default_channel).queue_declare().message_count


@contextmanager
def running_worker(*queues: str):
    """A real Celery worker (in a thread of this process) consuming these queues of the real Redis broker.

    Alerts only by default, as the `alerts` process of the Procfile: whatever else the test's writes queue
    (projection recomputes, webhooks) waits unconsumed and is purged afterwards.
    """
    celery_app.conf.task_always_eager = False
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10,
                          loglevel="WARNING", queues=list(queues or ["alerts"])) as worker:
            yield worker
    finally:
        # `queues=` selects on the app itself; undo it so later tests and purges see every queue again.
        celery_app.amqp.queues.select(list(celery_app.amqp.queues))


@pytest.fixture
def celery_worker(transactional_db):
    queues_purge()
    with running_worker() as worker:
        yield worker
    queues_purge()
