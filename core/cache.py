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
    as a cache (Telegram rate limits, projection marks): built once, not per call. While Redis is known
    down its calls raise RedisError at once (``CircuitConnection``) instead of after the timeout."""
    with _clients_lock:
        client = _direct.get(timeout)
        if client is None:
            # Plain TCP URLs get the circuit; rediss:// and unix:// keep their own connection classes.
            circuit = {"connection_class": CircuitConnection} if settings.REDIS_URL.startswith("redis://") else {}
            client = _direct[timeout] = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout, **circuit)
    return client


class RedisCircuit:
    """Whether Redis (or the service ``what`` names: the Celery broker, the read replica) is known down in
    this process: marked by a failed call, cleared by a good one.

    Redis holds rate limits, the channel layer and the cache, never the truth, so callers degrade
    when it is down (docs/architecture.md, "Redis outage"). While marked, they skip Redis at once
    instead of each paying a connect attempt or a timeout; after ``probe_seconds`` the next caller
    tries Redis again, so recovery needs no restart.
    """

    def __init__(self, probe_seconds: float, what: str = "Redis") -> None:
        self.probe_seconds = probe_seconds
        self.what = what
        self._down_until = 0.0

    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def mark_down(self, error: BaseException | None = None) -> None:
        """Redis failed this call: skip it for ``probe_seconds``. Logged once per outage, not per call."""
        if not self._down_until:
            logger.warning("%s unavailable: degraded until it answers again", self.what, extra={"error": repr(error)})
        self._down_until = time.monotonic() + self.probe_seconds

    def mark_up(self) -> None:
        if self._down_until:
            logger.warning("%s available again", self.what)
            self._down_until = 0.0


redis_circuit = RedisCircuit(probe_seconds=1.0)
# What a call to an unreachable or hung Redis raises (a publish that timed out included).
REDIS_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError, TimeoutError)


class CircuitConnection(redis.Connection):
    """A Redis connection that fails at once while Redis is known down, and marks it down when a connect or
    a reply fails (refused, reset or timed out), for the clients of ``redis_direct``."""

    def connect(self, *args, **kwargs):
        if redis_circuit.is_down():
            raise redis.ConnectionError("Redis is known down; not trying for now")
        try:
            return super().connect(*args, **kwargs)
        except REDIS_UNREACHABLE as exc:
            redis_circuit.mark_down(exc)
            raise

    def read_response(self, *args, **kwargs):
        try:
            return super().read_response(*args, **kwargs)
        except REDIS_UNREACHABLE as exc:
            redis_circuit.mark_down(exc)
            raise
