"""The one publisher of realtime events: channel-layer group sends, called only after commit.

Delivery over the channel layer is at-most-once; clients recover with the stock snapshot and
per-SKU versions. A failure to publish never fails the write that caused it: it is logged and counted.

Events of one call are batched: each target group gets one message holding every event meant for
it, and each event is serialised to JSON once here rather than once per connected socket.
"""
import asyncio
import json
import logging
import os
import threading
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from core.aio import LoopBatcher
from core.cache import REDIS_UNREACHABLE, redis_circuit
from core.groups import groups_for_event
from core.metrics import EVENTS_FAILED, EVENTS_PUBLISHED

logger = logging.getLogger(__name__)

# The consumer handler that relays a batch (channels maps "realtime.batch" to realtime_batch).
BATCH_MESSAGE_TYPE = "realtime.batch"


class _PublisherLoop:
    """One event loop per process, on a daemon thread, that owns the publisher's Redis connection.

    ``async_to_sync`` outside a running loop (Celery, management commands) builds a loop and a
    fresh Redis connection per call; one long-lived loop keeps a single connection instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # After a fork (Celery prefork) the thread is gone: start a new one in the child.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="realtime-publisher", daemon=True)
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_publisher_loop = _PublisherLoop()


def realtime_batch(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{group: channel-layer message} for these events; each event gets an id and its JSON text."""
    sent_at = timezone.now().isoformat()
    per_group: dict[str, list[list[str]]] = {}
    for event in events:
        # Copy: callers may reuse their dicts, and id/sent_at belong to this publication only.
        body = {**event, "id": uuid.uuid4().hex, "sent_at": sent_at}
        item = [body["id"], json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"))]
        for group in groups_for_event(event):
            per_group.setdefault(group, []).append(item)
    # "group" lets one per-process reader (core/fanout.py) subscribed to many groups route each batch.
    return {group: {"type": BATCH_MESSAGE_TYPE, "group": group, "items": items} for group, items in per_group.items()}


def realtime_publish(events: list[dict[str, Any]]) -> None:
    """Send each event to the groups it belongs to. Safe to call from sync code after commit."""
    if not events:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    if _redis_known_down(events):
        return
    messages = realtime_batch(events)
    future = asyncio.run_coroutine_threadsafe(_send_all(layer, messages), _publisher_loop.get())
    try:
        future.result(timeout=settings.REALTIME_PUBLISH_TIMEOUT)
    except Exception as exc:
        future.cancel()
        if isinstance(exc, REDIS_UNREACHABLE):
            redis_circuit.mark_down(exc)
        for event in events:
            EVENTS_FAILED.labels(event.get("type", "unknown")).inc()
        logger.error(
            "realtime publish failed",
            extra={"events": len(events), "error": repr(exc) if not isinstance(exc, FutureTimeout) else "timeout"},
        )
        return
    for event in events:
        EVENTS_PUBLISHED.labels(event.get("type", "unknown")).inc()


async def realtime_publish_async(events: list[dict[str, Any]]) -> None:
    """``realtime_publish`` for async code already on a server loop (the reservation fast path): same
    batches, sent from this loop, with the same failure rule (logged and counted, never raised)."""
    if not events:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    if _redis_known_down(events):
        return
    try:
        async with asyncio.timeout(settings.REALTIME_PUBLISH_TIMEOUT):
            await _send_all(layer, realtime_batch(events))
    except Exception as exc:
        if isinstance(exc, REDIS_UNREACHABLE):
            redis_circuit.mark_down(exc)
        for event in events:
            EVENTS_FAILED.labels(event.get("type", "unknown")).inc()
        logger.error("realtime publish failed", extra={"events": len(events), "error": repr(exc)})
        return
    for event in events:
        EVENTS_PUBLISHED.labels(event.get("type", "unknown")).inc()


# One task per loop sends whatever has gathered since its last send: under load the events of many
# requests leave in one message per group instead of one each (fewer Redis round trips per event),
# in the order they were handed in.
_loop_publisher = LoopBatcher("realtime-loop-publisher", realtime_publish_async)


def realtime_publish_soon(events: list[dict[str, Any]]) -> None:
    """Hand events to this loop's publisher and return at once (async code after commit, e.g. the
    reservation fast path): same batches and failure rule as ``realtime_publish_async``."""
    _loop_publisher.add(events)


async def realtime_publisher_drain() -> None:
    """Publish what is pending on this loop and stop its publisher task (tests, before their loop ends)."""
    await _loop_publisher.drain()


def _redis_known_down(events: list[dict[str, Any]]) -> bool:
    """While Redis is known down (core/cache.py), drop at once, counted as failed, instead of holding
    every write for the publish timeout; dashboards resync from the snapshot when it is back."""
    if not redis_circuit.is_down():
        return False
    for event in events:
        EVENTS_FAILED.labels(event.get("type", "unknown")).inc()
    return True


async def _send_all(layer, messages: dict[str, dict[str, Any]]) -> None:
    for group, message in messages.items():
        await layer.group_send(group, message)
