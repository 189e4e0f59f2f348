"""Sending Celery tasks fails fast while the broker is known down, so a committed write never waits on it.

Tasks are sent after commit, and durable work has its outbox rows and beat sweeps (docs/architecture.md,
"Delivery guarantees"): a send that fails is logged by its caller and left to the sweep. Settings keep
one send short (one quick retry, 1 s connect timeout, 2 s socket timeout); this keeps the next ones from
trying at all for a second after a failure, and while Redis is known down when the broker is that Redis.
"""
from urllib.parse import urlsplit

from celery import Task
from django.conf import settings
from kombu.exceptions import OperationalError

from core.cache import RedisCircuit, redis_circuit
from core.metrics import CELERY_TASKS_NOT_SENT

broker_circuit = RedisCircuit(probe_seconds=1.0, what="Celery broker")


def _same_server(first: str, second: str) -> bool:
    a, b = urlsplit(first), urlsplit(second)
    return a.scheme.startswith("redis") and (a.hostname, a.port or 6379) == (b.hostname, b.port or 6379)


def _on_the_cache_redis(broker_url: str) -> bool:
    """Whether the broker is the Redis that ``redis_circuit`` watches: REDIS_URL's server, or with REDIS_SENTINELS
    the sentinels' master (the broker's URL then names the same sentinels)."""
    if settings.REDIS_SENTINELS:
        named = {(part.hostname, part.port or 26379) for part in map(urlsplit, broker_url.split(";"))
                 if part.scheme == "sentinel"}
        return named == set(map(tuple, settings.REDIS_SENTINELS))
    return _same_server(broker_url, settings.REDIS_URL)


def broker_known_down(broker_url: str) -> bool:
    return broker_circuit.is_down() or (redis_circuit.is_down() and _on_the_cache_redis(broker_url))


class FailFastTask(Task):
    """The base of every task of the app (config/celery_app.py)."""

    def apply_async(self, *args, **kwargs):
        if broker_known_down(self.app.conf.broker_url or ""):
            CELERY_TASKS_NOT_SENT.labels(self.name).inc()
            raise OperationalError(f"{self.name} not sent: the broker is known down")
        try:
            return super().apply_async(*args, **kwargs)
        except OperationalError as exc:
            CELERY_TASKS_NOT_SENT.labels(self.name).inc()
            broker_circuit.mark_down(exc)
            raise
