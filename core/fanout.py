"""Per-process fan-out of realtime batches: one subscription per group, relayed to every local socket.

Each event loop that serves WebSockets (Daphne's, one per process) gets one ``FanoutHub``, started
lazily by the first socket that joins a group. The hub holds one channel-layer channel; it adds that
channel to a group when the first local socket joins it and removes it when the last one leaves, so
Redis carries one Pub/Sub subscription per group per process and one message per batch and group,
whatever the number of sockets. A single task reads that channel and hands each batch to the
group's local sockets directly (``relay_batch``), instead of one channel-layer message, queue and
consumer dispatch per socket. Each batch is encoded into WebSocket frames once (``EncodedBatch``);
under Daphne a socket writes those bytes straight to its TCP connection (``DaphneFrameWriter``).

The hub also watches its own subscription: every ``PROBE_SECONDS`` it sends itself a probe through
the channel layer. A probe that cannot be sent or does not come back, a read error, or the
subscription's Redis connection being made again means batches may have been lost: every local
socket is told ``interrupted``, and once probes come back through the (re-made) subscription,
``resync``, so clients reload the snapshot instead of trusting a screen that missed events.
"""
import asyncio
import logging
import struct
import sys
import time
import weakref
from collections.abc import Iterable
from functools import cached_property, partial
from typing import Any, Protocol

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer

from core.metrics import WS_FANOUT_SECONDS

logger = logging.getLogger(__name__)

# Pause before reading again after an unexpected channel-layer error, so a broken layer cannot spin.
READ_RETRY_SECONDS = 0.5
# Sockets served between two yields to the event loop. A fan-out to thousands of sockets takes tens
# of milliseconds; yielding lets the loop serve HTTP requests and handshakes in between.
YIELD_EVERY = 100
# Where DaphneFrameWriterMiddleware puts the connection's writer in the WebSocket scope.
FRAME_WRITER_SCOPE_KEY = "stockpulse.frame_writer"
# The hub sends itself a probe this often; one not back within PROBE_LOST_SECONDS means the
# subscription delivers nothing (for the sockets: interrupted until probes come back).
PROBE_SECONDS = 1.0
PROBE_LOST_SECONDS = 3.0
PROBE_MESSAGE_TYPE = "fanout.probe"
# What every local socket is told when batches may have been lost, and when they flow again.
STREAM_INTERRUPTED = "interrupted"
STREAM_RESYNC = "resync"


def websocket_text_frame(text: str) -> bytes:
    """One final, unmasked text frame holding ``text`` (RFC 6455 section 5.2), as a server sends it."""
    payload = text.encode("utf-8")
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload


class EncodedBatch:
    """One channel-layer batch (``[event id, JSON text]`` items) and its frames, encoded once for every socket."""

    def __init__(self, items: list[list[str]]) -> None:
        self.items = items

    @cached_property
    def frames(self) -> bytes:
        """Every item as a text frame, back to back: the bytes each socket of the group receives."""
        return b"".join(websocket_text_frame(text) for _, text in self.items)

    def frames_of(self, items: list[list[str]]) -> bytes:
        """Frames for some of the items, for a socket that already had the others through another group."""
        if len(items) == len(self.items):
            return self.frames
        return b"".join(websocket_text_frame(text) for _, text in items)


class Relay(Protocol):
    """What the hub needs from a socket: write one batch to the client, never waiting on it."""

    def relay_batch_now(self, batch: EncodedBatch) -> bool:
        """Write it without a coroutine if the socket can (its frame writer): True once done; False
        to have the hub await ``relay_batch`` instead. Saves a coroutine per socket and event in
        the fan-out's loop."""
        ...

    async def relay_batch(self, batch: EncodedBatch) -> None: ...

    async def relay_stream_state(self, state: str) -> None:
        """Tell the client the stream was ``interrupted`` (batches may be lost) or is back (``resync``)."""
        ...


