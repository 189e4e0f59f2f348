"""Tests of the live stock WebSocket against real Redis and PostgreSQL: auth, subscriptions, events after commit."""
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from config.asgi import application
from core import aio
from core.tests.factories import ApiClientFactory
from inventory.services import StockChange, stock_apply, stock_receive
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory
from inventory.ws_tickets import ws_ticket_issue

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture(autouse=True)
async def _loop_clients_closed():
    """Each test runs on a loop of its own: the Redis client the consumer used there (tickets) goes with it."""
    yield
    await aio.clients_close()


def _session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _connect(path="/ws/stock/", headers=None, subprotocols=None):
    communicator = WebsocketCommunicator(
        application, path, headers=[ORIGIN, *(headers or [])], subprotocols=subprotocols
    )
    connected, subprotocol = await communicator.connect(timeout=5)
    return communicator, connected, subprotocol


async def _staff_socket(staff_user, path="/ws/stock/"):
    cookie = await sync_to_async(_session_cookie)(staff_user)
    communicator, connected, _ = await _connect(path, headers=[(b"cookie", cookie)])
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    return communicator, hello


async def _next_of_type(communicator, kind: str, timeout: float = 5):
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message["type"] == kind:
            return message


async def test_socket_without_credentials_is_closed_with_4401():
    communicator, connected, _ = await _connect()
    assert connected
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_socket_from_a_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(application, "/ws/stock/", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect(timeout=5)
    assert connected is False


async def test_staff_session_opens_the_stream_subscribed_to_everything(staff_user):
    communicator, hello = await _staff_socket(staff_user)
    assert hello["subscription"] == {"all": True, "codes": [], "categories": [], "unknown_codes": [],
                                     "locations": ["PRINCIPAL"]}
    await communicator.disconnect()


async def test_portuguese_path_serves_the_same_stream(staff_user):
    communicator, hello = await _staff_socket(staff_user, path="/ws/estoque")
    assert hello["type"] == "hello"
    await communicator.disconnect()


async def test_non_staff_session_is_closed_with_4401(django_user_model):
    user = await sync_to_async(django_user_model.objects.create_user)(username="clerk", password="x-123456789")
    cookie = await sync_to_async(_session_cookie)(user)
    communicator, connected, _ = await _connect(headers=[(b"cookie", cookie)])
    assert connected
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_ticket_in_subprotocol_opens_the_stream_once():
    client = await sync_to_async(ApiClientFactory)(scopes=["read"])
    ticket, _ = await sync_to_async(ws_ticket_issue)(principal={"kind": "client", "id": client.pk, "name": client.name})

    first, connected, subprotocol = await _connect(subprotocols=["stockpulse.v1", f"ticket.{ticket}"])
    assert connected and subprotocol == "stockpulse.v1"
    assert (await first.receive_json_from(timeout=5))["type"] == "hello"
    await first.disconnect()

    again, connected, _ = await _connect(subprotocols=["stockpulse.v1", f"ticket.{ticket}"])
    assert await again.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_ticket_in_query_string_opens_the_stream():
    client = await sync_to_async(ApiClientFactory)(scopes=["read"])
    ticket, _ = await sync_to_async(ws_ticket_issue)(principal={"kind": "client", "id": client.pk, "name": client.name})
    communicator, connected, _ = await _connect(f"/ws/stock/?ticket={ticket}")
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    await communicator.disconnect()


async def test_made_up_ticket_is_closed_with_4401():
    communicator, connected, _ = await _connect("/ws/stock/?ticket=wst_not-a-real-ticket")
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_committed_change_reaches_the_socket_with_its_version(staff_user):
    product = await sync_to_async(ProductFactory)(on_hand=10)
    communicator, _ = await _staff_socket(staff_user)

    await sync_to_async(stock_receive)(code=product.code, quantity=5)

    event = await _next_of_type(communicator, "stock.changed")
    assert (event["code"], event["on_hand"], event["reserved"], event["available"]) == (product.code, 15, 0, 15)
    assert event["version"] == 2
    assert event["at"] and event["sent_at"] and event["id"]
    await communicator.disconnect()


def _change_then_roll_back(product_id: int) -> None:
    try:
        with transaction.atomic():
            stock_apply(changes=[StockChange(product_id=product_id, on_hand=7, kind="receipt")])
            raise RuntimeError("abort")
    except RuntimeError:
        pass


async def test_rolled_back_change_publishes_nothing(staff_user):
    product = await sync_to_async(ProductFactory)(on_hand=10)
    communicator, _ = await _staff_socket(staff_user)

    await sync_to_async(_change_then_roll_back)(product.pk)
    assert await communicator.receive_nothing(timeout=0.5)

    # The next committed change is the first event, with the version the rollback never took.
    await sync_to_async(stock_receive)(code=product.code, quantity=1)
    event = await _next_of_type(communicator, "stock.changed")
    assert (event["on_hand"], event["version"]) == (11, 2)
    await communicator.disconnect()


async def test_code_subscription_receives_only_those_codes(staff_user):
    wanted = await sync_to_async(ProductFactory)(on_hand=10)
    other = await sync_to_async(ProductFactory)(on_hand=10)
    cookie = await sync_to_async(_session_cookie)(staff_user)
    communicator, _, _ = await _connect(f"/ws/stock/?codes={wanted.code}", headers=[(b"cookie", cookie)])
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["subscription"]["all"] is False and hello["subscription"]["codes"] == [wanted.code]

    await sync_to_async(stock_receive)(code=other.code, quantity=1)
    await sync_to_async(stock_receive)(code=wanted.code, quantity=2)

    event = await _next_of_type(communicator, "stock.changed")
    assert (event["code"], event["on_hand"]) == (wanted.code, 12)
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_category_subscription_matches_case_insensitively(staff_user):
    drink = await sync_to_async(ProductFactory)(on_hand=3, category="Bebidas Geladas")
    bread = await sync_to_async(ProductFactory)(on_hand=3, category="Padaria")
    communicator, _ = await _staff_socket(staff_user)
    await communicator.send_json_to({"action": "subscribe", "categories": ["bebidas  geladas"]})
    subscribed = await _next_of_type(communicator, "subscribed")
    assert subscribed["categories"] == ["bebidas geladas"]

    await sync_to_async(stock_receive)(code=bread.code, quantity=1)
    await sync_to_async(stock_receive)(code=drink.code, quantity=1)

    event = await _next_of_type(communicator, "stock.changed")
    assert event["code"] == drink.code
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_subscription_changes_on_the_open_socket(staff_user):
    first = await sync_to_async(ProductFactory)(on_hand=5)
    second = await sync_to_async(ProductFactory)(on_hand=5)
    communicator, _ = await _staff_socket(staff_user)
    await communicator.send_json_to({"action": "subscribe", "codes": [first.code]})
    await _next_of_type(communicator, "subscribed")
    await communicator.send_json_to({"action": "subscribe", "codes": [second.code]})
    await _next_of_type(communicator, "subscribed")

    await sync_to_async(stock_receive)(code=first.code, quantity=1)
    await sync_to_async(stock_receive)(code=second.code, quantity=1)

    event = await _next_of_type(communicator, "stock.changed")
    assert event["code"] == second.code
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_alias_subscription_follows_the_canonical_code(staff_user):
    alias = await sync_to_async(UnifiedCodeFactory)(code="OLD-123")
    product = await sync_to_async(lambda: alias.product)()
    communicator, _ = await _staff_socket(staff_user)
    await communicator.send_json_to({"action": "subscribe", "codes": ["old-123", "NOPE-1"]})
    subscribed = await _next_of_type(communicator, "subscribed")
    assert subscribed["codes"] == [product.code] and subscribed["unknown_codes"] == ["NOPE-1"]

    await sync_to_async(stock_receive)(code="OLD-123", quantity=4)

    event = await _next_of_type(communicator, "stock.changed")
    assert (event["code"], event["on_hand"]) == (product.code, 4)
    await communicator.disconnect()


async def test_event_matching_two_subscribed_groups_arrives_once(staff_user):
    product = await sync_to_async(ProductFactory)(on_hand=5, category="frios")
    communicator, _ = await _staff_socket(staff_user)
    await communicator.send_json_to({"action": "subscribe", "codes": [product.code], "categories": ["frios"]})
    await _next_of_type(communicator, "subscribed")

    await sync_to_async(stock_receive)(code=product.code, quantity=1)

    event = await _next_of_type(communicator, "stock.changed")
    assert event["on_hand"] == 6
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_reservation_event_reaches_subscribers_of_its_line_codes(staff_user):
    from core.realtime import realtime_publish

    product = await sync_to_async(ProductFactory)(on_hand=5)
    communicator, _ = await _staff_socket(staff_user)
    await communicator.send_json_to({"action": "subscribe", "codes": [product.code]})
    await _next_of_type(communicator, "subscribed")

    event = {"type": "reservation.created", "reservation": "r-1", "lines": [{"code": product.code, "quantity": 2}],
             "at": "2025-01-01T00:00:00+00:00"}
    await sync_to_async(realtime_publish)([event])

    received = await _next_of_type(communicator, "reservation.created")
    assert received["lines"] == [{"code": product.code, "quantity": 2}]
    await communicator.disconnect()


async def test_bad_messages_get_an_error_and_the_socket_stays_open(staff_user):
    communicator, _ = await _staff_socket(staff_user)
    await communicator.send_to(text_data="not json")
    assert (await communicator.receive_json_from(timeout=5))["code"] == "malformed"
    await communicator.send_to(text_data='{"action": "subscribe", "codes": ["CAFE\\u0000"]}')
    assert (await communicator.receive_json_from(timeout=5))["code"] == "malformed"
    await communicator.send_json_to({"action": "subscribe", "codes": "A,B"})
    assert (await communicator.receive_json_from(timeout=5))["code"] == "invalid_subscription"
    await communicator.send_json_to({"action": "dance"})
    assert (await communicator.receive_json_from(timeout=5))["code"] == "unknown_action"
    await communicator.send_json_to({"action": "ping"})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "pong"
    await communicator.disconnect()


async def test_server_sends_heartbeats(staff_user, settings):
    settings.WS_HEARTBEAT_SECONDS = 0.2
    communicator, hello = await _staff_socket(staff_user)
    assert hello["heartbeat_seconds"] == 0.2
    beat = await communicator.receive_json_from(timeout=5)
    assert beat["type"] == "heartbeat"
    await communicator.disconnect()


def test_frames_are_plain_json_text():
    # The relay sends the publisher's text as is: it must parse back to the event.
    from core.realtime import realtime_batch

    batch = realtime_batch([{"type": "stock.changed", "code": "A", "version": 3, "at": "x"}])
    (_, text), = batch["stock.all"]["items"]
    assert json.loads(text)["version"] == 3


async def test_socket_whose_groups_cannot_be_subscribed_is_closed_with_4503(staff_user, settings):
    # Channel layer unreachable (the session and the database still answer): no "hello" that promises events.
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"], "prefix": "test-down"},
    }}
    cookie = await sync_to_async(_session_cookie)(staff_user)
    communicator, connected, _ = await _connect(headers=[(b"cookie", cookie)])
    assert connected

    closed = await communicator.receive_output(timeout=10)

    assert closed == {"type": "websocket.close", "code": 4503}
