"""The one publisher of realtime events: channel-layer group sends, called only after commit.

Delivery over the channel layer is at-most-once; clients recover with the stock snapshot and
per-SKU versions. A failure to publish never fails the write that caused it: it is logged and counted.

Every path hands its events to one sender per process, which lets them leave in version order
per product (core/publish_order.py) over one Redis connection. Events gathered while a send is
under way leave together: each target group gets one message holding every event meant for it, and
each event is serialised to JSON once here rather than once per connected socket.
"""
import asyncio
import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from core.cache import REDIS_UNREACHABLE, redis_circuit
from core.groups import events_per_location
from core.metrics import EVENTS_FAILED, EVENTS_PUBLISHED
from core.publish_order import Claim, PublishOrder, Unit

logger = logging.getLogger(__name__)

# The consumer handler that relays a batch (channels maps "realtime.batch" to realtime_batch).
BATCH_MESSAGE_TYPE = "realtime.batch"


# A held unit waits at most this long for the events of this process that must leave before it
# (core/publish_order.py); the race it covers, between a commit and its hand-over, takes microseconds
# to a few milliseconds.
ORDER_HOLD_SECONDS = 0.5
# Groups whose events this process could not publish get a "resync" item with the next batch that
# goes out, or after this long if no batch comes.
MISSED_RETRY_SECONDS = 5.0


class _Publisher:
    """This process's one sender: an event loop on a daemon thread, with the publisher's Redis
    connection, that sends every unit of events in the order ``PublishOrder`` lets them leave.

    One sender for every path (sync views and Celery after commit, the fast path on the server
    loop) also means one connection: PUBLISHes of one connection reach Redis, and subscribers, in
    the order they were sent. (``async_to_sync`` outside a running loop would build a loop and a
    fresh Redis connection per call; one long-lived loop keeps a single connection instead.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._order = PublishOrder(ORDER_HOLD_SECONDS)
        self._sending = 0
        # Per channel layer, the groups that missed events of this process since a send went through.
        self._missed: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

    def _started(self) -> tuple[asyncio.AbstractEventLoop, PublishOrder]:
        with self._lock:
            # After a fork (Celery prefork) the thread is gone: start a new one, with a new order, in the child.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                self._order = PublishOrder(ORDER_HOLD_SECONDS)
                self._wakeup = asyncio.Event()
                self._sending = 0
                self._missed = weakref.WeakKeyDictionary()
                threading.Thread(target=loop.run_forever, name="realtime-publisher", daemon=True).start()
                asyncio.run_coroutine_threadsafe(self._run(self._order, self._wakeup), loop)
                self._loop, self._pid = loop, os.getpid()
            return self._loop, self._order

    def order(self) -> PublishOrder:
        return self._started()[1]

    def hand(self, events: list[dict[str, Any]], claim: Claim | None) -> Unit:
        loop, order = self._started()
        unit = order.hand(events, claim)
        loop.call_soon_threadsafe(self._wakeup.set)
        return unit

    def release(self, claim: Claim) -> None:
        loop, order = self._started()
        order.release(claim)
        loop.call_soon_threadsafe(self._wakeup.set)

    def pending(self) -> int:
        return self._order.pending() + self._sending if self._loop is not None else 0

    async def _run(self, order: PublishOrder, wakeup: asyncio.Event) -> None:
        retry_at: float | None = None
        while True:
            deadline = min((t for t in (order.next_deadline(), retry_at) if t is not None), default=None)
            try:
                async with asyncio.timeout_at(None if deadline is None else
                                              asyncio.get_running_loop().time() + deadline - time.monotonic()):
                    await wakeup.wait()
            except TimeoutError:
                pass
            wakeup.clear()
            self._sending += 1  # before take(): drain never sees nothing pending while units are on their way
            try:
                units = order.take()
                if units or (retry_at is not None and time.monotonic() >= retry_at):
                    layer = get_channel_layer()
                    missed = self._missed.setdefault(layer, set()) if layer is not None else set()
                    await _units_send(units, layer, missed)
                    retry_at = time.monotonic() + MISSED_RETRY_SECONDS if missed else None
            finally:
                self._sending -= 1


_publisher = _Publisher()


class RedisKnownDown(Exception):
    """A send not tried: a Redis call of this process failed within the last second (core/cache.py)."""


async def _units_send(units: list[Unit], layer, missed: set[str]) -> None:
    """Send these units as one batch, with a ``resync`` item first for each group in ``missed``; count
    and log the outcome, and tell each unit's waiter. Updates ``missed``; never raises."""
    events = [event for unit in units for event in unit.events]
    error: BaseException | None = None
    if (events or missed) and layer is not None:
        messages = realtime_batch(events)
        if missed:
            _resync_add(messages, missed)
        try:
            if redis_circuit.is_down():
                # Known down (core/cache.py): fail at once instead of holding every write for the timeout;
                # the groups are told to resync once a send goes through again.
                raise RedisKnownDown
            async with asyncio.timeout(settings.REALTIME_PUBLISH_TIMEOUT):
                await _send_all(layer, messages)
        except Exception as exc:
            if isinstance(exc, REDIS_UNREACHABLE):
                redis_circuit.mark_down(exc)
            error = exc
            missed.update(messages)
            for event in events:
                EVENTS_FAILED.labels(event.get("type", "unknown")).inc()
            logger.error("realtime publish failed", extra={
                "events": len(events), "error": "timeout" if isinstance(exc, TimeoutError) else repr(exc)})
        else:
            redis_circuit.mark_up()
            if missed:
                logger.warning("realtime: groups that missed events told to resync", extra={"groups": len(missed)})
                missed.clear()
            for event in events:
                EVENTS_PUBLISHED.labels(event.get("type", "unknown")).inc()
    for unit in units:
        if not unit.future.done():
            unit.future.set_result(error is None)