class DaphneFrameWriter:
    """Writes ready-made frames of one Daphne WebSocket connection straight to its TCP socket.

    Why: Daphne's send path costs about 100 µs per socket and event (channels' session wrapper,
    Daphne's ``handle_reply``, autobahn framing the text again, and Twisted's transport, which
    registers the socket for writing with the event loop, sends on a later loop turn and
    unregisters it). A fan-out to 1,000 sockets then took 0.1 s. Here the frames are built once
    per batch and written with one ``send()`` while nothing else is waiting on the connection,
    as asyncio's own transports do; it is a few µs per socket.

    Order is kept with what Daphne writes itself (handshake, ``hello``, heartbeats, close): when
    autobahn or Twisted still hold bytes for the connection, the frames are queued behind them
    through autobahn's ``sendData`` instead. Nothing is written once the WebSocket is no longer
    open, as autobahn's ``sendMessage`` would refuse too.
    """

    __slots__ = ("protocol", "transport", "socket")

    def __init__(self, protocol, transport) -> None:
        self.protocol = protocol
        self.transport = transport
        self.socket = transport.socket

    @classmethod
    def from_asgi_send(cls, send) -> "DaphneFrameWriter | None":
        """The writer for the connection behind Daphne's ``send``; None for any other server or transport.

        Daphne passes ``functools.partial(server.handle_reply, protocol)`` as the application's
        ``send``. Its module is only looked up, never imported: importing ``daphne.server``
        installs Twisted's reactor, which is Daphne's business.
        """
        daphne_server = sys.modules.get("daphne.server")
        if daphne_server is None or not isinstance(send, partial) or len(send.args) != 1:
            return None
        if getattr(send.func, "__func__", None) is not daphne_server.Server.handle_reply:
            return None
        protocol = send.args[0]
        from twisted.internet.tcp import Connection  # loaded already: Daphne runs on Twisted

        transport = getattr(protocol, "transport", None)
        # A TLS or other wrapped transport would need its own framing of the bytes: keep the ASGI send.
        if not isinstance(transport, Connection) or not hasattr(protocol, "sendData"):
            return None
        return cls(protocol, transport)

    def usable(self) -> bool:
        """True once the WebSocket is open without per-message compression (Daphne never negotiates it)."""
        protocol = self.protocol
        return protocol.state == protocol.STATE_OPEN and getattr(protocol, "_perMessageCompress", None) is None

    def write(self, frames: bytes) -> None:
        """Send the frames now when nothing is queued on the connection, else queue them behind it."""
        protocol, transport = self.protocol, self.transport
        if protocol.state != protocol.STATE_OPEN:
            return
        if protocol.send_queue or transport.dataBuffer or transport._tempDataLen or not transport.connected:
            protocol.sendData(frames)
            return
        try:
            sent = self.socket.send(frames)
        except OSError:
            # Full (the client is slow) or lost: Twisted's write path sends the rest later, or notices
            # the loss and closes the protocol.
            sent = 0
        if sent < len(frames):
            transport.write(frames[sent:])


