"""Per-loop batching: items are flushed in order, gather while a flush is under way, and drain flushes the rest."""
import asyncio

from core.aio import LoopBatcher


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
