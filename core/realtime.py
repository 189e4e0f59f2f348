"""The one publisher of realtime events: channel-layer group sends, called only after commit.

Delivery over the channel layer is at-most-once; clients recover with the stock snapshot and
per-SKU versions. A failure to publish never fails the write that caused it: it is logged and counted.
"""
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from core.metrics import EVENTS_FAILED, EVENTS_PUBLISHED

logger = logging.getLogger(__name__)

GROUP_ALL = "stock.all"


def realtime_publish(events: list[dict[str, Any]]) -> None:
    """Send each event to the groups it belongs to. Safe to call from sync code after commit."""
    if not events:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(_send_all)(layer, events)
    except Exception:
        for event in events:
            EVENTS_FAILED.labels(event["type"]).inc()
        logger.exception("realtime publish failed", extra={"events": len(events)})
        return
    for event in events:
        EVENTS_PUBLISHED.labels(event["type"]).inc()


async def _send_all(layer, events: list[dict[str, Any]]) -> None:
    for event in events:
        await layer.group_send(GROUP_ALL, {"type": "stock.event", "event": event})
