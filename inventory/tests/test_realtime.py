"""Tests of the publisher (groups, batching, Redis failures) and of the WebSocket ticket endpoint."""
import asyncio
import json
import time
from functools import partial

import pytest
import redis
from channels.layers import get_channel_layer
from django.conf import settings as django_settings

from core import aio
from core.cache import redis_circuit
from core.groups import (
    GROUP_ALL, events_per_location, group_all, group_for_category, group_for_code, groups_for_subscription,
)
from core.metrics import EVENTS_FAILED
from core.realtime import realtime_batch, realtime_publish
from core.tests.outage import ThrowawayRedis
from inventory.models import Stock
from inventory.services import stock_receive
from inventory.tests.factories import ProductFactory
from inventory.ws_tickets import ws_ticket_key
from inventory.ws_tickets import ws_ticket_redeem


def _groups_for_event(event):
    """Every group the event goes to, over the locations it names."""
    return [group for _part, groups in events_per_location(event) for group in groups]


def test_safe_code_keeps_a_readable_group_name():
    assert group_for_code("SKU-001.A_b") == "stock.code.SKU-001.A_b"


def test_codes_outside_the_group_alphabet_get_distinct_valid_names():
    names = {group_for_code("A/B"), group_for_code("A_B"), group_for_code("A" * 64 + "/")}
    assert len(names) == 3
    for name in names:
        assert len(name) < 100 and all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in name)


def test_categories_group_ignores_case_and_spacing_but_not_accents():
    assert group_for_category("Bebidas  Geladas") == group_for_category("bebidas geladas")
    assert group_for_category("Açougue") != group_for_category("Acougue")


def test_stock_event_goes_to_everyone_its_code_and_its_category():
    groups = _groups_for_event({"type": "stock.changed", "code": "A1", "category": "Frios"})
    assert groups == [GROUP_ALL, group_for_code("A1"), group_for_category("frios")]


def test_reservation_event_goes_to_each_line_code_once():
    event = {"type": "reservation.created", "lines": [{"code": "A1", "quantity": 1}, {"code": "A1", "quantity": 2},
                                                       {"code": "B2", "quantity": 1}]}
    assert _groups_for_event(event) == [GROUP_ALL, group_for_code("A1"), group_for_code("B2")]


def test_default_location_keeps_the_group_names_it_had_before_locations():
    assert group_all("PRINCIPAL") == group_all(None) == GROUP_ALL
    assert group_for_code("A1", "PRINCIPAL") == "stock.code.A1"


def test_other_locations_get_groups_of_their_own_within_the_group_alphabet():
    names = {group_all("DARK-ZS"), group_for_code("A1", "DARK-ZS"), group_for_code("A1", "DARK-ZN"),
             group_for_code("A" * 64, "LOJA-MUITO-LONGA-0000001"), group_for_category("frios", "DARK-ZS")}
    assert group_for_code("A1", "DARK-ZS") == "stock.l.DARK-ZS.code.A1"
    assert len(names) == 5 and GROUP_ALL not in names
    for name in names:
        assert len(name) < 100 and all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in name)


def test_stock_event_goes_to_the_groups_of_its_location_only():
    groups = _groups_for_event({"type": "stock.changed", "code": "A1", "location": "DARK-ZS", "category": "Frios"})
    assert groups == [group_all("DARK-ZS"), group_for_code("A1", "DARK-ZS"), group_for_category("frios", "DARK-ZS")]


def test_reservation_event_goes_to_each_line_location_with_the_codes_there():
    event = {"type": "reservation.created", "lines": [{"code": "A1", "location": "DARK-ZS", "quantity": 1},
                                                       {"code": "B2", "location": "PRINCIPAL", "quantity": 1}]}
    assert _groups_for_event(event) == [group_all("DARK-ZS"), group_for_code("A1", "DARK-ZS"),
                                       GROUP_ALL, group_for_code("B2")]


def test_subscription_at_several_locations_joins_each_location_group():
    assert groups_for_subscription(everything=True, locations=["PRINCIPAL", "DARK-ZS"]) == {
        GROUP_ALL, group_all("DARK-ZS")}
    assert groups_for_subscription(codes=["A1"], everything=False, locations=["DARK-ZS"]) == {
        group_for_code("A1", "DARK-ZS")}


def test_batch_sends_one_message_per_group_with_every_event_for_it():
    events = [{"type": "stock.changed", "code": "A1", "version": 1, "at": "t"},
              {"type": "stock.changed", "code": "B2", "version": 4, "at": "t"}]
    batch = realtime_batch(events)
    assert set(batch) == {GROUP_ALL, group_for_code("A1"), group_for_code("B2")}
    assert [json.loads(text)["code"] for _, text in batch[GROUP_ALL]["items"]] == ["A1", "B2"]
    assert batch[group_for_code("B2")]["items"][0][0] == batch[GROUP_ALL]["items"][1][0]
    assert "id" not in events[0]


