"""Redis cache backend whose connection pool is shared by the whole process.

Django builds a cache object per request context under ASGI, and Django's Redis backend builds a
connection pool per cache object: every request opened a fresh TCP connection to Redis (about a
sixth of a reservation request's CPU, measured with py-spy). redis-py pools are thread-safe.
"""
import threading

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
