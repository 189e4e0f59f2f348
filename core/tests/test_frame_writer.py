"""Tests of the direct frame path: frame encoding, Daphne's connection found behind ``send``, writes kept in order."""
import socket
from functools import partial

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from core.fanout import (
    FRAME_WRITER_SCOPE_KEY,
    DaphneFrameWriter,
    DaphneFrameWriterMiddleware,
    EncodedBatch,
    websocket_text_frame,
)

# Importing it installs Twisted's asyncio reactor in this process, as Daphne does at start-up.
daphne_server = pytest.importorskip("daphne.server")
from daphne.ws_protocol import WebSocketFactory  # noqa: E402
from twisted.internet.selectreactor import SelectReactor  # noqa: E402
from twisted.internet.tcp import Server  # noqa: E402


def _parse_frames(data: bytes) -> list[Frame]:
    """Frames in ``data`` as a WebSocket client library reads them (unmasked, from a server)."""
    reader = StreamReader()
    reader.feed_data(data)
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
    return frames


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_text_frame_parses_back_to_its_text(size):
    text = "é" * (size // 2) + "x" * (size % 2)

    frame, = _parse_frames(websocket_text_frame(text))

    assert (frame.opcode, frame.fin) == (Opcode.TEXT, True)
    assert frame.data.decode("utf-8") == text


def test_batch_frames_are_built_once_and_hold_every_item_in_order():
    batch = EncodedBatch([["e1", '{"id":"e1"}'], ["e2", '{"id":"e2"}']])

    assert batch.frames is batch.frames
    assert [f.data for f in _parse_frames(batch.frames)] == [b'{"id":"e1"}', b'{"id":"e2"}']
    assert batch.frames_of(batch.items) is batch.frames
    assert [f.data for f in _parse_frames(batch.frames_of(batch.items[1:]))] == [b'{"id":"e2"}']


@pytest.fixture
def daphne_server_instance():
    return daphne_server.Server(application=None, endpoints=["tcp:port=0"])


@pytest.fixture
def daphne_connection(daphne_server_instance):
    """Daphne's WebSocket protocol, open, on a real Twisted TCP connection, and the client's end of the socket.

    The connection's reactor is never run: whatever the writer leaves to a later loop turn stays in
    Twisted's buffer until the test calls ``doWrite``.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server_side, _ = listener.accept()
    listener.close()
    server_side.setblocking(False)
    # How Twisted adopts an accepted socket (daphne --fd does the same with its listening one).
    transport = Server._fromConnectedSocket(
        server_side.fileno(), socket.AF_INET, WebSocketFactory(daphne_server_instance, server="daphne"),
        SelectReactor())
    protocol = transport.protocol
    protocol.state = protocol.STATE_OPEN  # as after the opening handshake
    client.settimeout(5)
    yield protocol, client
    client.close()
    transport.socket.close()
    server_side.close()


def _read_exactly(client: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += client.recv(size - len(data))
    return data


def test_daphne_send_gives_a_writer_and_any_other_send_gives_none(daphne_server_instance, daphne_connection):
    protocol, _ = daphne_connection
    server = daphne_server_instance

    async def other_send(message):
        pass

    writer = DaphneFrameWriter.from_asgi_send(partial(server.handle_reply, protocol))

    assert writer is not None and writer.protocol is protocol and writer.usable()
    assert DaphneFrameWriter.from_asgi_send(other_send) is None
    assert DaphneFrameWriter.from_asgi_send(partial(print, protocol)) is None


def test_daphne_send_over_a_wrapped_transport_gives_none(daphne_server_instance, daphne_connection):
    # TLS served by Daphne itself wraps the TCP connection: frames must go through autobahn.
    protocol, _ = daphne_connection
    tcp_transport, protocol.transport = protocol.transport, object()

    assert DaphneFrameWriter.from_asgi_send(partial(daphne_server_instance.handle_reply, protocol)) is None
    protocol.transport = tcp_transport


def test_writer_sends_straight_to_the_socket_without_the_reactor(daphne_connection):
    protocol, client = daphne_connection
    frames = EncodedBatch([["e1", '{"id":"e1"}']]).frames

    DaphneFrameWriter(protocol, protocol.transport).write(frames)

    # No reactor turn happened: the bytes were sent by the write itself.
    assert _read_exactly(client, len(frames)) == frames
    assert protocol.transport.dataBuffer == b"" and protocol.transport._tempDataBuffer == []


def test_writer_queues_behind_bytes_daphne_has_not_sent_yet(daphne_connection):
    protocol, client = daphne_connection
    hello = websocket_text_frame('{"type":"hello"}')
    protocol.transport.write(hello)  # as autobahn writes the hello: it waits in Twisted's buffer for a loop turn
    frames = EncodedBatch([["e1", '{"id":"e1"}']]).frames

    DaphneFrameWriter(protocol, protocol.transport).write(frames)
    protocol.transport.doWrite()

    assert _read_exactly(client, len(hello) + len(frames)) == hello + frames


def test_what_a_slow_client_cannot_take_now_is_sent_later_in_order(daphne_connection):
    protocol, client = daphne_connection
    # Larger than the kernel's socket buffers, so the send takes only part of it.
    frames = EncodedBatch([[str(n), "x" * 60_000] for n in range(200)]).frames
    then = websocket_text_frame("then")
    writer = DaphneFrameWriter(protocol, protocol.transport)

    writer.write(frames)
    assert protocol.transport._tempDataLen > 0
    writer.write(then)  # queued behind the rest, not sent ahead of it

    received = bytearray()
    client.setblocking(False)
    while len(received) < len(frames) + len(then):
        protocol.transport.doWrite()  # the reactor's turn: Twisted sends what it holds
        try:
            received += client.recv(1 << 20)
        except BlockingIOError:
            pass
    assert bytes(received) == frames + then


def test_writer_writes_nothing_once_the_websocket_is_closing(daphne_connection):
    protocol, client = daphne_connection
    protocol.state = protocol.STATE_CLOSING
    writer = DaphneFrameWriter(protocol, protocol.transport)

    writer.write(websocket_text_frame("late"))

    assert not writer.usable()
    assert protocol.transport._tempDataBuffer == []
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(1)


def test_writer_not_usable_with_per_message_compression(daphne_connection):
    protocol, _ = daphne_connection
    protocol._perMessageCompress = object()

    assert not DaphneFrameWriter(protocol, protocol.transport).usable()


async def test_middleware_puts_the_writer_in_the_scope_only_under_daphne(daphne_server_instance, daphne_connection):
    protocol, _ = daphne_connection
    server = daphne_server_instance
    scopes = []

    async def inner(scope, receive, send):
        scopes.append(scope)

    async def other_send(message):
        pass

    app = DaphneFrameWriterMiddleware(inner)
    await app({"type": "websocket"}, None, partial(server.handle_reply, protocol))
    await app({"type": "websocket"}, None, other_send)

    assert scopes[0][FRAME_WRITER_SCOPE_KEY].protocol is protocol
    assert FRAME_WRITER_SCOPE_KEY not in scopes[1]
