"""Tests of the per-process fan-out hub against real Redis: shared subscriptions, delivery, leaving."""
import asyncio

import pytest

from core.fanout import FanoutHub, fanout_hub
from core.groups import GROUP_ALL, group_for_code
from core.realtime import BATCH_MESSAGE_TYPE


class FakeSocket:
    def __init__(self):
        self.batches: list[list[list[str]]] = []
        self.frames: list[bytes] = []
        self.got = asyncio.Event()

    def relay_batch_now(self, batch) -> bool:
        return False  # as a socket without a frame writer: the hub awaits relay_batch

    async def relay_batch(self, batch):
        self.batches.append(batch.items)
        self.frames.append(batch.frames)
        self.got.set()


class WriterSocket(FakeSocket):
    """As a socket with a frame writer: written at once, no coroutine."""

    def relay_batch_now(self, batch) -> bool:
        self.batches.append(batch.items)
        self.frames.append(batch.frames)
        self.got.set()
        return True

    async def relay_batch(self, batch):
        raise AssertionError("the hub awaited relay_batch although relay_batch_now wrote the batch")


def _batch(group: str, event_id: str) -> dict:
    return {"type": BATCH_MESSAGE_TYPE, "group": group, "items": [[event_id, f'{{"id":"{event_id}"}}']]}


# Sockets the hub awaits (ASGI send), and one it writes to at once (a frame writer) beside one it awaits.
@pytest.mark.parametrize("kinds", [(FakeSocket, FakeSocket), (WriterSocket, FakeSocket)], ids=["awaited", "mixed"])
async def test_sockets_of_one_group_share_one_subscription_and_each_gets_the_batch(kinds):
    hub = fanout_hub()
    first, second = kinds[0](), kinds[1]()
    await hub.join(first, [GROUP_ALL])
    await hub.join(second, [GROUP_ALL])
    assert fanout_hub() is hub
    assert hub.members[GROUP_ALL] == {first, second}

    await hub.layer.group_send(GROUP_ALL, _batch(GROUP_ALL, "e1"))

    await asyncio.wait_for(asyncio.gather(first.got.wait(), second.got.wait()), timeout=5)
    assert first.batches == second.batches == [[["e1", '{"id":"e1"}']]]
    # Encoded once for the whole group: both sockets are handed the very same bytes.
    assert first.frames[0] is second.frames[0]
    await hub.leave(first, [GROUP_ALL])
    await hub.leave(second, [GROUP_ALL])


async def test_batch_of_another_group_reaches_only_its_sockets():
    hub = fanout_hub()
    everything, one_code = FakeSocket(), FakeSocket()
    await hub.join(everything, [GROUP_ALL])
    await hub.join(one_code, [group_for_code("FAN-1")])

    await hub.layer.group_send(group_for_code("FAN-1"), _batch(group_for_code("FAN-1"), "e2"))

    await asyncio.wait_for(one_code.got.wait(), timeout=5)
    await asyncio.sleep(0.1)
    assert everything.batches == []
    await hub.leave(everything, [GROUP_ALL])
    await hub.leave(one_code, [group_for_code("FAN-1")])


async def test_last_socket_leaving_unsubscribes_the_group():
    hub = fanout_hub()
    socket = FakeSocket()
    await hub.join(socket, [GROUP_ALL, group_for_code("FAN-2")])

    await hub.leave(socket, [group_for_code("FAN-2")])

    assert group_for_code("FAN-2") not in hub.members
    assert hub.members[GROUP_ALL] == {socket}
    await hub.leave(socket, [GROUP_ALL])
    assert hub.members == {}
    # Nothing is delivered to a socket that left.
    await hub.layer.group_send(GROUP_ALL, _batch(GROUP_ALL, "e3"))
    await asyncio.sleep(0.2)
    assert socket.batches == []


class CancellationTurnedIntoAnErrorLayer:
    """A layer whose blocking read turns its own cancellation into another error, as redis-py does
    (its TimeoutError) under the channels-redis core layer."""

    async def new_channel(self, prefix: str = "specific.") -> str:
        return prefix + "only"

    async def group_add(self, group: str, channel: str) -> None:
        pass

    async def receive(self, channel: str) -> dict:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("Timeout reading from 127.0.0.1:6379") from None


async def test_a_reader_asked_to_stop_stops_when_the_layer_turns_the_cancellation_into_an_error():
    hub = FanoutHub(CancellationTurnedIntoAnErrorLayer())
    await hub.join(FakeSocket(), [GROUP_ALL])
    await asyncio.sleep(0.05)  # the reader is blocked in receive
    assert not hub._reader.done()

    hub._reader.cancel()
    # Before, it logged a read error and read again: the loop closing after a test (or a server) waited for ever.
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(hub._reader, timeout=5)

    assert hub._reader.cancelled()