@pytest.mark.django_db(transaction=True)
def test_publish_reaches_a_group_member_through_redis():
    layer = get_channel_layer()

    async def listen():
        channel = await layer.new_channel()
        await layer.group_add(GROUP_ALL, channel)
        await asyncio.get_running_loop().run_in_executor(
            None, realtime_publish, [{"type": "order.received", "order": "o-1", "at": "t"}]
        )
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        await layer.group_discard(GROUP_ALL, channel)
        return message

    message = asyncio.run(listen())
    (_, text), = message["items"]
    assert json.loads(text)["order"] == "o-1"


@pytest.mark.django_db(transaction=True)
def test_write_succeeds_and_failure_is_counted_when_redis_is_down(settings, caplog):
    product = ProductFactory(on_hand=3)
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"], "prefix": "test-down"},
    }}
    failed_before = EVENTS_FAILED.labels("stock.changed")._value.get()

    stock = stock_receive(code=product.code, quantity=2)

    assert stock.on_hand == 5
    assert Stock.objects.get(product=product).on_hand == 5
    assert EVENTS_FAILED.labels("stock.changed")._value.get() == failed_before + 1
    assert "realtime publish failed" in caplog.text


@pytest.mark.django_db
def test_ticket_endpoint_gives_a_single_use_ticket_to_a_read_client(reader):
    response = reader.post("/api/v1/ws-ticket")
    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == django_settings.WS_TICKET_TTL_SECONDS
    assert body["subprotocols"] == ["stockpulse.v1", f"ticket.{body['ticket']}"]
    async def redeemed_twice():
        try:
            return [await ws_ticket_redeem(ticket=body["ticket"]) for _ in range(2)]
        finally:
            await aio.clients_close()

    principal, again = asyncio.run(redeemed_twice())
    assert principal["kind"] == "client" and principal["name"] == reader.api_client.name
    assert again is None


@pytest.mark.django_db
def test_ticket_is_stored_as_a_digest_that_expires(reader):
    ticket = reader.post("/api/v1/ws-ticket").json()["ticket"]
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        ttl = client.ttl(ws_ticket_key(ticket))
        stored_plainly = [k for k in client.scan_iter(match=f"*{ticket}*")]
    finally:
        client.close()
    assert 0 < ttl <= django_settings.WS_TICKET_TTL_SECONDS
    assert stored_plainly == []


@pytest.mark.django_db
def test_ticket_endpoint_refuses_a_client_without_read_scope(api_client_with_scopes):
    response = api_client_with_scopes("reserve").post("/api/v1/ws-ticket")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_ticket_endpoint_refuses_anonymous_callers(client):
    response = client.post("/api/v1/ws-ticket")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_ticket_endpoint_answers_503_in_the_error_shape_when_redis_is_down(reader, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = reader.post("/api/v1/ws-ticket")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"


@pytest.mark.django_db
def test_dashboard_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_dashboard_renders_for_staff_in_portuguese_and_english(client, staff_user):
    ProductFactory(category="Bebidas")
    client.force_login(staff_user)
    pt = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="pt-br")
    en = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="en")
    assert pt.status_code == en.status_code == 200
    assert "Estoque ao vivo" in pt.content.decode() and "Live stock" in en.content.decode()
    assert "Bebidas" in pt.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_group_that_missed_events_is_told_to_resync_with_the_next_batch(settings, tmp_path):
    own = ThrowawayRedis(tmp_path / "redis").start()
    try:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                               "CONFIG": {"hosts": [own.url], "prefix": "test-missed"}}}
        product = ProductFactory(on_hand=3)
        own.stop()
        stock_receive(code=product.code, quantity=2)  # its event cannot be published
        own.start()
        while redis_circuit.is_down():  # Redis is tried again once the circuit's probe time has passed
            time.sleep(0.05)
        layer = get_channel_layer()

        async def listen():
            channel = await layer.new_channel()
            await layer.group_add(group_for_code(product.code), channel)
            await asyncio.get_running_loop().run_in_executor(None, partial(stock_receive, code=product.code, quantity=1))
            message = await asyncio.wait_for(layer.receive(channel), timeout=5)
            await layer.flush()
            return message

        message = asyncio.run(listen())
    finally:
        own.stop()

    kinds = [json.loads(text)["type"] for _, text in message["items"]]
    assert kinds == ["resync", "stock.changed"]
    assert json.loads(message["items"][1][1])["on_hand"] == 6


def test_an_event_with_lines_at_two_locations_is_split_with_each_location_s_lines_only():
    from core.groups import events_per_location

    event = {"type": "order.received", "order_id": "o1", "lines": [
        {"code": "A1", "location": "DARK-ZS", "quantity": 1}, {"code": "B2", "location": "PRINCIPAL", "quantity": 2}]}

    parts = events_per_location(event)

    assert parts == [
        ({"type": "order.received", "order_id": "o1", "lines": [{"code": "A1", "location": "DARK-ZS", "quantity": 1}]},
         [group_all("DARK-ZS"), group_for_code("A1", "DARK-ZS")]),
        ({"type": "order.received", "order_id": "o1", "lines": [{"code": "B2", "location": "PRINCIPAL", "quantity": 2}]},
         [GROUP_ALL, group_for_code("B2")])]
    assert len(event["lines"]) == 2  # the caller's event is left as it was
