"""The live stock WebSocket under a real Daphne, where batches are written straight to each connection."""
import json
from contextlib import contextmanager

import pytest
from websockets.sync.client import connect

from core.tests.factories import ApiClientFactory
from inventory.services import stock_receive
from inventory.tests.factories import ProductFactory
from inventory.tests.test_dashboard_browser import server, static_root  # noqa: F401  (fixtures)
from inventory.ws_tickets import ws_ticket_issue

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def _open(server, query: str):
    client = ApiClientFactory(scopes=["read"])
    ticket, _ = ws_ticket_issue(principal={"kind": "client", "id": client.pk, "name": client.name})
    with connect(f"ws://127.0.0.1:{server.port}/ws/stock/?{query}", origin=server.url,
                 subprotocols=["stockpulse.v1", f"ticket.{ticket}"], open_timeout=10) as socket:
        assert json.loads(socket.recv(timeout=10))["type"] == "hello"
        yield socket


def _next_change(socket) -> dict:
    while True:
        message = json.loads(socket.recv(timeout=10))
        if message["type"] == "stock.changed":
            return message


def test_each_socket_gets_its_changes_once_and_in_order(server):
    watched = ProductFactory(on_hand=1, category="frios")
    other = ProductFactory(on_hand=1, category="bebidas")
    # Two groups (its code and its category) for one socket: every change still arrives once.
    with _open(server, f"codes={watched.code}&categories=frios") as both_groups, \
            _open(server, f"codes={other.code}") as other_code:
        for _ in range(3):
            stock_receive(code=watched.code, quantity=1)
        stock_receive(code=other.code, quantity=5)

        assert [_next_change(both_groups)["version"] for _ in range(3)] == [2, 3, 4]
        first_for_other = _next_change(other_code)
    # Published after the watched code's changes: had those reached this socket, they would come first.
    assert (first_for_other["code"], first_for_other["on_hand"]) == (other.code, 6)


def test_frames_written_around_heartbeats_stay_whole(server):
    # The server fixture beats every 2 s: Daphne's own frames and the fan-out's share the connection.
    product = ProductFactory(on_hand=0)
    with _open(server, f"codes={product.code}") as socket:
        stock_receive(code=product.code, quantity=1)
        assert _next_change(socket)["on_hand"] == 1
        while json.loads(socket.recv(timeout=10))["type"] != "heartbeat":
            pass
        stock_receive(code=product.code, quantity=1)

        assert _next_change(socket)["on_hand"] == 2


def test_answers_and_batches_share_the_direct_write_in_order(server):
    product = ProductFactory(on_hand=20)  # stays above its threshold: no alert event in between
    with _open(server, f"codes={product.code}") as socket:
        socket.send(json.dumps({"action": "ping"}))
        socket.send(json.dumps({"action": "nonsense"}))
        stock_receive(code=product.code, quantity=3)

        kinds = []
        while "stock.changed" not in kinds:
            message = json.loads(socket.recv(timeout=10))
            if message["type"] != "heartbeat":
                kinds.append(message["type"] if message["type"] != "error" else message["code"])

    assert kinds == ["pong", "unknown_action", "stock.changed"]
