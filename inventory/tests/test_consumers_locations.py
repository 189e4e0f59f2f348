"""Tests of the live stock WebSocket by location: which locations a socket follows, who may follow which."""
import pytest
from asgiref.sync import sync_to_async

from core.tests.factories import ApiClientFactory
from inventory.models import Location
from inventory.services import stock_receive
from inventory.tests.factories import LocationFactory, ProductFactory, stock_at_location
from inventory.tests.test_consumers import _connect, _next_of_type, _session_cookie, _staff_socket
from inventory.ws_tickets import ws_ticket_issue

pytestmark = pytest.mark.django_db(transaction=True)


def _product_at(location: Location, on_hand: int = 5):
    product = ProductFactory(on_hand=on_hand)
    stock_at_location(product, location, on_hand=on_hand)
    return product


def _limited_staff(django_user_model, *locations: Location):
    user = django_user_model.objects.create_user(username="gerente-zs", password="x-123456789", is_staff=True)
    for location in locations:
        location.staff_users.add(user)
    return user


async def _socket_of(user, path: str):
    cookie = await sync_to_async(_session_cookie)(user)
    communicator, connected, _ = await _connect(path, headers=[(b"cookie", cookie)])
    assert connected
    return communicator


async def _only_stock_event(communicator, *, location: str, on_hand: int) -> None:
    """The next stock event is this one, and nothing else comes; then the socket is closed."""
    event = await _next_of_type(communicator, "stock.changed")
    assert (event["location"], event["on_hand"]) == (location, on_hand)
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_socket_without_locations_follows_the_default_one_only(staff_user):
    dark = await sync_to_async(LocationFactory)(code="DARK-ZS")
    product = await sync_to_async(_product_at)(dark)
    communicator, hello = await _staff_socket(staff_user)
    assert hello["subscription"]["locations"] == ["PRINCIPAL"]

    await sync_to_async(stock_receive)(code=product.code, quantity=1, location="DARK-ZS")
    await sync_to_async(stock_receive)(code=product.code, quantity=2)

    await _only_stock_event(communicator, location="PRINCIPAL", on_hand=7)


async def test_locations_parameter_follows_only_those_locations(staff_user):
    dark = await sync_to_async(LocationFactory)(code="DARK-ZS")
    await sync_to_async(LocationFactory)(code="DARK-ZN")
    product = await sync_to_async(_product_at)(dark)
    communicator, hello = await _staff_socket(staff_user, path="/ws/stock/?locations=dark-zs,DARK-ZN")
    assert hello["subscription"]["locations"] == ["DARK-ZS", "DARK-ZN"]

    await sync_to_async(stock_receive)(code=product.code, quantity=2)
    await sync_to_async(stock_receive)(code=product.code, quantity=1, location="DARK-ZS")

    event = await _next_of_type(communicator, "stock.changed")
    assert (event["location"], event["on_hand"], event["version"]) == ("DARK-ZS", 6, 2)
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_locations_all_follows_every_location_with_versions_of_their_own(staff_user):
    dark = await sync_to_async(LocationFactory)(code="DARK-ZS")
    product = await sync_to_async(_product_at)(dark)
    communicator, hello = await _staff_socket(staff_user, path="/ws/stock/?locations=all")
    assert hello["subscription"]["locations"] == ["PRINCIPAL", "DARK-ZS"]

    await sync_to_async(stock_receive)(code=product.code, quantity=1, location="DARK-ZS")
    await sync_to_async(stock_receive)(code=product.code, quantity=1, location="DARK-ZS")
    await sync_to_async(stock_receive)(code=product.code, quantity=4)

    seen = [await _next_of_type(communicator, "stock.changed") for _ in range(3)]
    assert [(e["location"], e["on_hand"], e["version"]) for e in seen] == [
        ("DARK-ZS", 6, 2), ("DARK-ZS", 7, 3), ("PRINCIPAL", 9, 2)]
    await communicator.disconnect()


async def test_unknown_location_gets_an_error_frame_and_close_4400(staff_user):
    cookie = await sync_to_async(_session_cookie)(staff_user)
    communicator, connected, _ = await _connect("/ws/stock/?locations=PRINCIPAL,NOWHERE", headers=[(b"cookie", cookie)])
    assert connected

    error = await communicator.receive_json_from(timeout=5)
    closed = await communicator.receive_output(timeout=5)

    assert (error["type"], error["code"], error["details"]) == ("error", "unknown_location", {"locations": ["NOWHERE"]})
    assert closed == {"type": "websocket.close", "code": 4400, "reason": "unknown_location"}


