"""Per-process fan-out of realtime batches: one subscription per group, relayed to every local socket.

Each event loop that serves WebSockets (Daphne's, one per process) gets one ``FanoutHub``, started
lazily by the first socket that joins a group. The hub holds one channel-layer channel; it adds that
channel to a group when the first local socket joins it and removes it when the last one leaves, so
Redis carries one Pub/Sub subscription per group per process and one message per batch and group,
whatever the number of sockets. A single task reads that channel and hands each batch to the
group's local sockets directly (``relay_batch``), instead of one channel-layer message, queue and
consumer dispatch per socket.
"""
import asyncio
import logging
import time
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from channels.layers import get_channel_layer

from core.metrics import WS_FANOUT_SECONDS

logger = logging.getLogger(__name__)

# Pause before reading again after an unexpected channel-layer error, so a broken layer cannot spin.
READ_RETRY_SECONDS = 0.5
# Sockets served between two yields to the event loop. A fan-out to thousands of sockets takes tens
# of milliseconds; yielding lets the loop serve HTTP requests and handshakes in between.
YIELD_EVERY = 100


class Relay(Protocol):
    """What the hub needs from a socket: write one batch's items to the client, never waiting on it."""

    async def relay_batch(self, items: list[list[str]]) -> None: ...


class FanoutHub:
    """Group → local sockets registry for one event loop, and the task that delivers batches to them."""

    def __init__(self, layer) -> None:
        self.layer = layer
        self.members: dict[str, set[Relay]] = {}
        # Groups whose subscription is complete; a group leaves this set before it is unsubscribed.
        self._subscribed: set[str] = set()
        self._lock = asyncio.Lock()
        self._channel: str | None = None
        self._reader: asyncio.Task | None = None

    async def join(self, socket: Relay, groups: Iterable[str]) -> None:
        """Add the socket to these groups; returns once every one of them is subscribed in Redis."""
        groups = list(groups)
        for group in groups:
            self.members.setdefault(group, set()).add(socket)
        missing = [group for group in groups if group not in self._subscribed]
        if not missing:
            return
        async with self._lock:
            if self._channel is None:
                self._channel = await self.layer.new_channel(prefix="fanout.")
                self._reader = asyncio.create_task(self._read(), name="realtime-fanout")
            for group in missing:
                # Checked again under the lock: another socket may have subscribed it meanwhile.
                if group not in self._subscribed and self.members.get(group):
                    await self.layer.group_add(group, self._channel)
                    self._subscribed.add(group)

    async def leave(self, socket: Relay, groups: Iterable[str]) -> None:
        """Remove the socket from these groups; a group left with no local socket is unsubscribed."""
        emptied = []
        for group in groups:
            members = self.members.get(group)
            if members is None:
                continue
            members.discard(socket)
            if not members:
                emptied.append(group)
        if not emptied:
            return
        async with self._lock:
            for group in emptied:
                if group in self._subscribed and not self.members.get(group):
                    # Out of the set before awaiting: a socket joining meanwhile waits and resubscribes.
                    self._subscribed.discard(group)
                    self.members.pop(group, None)
                    await self.layer.group_discard(group, self._channel)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("realtime fan-out could not read from the channel layer")
                await asyncio.sleep(READ_RETRY_SECONDS)
                continue
            await self.deliver(message)

    async def deliver(self, message: dict[str, Any]) -> None:
        """Hand one batch to every local socket of its group, one after the other.

        ASGI servers here (Daphne, the test communicator) accept a send without waiting on the peer:
        Daphne writes the frame into the connection's buffer, so a slow client delays nobody.
        """
        members = self.members.get(message.get("group"))
        if not members:
            return
        started = time.perf_counter()
        items = message["items"]
        for n, socket in enumerate(tuple(members), 1):
            try:
                await socket.relay_batch(items)
            except Exception:
                logger.exception("realtime fan-out failed for one socket")
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        WS_FANOUT_SECONDS.observe(time.perf_counter() - started)


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FanoutHub]" = weakref.WeakKeyDictionary()


def fanout_hub() -> FanoutHub | None:
    """The hub of the running event loop, created on first use; None when no channel layer is configured."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        layer = get_channel_layer()
        if layer is None:
            return None
        hub = _hubs[loop] = FanoutHub(layer)
    return hub
