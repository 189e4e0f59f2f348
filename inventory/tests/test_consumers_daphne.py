"""The live stock WebSocket under a real Daphne, where batches are written straight to each connection."""
import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests
from websockets.sync.client import connect

from core.tests.factories import ApiClientFactory
from core.tests.metrics import samples_in_text
from inventory.models import Stock
from inventory.services import stock_receive
from inventory.tests.factories import ProductFactory
from inventory.tests.test_dashboard_browser import running_server, server_env
from inventory.tests.test_dashboard_browser import (  # noqa: F401  (fixtures)
    own_redis, server, server_on_own_redis, static_root,
)
from inventory.ws_tickets import ws_ticket_issue

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def _open(server, query: str, *, ticket: str | None = None):
    if ticket is None:
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


@pytest.fixture
def served(static_root):  # noqa: F811
    """scripts/serve.py with one Daphne process: the order guarantee is per process (docs/realtime.md)."""
    with running_server(server_env(static_root), workers=1) as web:
        yield web


def test_mixed_concurrent_writes_to_one_product_reach_a_socket_in_version_order(served):
    product = ProductFactory(on_hand=1_000)  # far above its threshold: every reservation stays plain
    manager = ApiClientFactory(scopes=["read", "manage"])
    storefront = ApiClientFactory(scopes=["read", "reserve"])
    fast_path_before = _fast_path_served(served)
    rounds = 8

    def receipts():
        with requests.Session() as http:
            for _ in range(rounds):
                response = http.post(f"{served.url}/api/v1/stock/{product.code}/movements",
                                     json={"kind": "receipt", "quantity": 1, "reason": "delivery"},
                                     headers={"Authorization": f"Bearer {manager.raw_token}"}, timeout=30)
                assert response.status_code == 201, response.text

    def reservations():
        with requests.Session() as http:
            for _ in range(rounds):
                response = http.post(f"{served.url}/stock/{product.code}/reserve", json={"quantity": 1},
                                     headers={"Authorization": f"Bearer {storefront.raw_token}"}, timeout=30)
                assert response.status_code == 200, response.text

    with _open(served, f"codes={product.code}") as socket:
        with ThreadPoolExecutor(max_workers=12) as pool:
            for future in [pool.submit(receipts if n % 2 else reservations) for n in range(12)]:
                future.result()
        stock = Stock.objects.get(product=product)
        versions = []
        while not versions or versions[-1] < stock.version:
            versions.append(_next_change(socket)["version"])

    assert (stock.on_hand, stock.reserved) == (1_000 + 6 * rounds, 6 * rounds)
    assert all(earlier < later for earlier, later in zip(versions, versions[1:])), versions
    assert versions[-1] == stock.version
    # Both paths wrote: receipts through the Django view, reservations through the fast path.
    assert _fast_path_served(served) - fast_path_before == 6 * rounds


def _fast_path_served(server) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    return samples_in_text(text, "stockpulse_reservation_fast_path_total").get((("outcome", "served"),), 0.0)


def _ticket_from(server) -> str:
    """A ticket issued by the server itself (its ticket store is its own Redis, not this process's)."""
    reader = ApiClientFactory(scopes=["read"])
    response = requests.post(f"{server.url}/api/v1/ws-ticket", headers={"Authorization": f"Bearer {reader.raw_token}"},
                             timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["ticket"]


def _next_stream_state(socket, timeout: float = 15) -> str:
    """The next ``interrupted`` or ``resync`` message (heartbeats skipped), within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if message["type"] in ("interrupted", "resync"):
            return message["type"]
        assert message["type"] == "heartbeat", message


def test_every_socket_is_told_to_resync_after_the_fanout_lost_its_redis(server_on_own_redis, own_redis):
    server = server_on_own_redis
    product = ProductFactory(on_hand=5)
    manager = ApiClientFactory(scopes=["read", "manage"])
    with _open(server, "", ticket=_ticket_from(server)) as everything, \
            _open(server, f"codes={product.code}", ticket=_ticket_from(server)) as one_code:
        own_redis.stop()
        assert [_next_stream_state(everything), _next_stream_state(one_code)] == ["interrupted", "interrupted"]

        own_redis.start()
        assert [_next_stream_state(everything), _next_stream_state(one_code)] == ["resync", "resync"]

        # Subscribed again: a change made now reaches the socket.
        response = requests.post(f"{server.url}/api/v1/stock/{product.code}/movements",
                                 json={"kind": "receipt", "quantity": 1, "reason": "delivery"},
                                 headers={"Authorization": f"Bearer {manager.raw_token}"}, timeout=30)
        assert response.status_code == 201, response.text
        assert _next_change(one_code)["on_hand"] == 6


def test_a_redis_restart_between_two_probes_still_ends_in_resync(server_on_own_redis, own_redis):
    server = server_on_own_redis
    with _open(server, "", ticket=_ticket_from(server)) as socket:
        # Back at once: no probe may fail, but what was published in between is lost all the same.
        own_redis.stop()
        own_redis.start()

        assert [_next_stream_state(socket), _next_stream_state(socket)] == ["interrupted", "resync"]