async def test_limited_staff_asking_another_location_is_refused_with_4403(django_user_model):
    dark = await sync_to_async(LocationFactory)(code="DARK-ZS")
    await sync_to_async(LocationFactory)(code="DARK-ZN")
    user = await sync_to_async(_limited_staff)(django_user_model, dark)
    communicator = await _socket_of(user, "/ws/stock/?locations=DARK-ZN")

    error = await communicator.receive_json_from(timeout=5)
    closed = await communicator.receive_output(timeout=5)

    assert (error["code"], error["details"]["locations"], error["details"]["allowed"]) == (
        "location_forbidden", ["DARK-ZN"], ["DARK-ZS"])
    assert closed == {"type": "websocket.close", "code": 4403, "reason": "location_forbidden"}


async def test_limited_staff_naming_no_location_is_refused_the_default_one(django_user_model):
    dark = await sync_to_async(LocationFactory)(code="DARK-ZS")
    user = await sync_to_async(_limited_staff)(django_user_model, dark)
    communicator = await _socket_of(user, "/ws/stock/")

    error = await communicator.receive_json_from(timeout=5)

    assert (error["code"], error["details"]["locations"]) == ("location_forbidden", ["PRINCIPAL"])
    assert (await communicator.receive_output(timeout=5))["code"] == 4403


async def test_limited_staff_with_all_follows_only_their_locations(django_user_model):
    dark = await sync_to_async(LocationFactory)(code="DARK-ZS")
    north = await sync_to_async(LocationFactory)(code="DARK-ZN")
    product = await sync_to_async(_product_at)(dark)
    await sync_to_async(stock_at_location)(product, north, on_hand=5)
    user = await sync_to_async(_limited_staff)(django_user_model, dark)
    communicator = await _socket_of(user, "/ws/stock/?locations=all")
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["subscription"]["locations"] == ["DARK-ZS"]

    await sync_to_async(stock_receive)(code=product.code, quantity=1, location="DARK-ZN")
    await sync_to_async(stock_receive)(code=product.code, quantity=1)
    await sync_to_async(stock_receive)(code=product.code, quantity=3, location="DARK-ZS")

    await _only_stock_event(communicator, location="DARK-ZS", on_hand=8)


async def test_ticket_of_a_limited_client_follows_its_locations_only():
    await sync_to_async(LocationFactory)(code="DARK-ZS")
    client = await sync_to_async(ApiClientFactory)(scopes=["read"], location_codes=["DARK-ZS"])
    issue = sync_to_async(ws_ticket_issue)
    principal = {"kind": "client", "id": client.pk, "name": client.name}

    ticket, _ = await issue(principal=principal)
    refused, _, _ = await _connect(f"/ws/stock/?locations=PRINCIPAL&ticket={ticket}")
    assert (await refused.receive_json_from(timeout=5))["code"] == "location_forbidden"
    assert (await refused.receive_output(timeout=5))["code"] == 4403

    ticket, _ = await issue(principal=principal)
    allowed, _, _ = await _connect(f"/ws/stock/?locations=DARK-ZS&ticket={ticket}")
    assert (await allowed.receive_json_from(timeout=5))["subscription"]["locations"] == ["DARK-ZS"]
    await allowed.disconnect()


async def test_subscribe_message_moves_the_socket_to_other_locations(staff_user):
    dark = await sync_to_async(LocationFactory)(code="DARK-ZS")
    product = await sync_to_async(_product_at)(dark)
    communicator, _ = await _staff_socket(staff_user)
    await communicator.send_json_to({"action": "subscribe", "all": True, "locations": ["DARK-ZS"]})
    subscribed = await _next_of_type(communicator, "subscribed")
    assert subscribed["locations"] == ["DARK-ZS"]

    await sync_to_async(stock_receive)(code=product.code, quantity=2)
    await sync_to_async(stock_receive)(code=product.code, quantity=1, location="DARK-ZS")

    await _only_stock_event(communicator, location="DARK-ZS", on_hand=6)


async def test_refused_subscribe_message_keeps_the_subscription_it_had(django_user_model):
    dark = await sync_to_async(LocationFactory)(code="DARK-ZS")
    await sync_to_async(LocationFactory)(code="DARK-ZN")
    product = await sync_to_async(_product_at)(dark)
    user = await sync_to_async(_limited_staff)(django_user_model, dark)
    communicator = await _socket_of(user, "/ws/stock/?locations=DARK-ZS")
    await communicator.receive_json_from(timeout=5)

    await communicator.send_json_to({"action": "subscribe", "all": True, "locations": ["DARK-ZN"]})
    error = await communicator.receive_json_from(timeout=5)
    await communicator.send_json_to({"action": "subscribe", "all": True, "locations": ["NOWHERE"]})
    unknown = await communicator.receive_json_from(timeout=5)
    await sync_to_async(stock_receive)(code=product.code, quantity=1, location="DARK-ZS")

    assert (error["code"], unknown["code"]) == ("location_forbidden", "unknown_location")
    event = await _next_of_type(communicator, "stock.changed")
    assert (event["location"], event["on_hand"]) == ("DARK-ZS", 6)
    await communicator.disconnect()


