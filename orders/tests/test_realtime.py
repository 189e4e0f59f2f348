"""Dashboards hear about orders: order.received and order.processed reach the channel layer after commit."""
import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from core.groups import GROUP_ALL
from core.tests.factories import ApiClientFactory
from inventory.tests.factories import ProductFactory
from orders.services import order_create, order_process


def _place_and_process() -> str:
    try:
        client = ApiClientFactory(scopes=["reserve"])
        ProductFactory(code="BOLO-1", on_hand=3)
        order = order_create(client=client, lines=[{"code": "BOLO-1", "quantity": 1}])
        order_process(order_id=order.pk)
        return str(order.pk)
    finally:
        connection.close()


async def _events_until(layer, channel: str, wanted: str, timeout: float = 5.0) -> list[dict]:
    seen: list[dict] = []
    async with asyncio.timeout(timeout):
        while not any(e["type"] == wanted for e in seen):
            message = await layer.receive(channel)
            seen.extend(json.loads(text) for _, text in message["items"])
    return seen


@pytest.mark.django_db(transaction=True)
async def test_order_events_reach_the_dashboard_feed():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP_ALL, channel)
    try:
        order_id = await sync_to_async(_place_and_process)()
        events = await _events_until(layer, channel, "order.processed")
    finally:
        await layer.group_discard(GROUP_ALL, channel)

    orders = [e for e in events if e["type"].startswith("order.")]
    assert [e["type"] for e in orders] == ["order.received", "order.processed"]
    assert all(e["order_id"] == order_id for e in orders)
    assert orders[1]["invoice"] == "1-1" and orders[1]["lines"] == [{"code": "BOLO-1", "location": "PRINCIPAL", "quantity": 1}]
