"""Every Redis client of the process is built here (on REDIS_URL, or on the master the sentinels of
REDIS_SENTINELS name), with the cache backend's client, and the process's "Redis known down" mark that
lets the features using Redis skip it at once during an outage.

Django builds a cache object per request context under ASGI, and Django's Redis backend builds a
connection pool per cache object: every request opened a fresh TCP connection to Redis (about a
sixth of a reservation request's CPU, measured with py-spy). redis-py pools are thread-safe, and
they start afresh in a forked child (Celery's prefork workers).
"""
import logging
import threading
import time

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel, SentinelManagedConnection

logger = logging.getLogger(__name__)

_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def redis_target(url: str | None = None) -> tuple:
    """Where a client built now connects: the master the sentinels name, or ``url`` (REDIS_URL by default).

    Clients built once are kept per target, so that a changed setting (a test's) gets clients of its own.
    """
    if settings.REDIS_SENTINELS:
        return ("sentinel", tuple(map(tuple, settings.REDIS_SENTINELS)), settings.REDIS_SENTINEL_MASTER,
                settings.REDIS_SENTINEL_DB)
    return ("url", url or settings.REDIS_URL)


def _timeouts(timeout: float | None, options: dict) -> dict:
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout, **options}


def _sentinel_timeouts(options: dict) -> dict:
    """The sentinels are asked with the client's own timeouts, so an unreachable one fails a call as fast."""
    return {key: options[key] for key in ("socket_timeout", "socket_connect_timeout")}


class SentinelMaster(redis.Redis):
    """A client of the sentinels' master: it asks them for the master on each new connection, and
    closing it closes its connections to the sentinels too."""

    def close(self) -> None:
        super().close()
        self.connection_pool.sentinel_manager.close()


class AsyncSentinelMaster(aioredis.Redis):
    """``SentinelMaster`` for async code."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        await self.connection_pool.sentinel_manager.aclose()


def redis_new(*, timeout: float | None, url: str | None = None, circuit: bool = False, **options) -> redis.Redis:
    """A new client with this socket timeout (connect and reply), for its caller to close.

    With REDIS_SENTINELS set, on the master the sentinels name (asked again on each new connection, so a
    failover is followed) and ``url`` is not used; otherwise on ``url``, REDIS_URL by default. With
    ``circuit``, its calls fail at once while Redis is known down and mark it down when they fail
    (``CircuitConnection``).
    """
    options = _timeouts(timeout, options)
    if settings.REDIS_SENTINELS:
        if circuit:
            options["connection_class"] = CircuitSentinelConnection
        sentinels = Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=_sentinel_timeouts(options))
        return sentinels.master_for(settings.REDIS_SENTINEL_MASTER, redis_class=SentinelMaster,
                                    db=settings.REDIS_SENTINEL_DB, **options)
    url = url or settings.REDIS_URL
    # Plain TCP URLs get the circuit; rediss:// and unix:// keep their own connection classes.
    if circuit and url.startswith("redis://"):
        options["connection_class"] = CircuitConnection
    return redis.Redis.from_url(url, **options)


def redis_async_new(*, timeout: float | None, url: str | None = None, **options) -> aioredis.Redis:
    """``redis_new`` for async code (no circuit), for its caller to ``aclose``; a client belongs to the
    event loop that first uses it."""
    options = _timeouts(timeout, options)
    if settings.REDIS_SENTINELS:
        sentinels = AsyncSentinel(settings.REDIS_SENTINELS, sentinel_kwargs=_sentinel_timeouts(options))
        return sentinels.master_for(settings.REDIS_SENTINEL_MASTER, redis_class=AsyncSentinelMaster,
                                    db=settings.REDIS_SENTINEL_DB, **options)
    return aioredis.Redis.from_url(url or settings.REDIS_URL, **options)


_shared: dict[tuple, redis.Redis] = {}


def redis_shared(*, timeout: float | None, url: str | None = None, circuit: bool = False, **options) -> redis.Redis:
    """The process's client with these options on the current target (``redis_new``), built once and
    shared by every thread (redis-py clients are thread-safe); never closed by its users."""
    key = (redis_target(url), timeout, circuit, tuple(sorted(options.items())))
    client = _shared.get(key)
    if client is None:
        with _clients_lock:
            client = _shared.get(key)
            if client is None:
                client = _shared[key] = redis_new(timeout=timeout, url=url, circuit=circuit, **options)
    return client


def redis_direct(*, timeout: float) -> redis.Redis:
    """The process's client with this socket timeout, for Redis used directly rather than as a cache
    (Telegram rate limits, projection marks, WebSocket tickets). While Redis is known down its calls
    raise RedisError at once (``CircuitConnection``) instead of after the timeout."""
    return redis_shared(timeout=timeout, circuit=True)


class SharedCacheClient(RedisCacheClient):
    """Django's Redis cache client on the process's shared client (``redis_shared``): so on the sentinels'
    master when REDIS_SENTINELS is set, and on the cache's LOCATION otherwise (one server: Django's read
    servers after the first are not used). Django's own builds a new client object on every get_client()
    call, about 40% of a throttle check (core/throttling.py asks for one per request)."""

    def __init__(self, servers, **options) -> None:
        super().__init__(servers, **options)
        self._shared_options = dict(self._pool_options)
        self._timeout = self._shared_options.pop("socket_timeout", None)
        self._by_target: dict[tuple, redis.Redis] = {}

    def get_client(self, key=None, *, write=False) -> redis.Redis:
        # On the throttle's path on every request: one dict lookup once the client is built.
        target = redis_target(self._servers[0])
        client = self._by_target.get(target)
        if client is None:
            client = self._by_target[target] = redis_shared(timeout=self._timeout, url=self._servers[0],
                                                            **self._shared_options)
        return client


class SharedRedisCache(RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = SharedCacheClient

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
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


class _Circuit:
    """A Redis connection that fails at once while Redis is known down, and marks it down when a connect or
    a reply fails (refused, reset or timed out), for the clients built with ``circuit``."""

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


class CircuitConnection(_Circuit, redis.Connection):
    pass


class CircuitSentinelConnection(_Circuit, SentinelManagedConnection):
    """The same, on the sentinels' master: a sentinel naming no master (mid-failover) counts as Redis down."""
