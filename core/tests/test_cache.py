"""Process-wide Redis clients: one per purpose and timeout, reused by every call, talking to the real Redis, and
every client on REDIS_URL or, with REDIS_SENTINELS set, on the master the sentinels name (core/tests/test_sentinel.py
follows one through a failover)."""
from urllib.parse import urlsplit

import pytest
from django.core.cache import caches
from redis.asyncio.sentinel import MasterNotFoundError as AsyncMasterNotFoundError
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.sentinel import MasterNotFoundError, SentinelConnectionPool

from core import aio
from core.cache import CircuitSentinelConnection, redis_direct, redis_new


def test_redis_direct_is_built_once_per_timeout_and_reaches_redis():
    first, again, other = redis_direct(timeout=1.0), redis_direct(timeout=1.0), redis_direct(timeout=2)

    assert first is again and first is not other
    assert first.connection_pool.connection_kwargs["socket_timeout"] == 1.0
    assert other.connection_pool.connection_kwargs["socket_timeout"] == 2
    assert first.ping() is True


def _address(client) -> tuple:
    kwargs = client.connection_pool.connection_kwargs
    return kwargs["host"], kwargs["port"], kwargs.get("db", 0)


async def test_without_sentinels_every_client_is_on_redis_url(settings):
    assert settings.REDIS_SENTINELS == []
    url = urlsplit(settings.REDIS_URL)
    expected = (url.hostname, url.port, int(url.path.lstrip("/") or 0))
    own = redis_new(timeout=1.0)
    loop_client = aio.redis_client()
    try:
        clients = {"new": own, "direct": redis_direct(timeout=1.0), "loop": loop_client,
                   "cache": caches["default"]._cache.get_client(), "security": caches["security"]._cache.get_client()}

        assert {name: _address(client) for name, client in clients.items()} == dict.fromkeys(clients, expected)
        assert not any(isinstance(client.connection_pool, (SentinelConnectionPool, AsyncSentinelConnectionPool))
                       for client in clients.values())
        assert own.ping() is True and await loop_client.ping() is True
    finally:
        own.close()
        await aio.clients_close()


def test_with_sentinels_every_client_asks_them_for_the_master_with_its_own_timeouts(settings):
    settings.REDIS_SENTINELS = [("127.0.0.1", 1)]  # nothing listens there
    settings.REDIS_SENTINEL_MASTER = "stockpulse-unit"
    settings.REDIS_SENTINEL_DB = 3
    clients = {"new": redis_new(timeout=0.7), "direct": redis_direct(timeout=2),
               "cache": caches["default"]._cache.get_client(), "security": caches["security"]._cache.get_client()}

    pools = {name: client.connection_pool for name, client in clients.items()}
    assert {name: (type(pool), pool.service_name, pool.connection_kwargs["db"]) for name, pool in pools.items()} == \
        dict.fromkeys(clients, (SentinelConnectionPool, "stockpulse-unit", 3))
    assert {name: pool.connection_kwargs["socket_timeout"] for name, pool in pools.items()} == {
        "new": 0.7, "direct": 2, "cache": settings.REDIS_SOCKET_TIMEOUT, "security": 0.5}
    assert {name: [(s.connection_pool.connection_kwargs["port"], s.connection_pool.connection_kwargs["socket_timeout"])
                   for s in pool.sentinel_manager.sentinels] for name, pool in pools.items()} == {
        "new": [(1, 0.7)], "direct": [(1, 2)], "cache": [(1, settings.REDIS_SOCKET_TIMEOUT)], "security": [(1, 0.5)]}
    assert pools["direct"].connection_class is CircuitSentinelConnection
    # REDIS_URL answers, but no client goes there: with no sentinel reachable, no master is found.
    with pytest.raises(MasterNotFoundError):
        clients["new"].ping()
    clients["new"].close()


async def test_with_sentinels_the_loops_client_asks_them_for_the_master(settings):
    settings.REDIS_SENTINELS = [("127.0.0.1", 1)]
    settings.REDIS_SENTINEL_MASTER = "stockpulse-unit"
    try:
        pool = aio.redis_client().connection_pool

        assert isinstance(pool, AsyncSentinelConnectionPool)
        assert (pool.service_name, pool.connection_kwargs["socket_timeout"]) == ("stockpulse-unit", 1.0)
        with pytest.raises(AsyncMasterNotFoundError):
            await aio.redis_client().ping()
    finally:
        await aio.clients_close()
