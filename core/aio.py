"""Per-event-loop async clients (a PostgreSQL pool, a Redis client) and batching for the few code paths on the server loop."""
import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.cache import redis_async_new, redis_target
from core.db import connect_params, database_circuit

logger = logging.getLogger(__name__)

# Keyed by loop: a pool or a Redis connection belongs to the loop that opened it (one per Daphne
# process in production, one per test in the suite).
_pools: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool]" = weakref.WeakKeyDictionary()
# Redis clients per loop are kept per target (core.cache.redis_target), so a changed setting gets new ones.
_redis: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, aioredis.Redis]]" = \
    weakref.WeakKeyDictionary()


async def _connection_configure(conn: AsyncConnection) -> None:
    # As Django's own connections: UTC session time zone, autocommit (each statement its own transaction).
    await conn.set_autocommit(True)
    await conn.execute("SET TIME ZONE 'UTC'")


class CircuitAsyncPool(AsyncConnectionPool):
    """An async pool asked as core.db.pool_connection asks Django's: DatabaseDown at once while the
    process's circuit is open, and after a wait of ``DB_DOWN_CHECK_SECONDS`` a check of PostgreSQL
    (on a worker thread: the loop never blocks on it) before waiting the rest of the timeout."""

    async def getconn(self, timeout: float | None = None) -> AsyncConnection:
        if database_circuit.is_open():
            raise database_circuit.down()
        wait = self.timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            return await super().getconn(timeout=min(settings.DB_DOWN_CHECK_SECONDS, wait))
        except PoolTimeout:
            if not await sync_to_async(database_circuit.reachable, thread_sensitive=False)():
                raise database_circuit.down() from None
        return await super().getconn(timeout=max(wait - (time.monotonic() - started), 0.001))


async def db_pool() -> AsyncConnectionPool:
    """This loop's pool of autocommit connections to the default database, opened on first use; while
    PostgreSQL is down it answers DatabaseDown instead of a connection (CircuitAsyncPool)."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        params = connect_params()
        options = settings.DATABASES["default"]["OPTIONS"]["pool"]  # the waits of Django's pool
        pool = CircuitAsyncPool(
            kwargs=params, min_size=1, max_size=settings.ASYNC_DB_POOL_SIZE, open=False,
            configure=_connection_configure, name="async-default", timeout=options.get("timeout", 30.0),
            reconnect_timeout=options.get("reconnect_timeout", 300.0),
        )
        _pools[loop] = pool
        await pool.open()
    return pool


def redis_client() -> aioredis.Redis:
    """This loop's Redis client on the cache's server, or the sentinels' master when they are set (rate
    limits, token lockouts, projection marks)."""
    clients = _redis.setdefault(asyncio.get_running_loop(), {})
    url = settings.CACHES["default"]["LOCATION"]
    target = redis_target(url)
    client = clients.get(target)
    if client is None:
        client = clients[target] = redis_async_new(timeout=1.0, url=url)
    return client


async def clients_close() -> None:
    """Close this loop's pool and Redis client (tests call it before their loop ends)."""
    loop = asyncio.get_running_loop()
    pool = _pools.pop(loop, None)
    if pool is not None:
        await pool.close()
    for client in _redis.pop(loop, {}).values():
        await client.aclose()


def _closing_connection(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    finally:
        # A worker thread outside any request: hand its connection back to Django's pool now.
        connection.close()


async def sync_read(fn, *args, **kwargs):
    """Run a short sync read (ORM) from the loop on a worker thread, not on the thread that serves
    Django's views, so a cache refill never waits behind them."""
    return await sync_to_async(_closing_connection, thread_sensitive=False)(fn, *args, **kwargs)


class _LoopQueue:
    def __init__(self) -> None:
        self.items: list[Any] = []
        # Parallel to items: the future awaiting each item's result (LoopBatcher.call), or None (add).
        self.futures: list[asyncio.Future | None] = []
        self.wakeup = asyncio.Event()
        self.busy = False
        self.task: asyncio.Task | None = None


class LoopBatcher:
    """Items handed in on a loop go to ``flush`` in batches, by one task per loop, one flush at a time.

    While a flush waits on the network, new items gather; the next flush takes them all (at most
    ``max_batch``). So under load the work per item falls, with no timer and no added wait when the
    loop is idle.

    ``add`` hands items over and returns at once; ``call`` waits for the item's own result, which
    ``flush`` returns as a list in the order of its batch (an exception raised by ``flush`` is
    raised to every caller of that batch).
    """

    def __init__(self, name: str, flush: Callable[[list[Any]], Awaitable[Any]], *,
                 max_batch: int | None = None) -> None:
        self.name = name
        self.flush = flush
        self.max_batch = max_batch
        self._queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue]" = weakref.WeakKeyDictionary()

    def _queue(self) -> _LoopQueue:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None or queue.task is None or queue.task.done():
            queue = self._queues[loop] = _LoopQueue()
            queue.task = loop.create_task(self._run(queue), name=self.name)
        return queue

    def add(self, items: list[Any]) -> None:
        if not items:
            return
        queue = self._queue()
        queue.items.extend(items)
        queue.futures.extend([None] * len(items))
        queue.wakeup.set()

    async def call(self, item: Any) -> Any:
        """This item's result from the flush that takes it."""
        queue = self._queue()
        future = asyncio.get_running_loop().create_future()
        queue.items.append(item)
        queue.futures.append(future)
        queue.wakeup.set()
        return await future

    async def _run(self, queue: _LoopQueue) -> None:
        while True:
            await queue.wakeup.wait()
            queue.wakeup.clear()
            size = len(queue.items) if self.max_batch is None else self.max_batch
            batch, futures = queue.items[:size], queue.futures[:size]
            del queue.items[:size], queue.futures[:size]
            if queue.items:
                queue.wakeup.set()
            queue.busy = True
            try:
                results = await self.flush(batch)
            except Exception as exc:
                logger.exception("%s could not flush %d item(s)", self.name, len(batch))
                for future in futures:
                    if future is not None and not future.done():
                        future.set_exception(exc)
            else:
                for index, future in enumerate(futures):
                    if future is not None and not future.done():
                        future.set_result(results[index])
            finally:
                queue.busy = False

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until this loop's items are flushed, then stop its task (tests, before their loop ends).

        The task is stopped only while idle: cancelling a flush halfway through a Redis call can
        leave that client's connection unusable for the rest of the loop.
        """
        queue = self._queues.pop(asyncio.get_running_loop(), None)
        if queue is None or queue.task is None:
            return
        async with asyncio.timeout(timeout):
            while queue.items or queue.busy:
                await asyncio.sleep(0.01)
        queue.task.cancel()
        try:
            await queue.task
        except asyncio.CancelledError:
            pass
