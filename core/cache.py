"""Redis clients shared by the whole process: the cache backend's, and one for the features that use Redis directly.

Django builds a cache object per request context under ASGI, and Django's Redis backend builds a
connection pool per cache object: every request opened a fresh TCP connection to Redis (about a
sixth of a reservation request's CPU, measured with py-spy). redis-py pools are thread-safe, and
they start afresh in a forked child (Celery's prefork workers).
"""
import threading

import redis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

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