async def test_reservation_event_reaches_each_line_location_once_with_the_lines_there(staff_user):
    from core.realtime import realtime_publish

    await sync_to_async(LocationFactory)(code="DARK-ZS")
    at_default, hello = await _staff_socket(staff_user)
    at_both, _ = await _staff_socket(staff_user, path="/ws/stock/?locations=PRINCIPAL,DARK-ZS")
    at_dark, _ = await _staff_socket(staff_user, path="/ws/stock/?locations=DARK-ZS")
    event = {"type": "reservation.created", "reservation_id": "r-1", "at": "2025-01-01T00:00:00+00:00",
             "lines": [{"code": "A-1", "location": "DARK-ZS", "quantity": 2}]}

    await sync_to_async(realtime_publish)([event])
    await sync_to_async(realtime_publish)([{**event, "reservation_id": "r-2", "lines": [
        {"code": "A-1", "location": "DARK-ZS", "quantity": 1},
        {"code": "A-1", "location": "PRINCIPAL", "quantity": 1}]}])

    def seen(event):
        return event["reservation_id"], [(line["location"], line["quantity"]) for line in event["lines"]]

    assert seen(await _next_of_type(at_dark, "reservation.created")) == ("r-1", [("DARK-ZS", 2)])
    assert seen(await _next_of_type(at_dark, "reservation.created")) == ("r-2", [("DARK-ZS", 1)])
    assert seen(await _next_of_type(at_default, "reservation.created")) == ("r-2", [("PRINCIPAL", 1)])
    # Following both locations: r-2 once at each, with the lines there (the two groups' order may vary).
    assert sorted([seen(await _next_of_type(at_both, "reservation.created")) for _ in range(3)]) == [
        ("r-1", [("DARK-ZS", 2)]), ("r-2", [("DARK-ZS", 1)]), ("r-2", [("PRINCIPAL", 1)])]
    for communicator in (at_default, at_both, at_dark):
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()


async def test_a_cart_at_two_locations_reaches_each_socket_with_only_the_lines_there(staff_user):
    from reservations.services import reservation_create

    dark = await sync_to_async(LocationFactory)(code="DARK-ZS")
    here, there = await sync_to_async(_product_at)(dark), await sync_to_async(_product_at)(dark)
    dark_socket, _ = await _staff_socket(staff_user, path="/ws/stock/?locations=DARK-ZS")
    default_socket, _ = await _staff_socket(staff_user)
    both_socket, _ = await _staff_socket(staff_user, path="/ws/stock/?locations=all")

    reservation = await sync_to_async(reservation_create)(client=None, lines=[
        {"code": here.code, "quantity": 2, "location": "DARK-ZS"}, {"code": there.code, "quantity": 1}])

    at_dark = await _next_of_type(dark_socket, "reservation.created")
    at_default = await _next_of_type(default_socket, "reservation.created")
    assert at_dark["reservation_id"] == at_default["reservation_id"] == str(reservation.pk)
    assert at_dark["lines"] == [{"code": here.code, "location": "DARK-ZS", "quantity": 2}]
    assert at_default["lines"] == [{"code": there.code, "location": "PRINCIPAL", "quantity": 1}]
    seen = [await _next_of_type(both_socket, "reservation.created") for _ in range(2)]
    assert sorted(line["location"] for event in seen for line in event["lines"]) == ["DARK-ZS", "PRINCIPAL"]
    for communicator in (dark_socket, default_socket, both_socket):
        await communicator.disconnect()


async def test_subscribe_after_the_user_left_a_location_is_refused_there(django_user_model):
    dark = await sync_to_async(LocationFactory)(code="DARK-ZS")
    north = await sync_to_async(LocationFactory)(code="DARK-ZN")
    user = await sync_to_async(_limited_staff)(django_user_model, dark, north)
    communicator = await _socket_of(user, "/ws/stock/?locations=DARK-ZS")
    assert (await communicator.receive_json_from(timeout=5))["subscription"]["locations"] == ["DARK-ZS"]

    await sync_to_async(north.staff_users.remove)(user)
    await communicator.send_json_to({"action": "subscribe", "all": True, "locations": ["DARK-ZN"]})
    error = await communicator.receive_json_from(timeout=5)

    assert (error["code"], error["details"]["locations"], error["details"]["allowed"]) == (
        "location_forbidden", ["DARK-ZN"], ["DARK-ZS"])
    await communicator.send_json_to({"action": "subscribe", "all": True, "locations": ["DARK-ZS"]})
    assert (await _next_of_type(communicator, "subscribed"))["locations"] == ["DARK-ZS"]
    await communicator.disconnect()