class DaphneFrameWriterMiddleware:
    """Outermost ASGI middleware of the WebSocket stack: under Daphne, puts the connection's
    ``DaphneFrameWriter`` in the scope (``FRAME_WRITER_SCOPE_KEY``) for the fan-out hub to use.

    Anything else (the tests' ``WebsocketCommunicator``, another server, TLS served by Daphne
    itself) gets no writer, and sockets keep the plain ASGI ``send``.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        writer = DaphneFrameWriter.from_asgi_send(send)
        if writer is not None:
            scope = {**scope, FRAME_WRITER_SCOPE_KEY: writer}
        return await self.app(scope, receive, send)


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
        self._watcher: asyncio.Task | None = None
        # False from the moment batches may have been lost until a probe came back through the subscription.
        self.live = True
        self._probe_seen = time.monotonic()

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
                self._probe_seen = time.monotonic()
                self._reader = asyncio.create_task(self._read(), name="realtime-fanout")
                self._watcher = asyncio.create_task(self._watch(), name="realtime-fanout-watch")
                self._reconnects_watch()
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
                # redis-py turns the cancellation of a blocking read into its own TimeoutError (the
                # channels-redis core layer reads that way): a reader asked to stop stops, instead of
                # logging a read error and reading again for ever.
                if asyncio.current_task().cancelling():
                    raise asyncio.CancelledError from None
                logger.exception("realtime fan-out could not read from the channel layer")
                await self._interrupted("read error")
                await asyncio.sleep(READ_RETRY_SECONDS)
                continue
            if message.get("type") == PROBE_MESSAGE_TYPE:
                self._probe_seen = time.monotonic()
                if not self.live:
                    await self._resync()
                continue
            await self.deliver(message)

    async def _watch(self) -> None:
        """Send a probe every PROBE_SECONDS; one that cannot be sent or is overdue interrupts the stream."""
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            try:
                async with asyncio.timeout(PROBE_SECONDS):
                    await self.layer.send(self._channel, {"type": PROBE_MESSAGE_TYPE})
            except Exception as exc:
                await self._interrupted(f"probe not sent: {exc!r}")
                continue
            if time.monotonic() - self._probe_seen > PROBE_LOST_SECONDS:
                await self._interrupted("probes not coming back")

    def _reconnects_watch(self) -> None:
        """Hear of every new Redis connection of the subscription (Pub/Sub layer): redis-py makes it
        again and resubscribes without a word, and whatever was published in between is lost."""
        try:
            shards = self.layer._get_layer()._shards
        except AttributeError:
            return  # the core layer: its reads fail instead, and the reader hears of it
        for shard in shards:
            connection = getattr(getattr(shard, "_pubsub", None), "connection", None)
            if connection is not None:
                connection.register_connect_callback(self._subscription_reconnected)

    def _subscription_reconnected(self, connection) -> None:
        # Called inside redis-py's connect(), after the subscriptions were made again.
        asyncio.get_running_loop().create_task(self._interrupted("subscription connection made again"))

    async def _interrupted(self, reason: str) -> None:
        if not self.live:
            return
        self.live = False
        logger.warning("realtime fan-out interrupted: batches may be lost", extra={"reason": reason})
        await self._tell_everyone(STREAM_INTERRUPTED)

    async def _resync(self) -> None:
        """Probes flow again: make sure every group is subscribed (Redis may have restarted empty), then
        tell every socket to reload the snapshot."""
        try:
            async with self._lock:
                for group in list(self._subscribed):
                    await self.layer.group_add(group, self._channel)
        except Exception:
            logger.exception("realtime fan-out could not subscribe its groups again")
            return
        self.live = True
        logger.warning("realtime fan-out back: sockets told to resync")
        await self._tell_everyone(STREAM_RESYNC)

    async def _tell_everyone(self, state: str) -> None:
        sockets = set().union(*self.members.values()) if self.members else set()
        for n, socket in enumerate(sockets, 1):
            try:
                await socket.relay_stream_state(state)
            except Exception:
                logger.exception("realtime fan-out could not tell one socket")
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def deliver(self, message: dict[str, Any]) -> None:
        """Hand one batch to every local socket of its group, one after the other.

        No socket waits on its peer: the direct writer and Daphne's send leave what the kernel does
        not take at once in the connection's buffer, so a slow client delays nobody.
        """
        members = self.members.get(message.get("group"))
        if not members:
            return
        started = time.perf_counter()
        batch = EncodedBatch(message["items"])
        for n, socket in enumerate(tuple(members), 1):
            try:
                if not socket.relay_batch_now(batch):
                    await socket.relay_batch(batch)
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
        if get_channel_layer() is None:
            return None
        # A layer object of its own, not the shared one: the channels-redis core layer lets only one
        # event loop at a time receive on a layer object, and every loop (a Daphne process's, a test's)
        # has its own hub.
        hub = _hubs[loop] = FanoutHub(channel_layers.make_backend(DEFAULT_CHANNEL_LAYER))
    return hub
