"""Redis clients shared by the whole process: the cache backend's, one for the features that use Redis directly,
and the process's "Redis known down" mark that lets those features skip Redis at once during an outage.

Django builds a cache object per request context under ASGI, and Django's Redis backend builds a
connection pool per cache object: every request opened a fresh TCP connection to Redis (about a
sixth of a reservation request's CPU, measured with py-spy). redis-py pools are thread-safe, and
they start afresh in a forked child (Celery's prefork workers).
"""
import logging
import threading
import time

import redis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client


_direct: dict[float, redis.Redis] = {}


def redis_direct(*, timeout: float) -> redis.Redis:
    """The process's client of REDIS_URL with this socket timeout, for Redis used directly rather than
    as a cache (Telegram rate limits, projection marks): built once, not per call."""
    with _clients_lock:
        client = _direct.get(timeout)
        if client is None:
            client = _direct[timeout] = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    return client


class RedisCircuit:
    """Whether Redis is known down in this process: marked by a failed call, cleared by a good one.

    Redis holds rate limits, the channel layer and the cache, never the truth, so callers degrade
    when it is down (docs/architecture.md, "Redis outage"). While marked, they skip Redis at once
    instead of each paying a connect attempt or a timeout; after ``probe_seconds`` the next caller
    tries Redis again, so recovery needs no restart.
    """

    def __init__(self, probe_seconds: float) -> None:
        self.probe_seconds = probe_seconds
        self._down_until = 0.0

    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def mark_down(self, error: BaseException) -> None:
        """Redis failed this call: skip it for ``probe_seconds``. Logged once per outage, not per call."""
        if not self._down_until:
            logger.warning("Redis unavailable: rate limits count per process, live events are dropped",
                           extra={"error": repr(error)})
        self._down_until = time.monotonic() + self.probe_seconds

    def mark_up(self) -> None:
        if self._down_until:
            logger.warning("Redis available again")
            self._down_until = 0.0


redis_circuit = RedisCircuit(probe_seconds=1.0)
