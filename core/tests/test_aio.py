"""Per-loop batching: items are flushed in order, gather while a flush is under way, and drain flushes the rest.
The loop's PostgreSQL pool is refused at once while the database circuit is open."""
import asyncio

import pytest
from psycopg_pool import AsyncConnectionPool

from core import aio
from core.aio import CircuitAsyncPool, LoopBatcher
from core.db import DatabaseCircuit
from core.errors import DatabaseDown
from core.tests.test_db import REFUSED, Target


async def test_items_added_during_a_flush_leave_together_in_the_next_one():
    flushed: list[list[int]] = []
    first_started, release_first = asyncio.Event(), asyncio.Event()

    async def flush(batch):
        flushed.append(batch)
        if len(flushed) == 1:
            first_started.set()
            await release_first.wait()

    batcher = LoopBatcher("test-batcher", flush)
    batcher.add([1])
    await first_started.wait()
    batcher.add([2])
    batcher.add([3, 4])
    assert flushed == [[1]]

    release_first.set()
    await batcher.drain()

    assert flushed == [[1], [2, 3, 4]]


async def test_drain_flushes_what_is_pending_and_a_failed_flush_does_not_stop_the_next():
    flushed: list[list[str]] = []

    async def flush(batch):
        flushed.append(batch)
        if batch == ["bad"]:
            raise RuntimeError("redis went away")

    batcher = LoopBatcher("test-batcher", flush)
    batcher.add(["bad"])
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    batcher.add(["good"])
    assert batcher.add([]) is None

    await batcher.drain()

    assert flushed == [["bad"], ["good"]]


async def test_call_gives_each_caller_its_own_result_in_batches_of_at_most_max_batch():
    batches: list[list[int]] = []

    async def flush(batch):
        batches.append(batch)
        return [n * 10 for n in batch]

    batcher = LoopBatcher("test-calls", flush, max_batch=3)

    results = await asyncio.gather(*[batcher.call(n) for n in range(1, 8)])

    assert results == [10, 20, 30, 40, 50, 60, 70]
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [n for batch in batches for n in batch] == list(range(1, 8))
    await batcher.drain()


async def test_a_failed_flush_raises_to_every_caller_of_its_batch_and_the_next_batch_still_runs():
    async def flush(batch):
        if "bad" in batch:
            raise RuntimeError("database went away")
        return [item.upper() for item in batch]

    batcher = LoopBatcher("test-calls", flush)

    failed = await asyncio.gather(batcher.call("bad"), batcher.call("also"), return_exceptions=True)
    after = await batcher.call("good")

    assert [type(result) for result in failed] == [RuntimeError, RuntimeError]
    assert after == "GOOD"
    await batcher.drain()


class _RecordedWaits(AsyncConnectionPool):
    """Records the wait CircuitAsyncPool asks of the pool underneath it."""

    async def getconn(self, timeout: float | None = None):
        self.waits.append(timeout)
        return await super().getconn(timeout=timeout)


class RecordingAsyncPool(CircuitAsyncPool, _RecordedWaits):
    def __init__(self, *args, **kwargs) -> None:
        self.waits: list[float | None] = []
        super().__init__(*args, **kwargs)


async def test_while_the_database_circuit_is_open_the_loop_s_pool_is_refused_at_once(monkeypatch):
    refused = DatabaseCircuit(connect=Target().connect)
    assert refused.reachable() is False  # a real refused connection opened it
    monkeypatch.setattr(aio, "database_circuit", refused)
    pool = RecordingAsyncPool(REFUSED, min_size=0, max_size=1, timeout=10, open=False, name="refused-async")
    await pool.open()
    try:
        with pytest.raises(DatabaseDown, match="PostgreSQL is unreachable"):
            await pool.getconn()
        assert pool.waits == []  # refused before the pool was asked at all
    finally:
        await pool.close()


async def test_a_loop_pool_that_cannot_connect_gives_database_down_after_the_check_time(monkeypatch, settings):
    settings.DB_DOWN_CHECK_SECONDS = 0.2
    target = Target()
    monkeypatch.setattr(aio, "database_circuit", DatabaseCircuit(connect=target.connect))
    pool = RecordingAsyncPool(REFUSED, min_size=0, max_size=1, timeout=10, open=False, name="refused-async")
    await pool.open()
    try:
        with pytest.raises(DatabaseDown):
            await pool.getconn()
        assert pool.waits == [0.2] and target.probes == 1  # the check time, then one probe: not the 10 s
    finally:
        await pool.close()