def _resync_add(messages: dict[str, dict[str, Any]], groups: set[str]) -> None:
    """Put one ``resync`` item (the same id everywhere, so a socket in several groups gets it once)
    first in each group's message: its subscribers missed events this process could not publish."""
    body = {"type": "resync", "reason": "events_not_published", "id": uuid.uuid4().hex,
            "sent_at": timezone.now().isoformat()}
    item = [body["id"], json.dumps(body, separators=(",", ":"))]
    for group in groups:
        message = messages.setdefault(group, {"type": BATCH_MESSAGE_TYPE, "group": group, "items": []})
        message["items"] = [item, *message["items"]]


def realtime_batch(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{group: channel-layer message} for these events; each event gets an id and its JSON text."""
    sent_at = timezone.now().isoformat()
    per_group: dict[str, list[list[str]]] = {}
    for event in events:
        # One item per location the event names, each with only that location's lines.
        for part, groups in events_per_location(event):
            # Copy: callers may reuse their dicts, and id/sent_at belong to this publication only.
            body = {**part, "id": uuid.uuid4().hex, "sent_at": sent_at}
            item = [body["id"], json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"))]
            for group in groups:
                per_group.setdefault(group, []).append(item)
    # "group" lets one per-process reader (core/fanout.py) subscribed to many groups route each batch.
    return {group: {"type": BATCH_MESSAGE_TYPE, "group": group, "items": items} for group, items in per_group.items()}


def realtime_claim(versions: dict[str, int]) -> Claim:
    """Claim these product versions for a write about to commit (inside its transaction, rows locked):
    this process sends no later version of those products before the write's own events, handed
    over with ``realtime_publish(events, claim=...)`` after commit (core/publish_order.py)."""
    return _publisher.order().claim(versions)


@contextmanager
def realtime_claim_any() -> Iterator[Claim]:
    """Claim every product, versions unknown, while a write that commits on its own runs (the fast
    path's one statement); hand its events over inside the block. Closed on the way out."""
    claim = _publisher.order().claim(None)
    try:
        yield claim
    finally:
        _publisher.release(claim)


def realtime_publish(events: list[dict[str, Any]], claim: Claim | None = None) -> None:
    """Send each event to the groups it belongs to, after those of this process that must leave
    before them. Safe to call from sync code after commit; waits for the send (at most
    ``REALTIME_PUBLISH_TIMEOUT`` plus the order's hold), so a command or task ending right after
    still published. A failure is logged and counted, never raised."""
    if not events or get_channel_layer() is None:
        if claim is not None:
            _publisher.release(claim)
        return
    unit = _publisher.hand(events, claim)
    try:
        unit.future.result(timeout=settings.REALTIME_PUBLISH_TIMEOUT + ORDER_HOLD_SECONDS)
    except FutureTimeout:
        # Still with the sender, which counts it either way.
        logger.warning("realtime publish still pending", extra={"events": len(events)})


def realtime_publish_soon(events: list[dict[str, Any]], claim: Claim | None = None) -> None:
    """``realtime_publish`` that returns at once (async code after commit, e.g. the reservation fast
    path): same order, batches and failure rule."""
    if not events or get_channel_layer() is None:
        if claim is not None:
            _publisher.release(claim)
        return
    _publisher.hand(events, claim)


async def realtime_publisher_drain(timeout: float = 5.0) -> None:
    """Wait until this process's sender has sent everything handed over so far (tests, before their loop ends)."""
    async with asyncio.timeout(timeout):
        while _publisher.pending():
            await asyncio.sleep(0.01)

async def _send_all(layer, messages: dict[str, dict[str, Any]]) -> None:
    for group, message in messages.items():
        await layer.group_send(group, message)
