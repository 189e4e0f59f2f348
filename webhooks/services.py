"""Writes for webhooks: endpoints, outbox rows written inside the causing transaction (one event, or a batch of
one change's events, per row), and delivery attempts."""
import json
import logging
import random
import secrets
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ValidationFailed
from core.metrics import PIPELINE_GAVE_UP
from webhooks.http import delivery_session, url_address_blocked
from webhooks.models import BATCH, DeliveryStatus, EventType, WebhookDelivery, WebhookEndpoint
from webhooks.selectors import EndpointRef, deliveries_due, endpoints_active_cached, endpoints_cache_clear
from webhooks.signing import signature_headers

logger = logging.getLogger(__name__)

# Event ids are derived from what the event is about, so the same fact reported twice (say a
# reservation confirmed by an order and seen again in the stock hook) is one delivery, not two.
_EVENT_NAMESPACE = uuid.UUID("3f1d7a52-8a51-4d1e-9c55-6b1f0a2b9e10")

def _alert_event_type(from_level: str, to_level: str) -> str | None:
    """Alert level crossings (ok/low/out) as webhook types: leaving "out" is stock.back_in; low→ok sends nothing."""
    if to_level == "out":
        return EventType.STOCK_OUT
    if from_level == "out":
        return EventType.STOCK_BACK_IN
    if to_level == "low":
        return EventType.STOCK_LOW
    return None


def event_id_for(event_type: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_EVENT_NAMESPACE, f"{event_type}:{key}")


def _stock_key(code: str, location: str | None) -> str:
    """What a stock event's key names before its version: the product code, with ``@LOCATION`` away from the
    default location."""
    # Versions count per product and location, so "SKU-1:v7" alone would name two facts once a product is
    # stocked at two places, and the outbox (one row per endpoint and event id) would keep only the first.
    # The default location keeps the key it had before locations: a delivery enqueued before an upgrade and
    # the same fact enqueued again after it stay one event id, and receivers' dedupe keeps working. "@"
    # never appears in a product code (inventory/codes.py), so no such key equals another product's.
    if not location or location == settings.DEFAULT_LOCATION_CODE:
        return code
    return f"{code}@{location}"


_URL_MAX_LENGTH = WebhookEndpoint._meta.get_field("url").max_length


def _endpoint_validate(*, url: str, event_types: Sequence[str]) -> list[str]:
    # Private and loopback hosts are allowed by default: receivers on the same network (and the tests'
    # 127.0.0.1 receiver) are normal. WEBHOOK_BLOCKED_NETWORKS (link-local, where cloud metadata
    # services answer) is refused here for addresses, and at connect time for every delivery.
    if len(url) > _URL_MAX_LENGTH:
        raise ValidationFailed(_("The URL must be at most %(max)d characters.") % {"max": _URL_MAX_LENGTH},
                               details={"url": url[:100] + "…"})
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError:
        raise ValidationFailed(_("The URL must be an http(s) address."), details={"url": url}) from None
    blocked = url_address_blocked(url)
    if blocked is not None:
        raise ValidationFailed(_("Webhooks cannot be sent to this address."),
                               details={"url": url, "blocked_network": str(blocked)})
    types = list(dict.fromkeys(event_types))
    unknown = [t for t in types if t not in EventType.values]
    if not types or unknown:
        raise ValidationFailed(_("Choose one or more known event types."),
                               details={"unknown": unknown, "allowed": EventType.values})
    return types


def _cache_invalidate() -> None:
    endpoints_cache_clear()
    transaction.on_commit(endpoints_cache_clear)


def _secret_new() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


@transaction.atomic
def webhook_endpoint_create(*, url: str, event_types: Sequence[str], secret: str = "", active: bool = True,
                            description: str = "", batches: bool = True) -> WebhookEndpoint:
    """Register a receiver; a secret is generated when none is given (shown in the admin and once by the API)."""
    types = _endpoint_validate(url=url, event_types=event_types)
    endpoint = WebhookEndpoint.objects.create(
        url=url, event_types=types, secret=secret or _secret_new(), active=active,
        description=description.strip(), batches=batches,
    )
    _cache_invalidate()
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, url: str | None = None,
                            event_types: Sequence[str] | None = None, secret: str | None = None,
                            active: bool | None = None, description: str | None = None,
                            batches: bool | None = None) -> WebhookEndpoint:
    # None means "unchanged"; an empty URL is validated (and refused) rather than ignored.
    url = endpoint.url if url is None else url
    endpoint.event_types = _endpoint_validate(url=url,
                                              event_types=endpoint.event_types if event_types is None else event_types)
    endpoint.url = url
    # Never the secret unless given: a stale copy must not undo a rotation that committed meanwhile.
    fields = ["url", "event_types", "active", "description", "batches", "updated_at"]
    if secret:
        endpoint.secret = secret
        fields.append("secret")
    if active is not None:
        endpoint.active = active
    if description is not None:
        endpoint.description = description.strip()
    if batches is not None:
        endpoint.batches = batches
    endpoint.save(update_fields=fields)
    _cache_invalidate()
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()
    _cache_invalidate()


@transaction.atomic
def webhook_endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Give the endpoint a new generated secret. Every send from now on, retries of older events too, is
    signed with it: the old secret stops verifying at once."""
    endpoint.secret = _secret_new()
    # Only these columns: a stale copy must not undo an edit of the URL or event types.
    endpoint.save(update_fields=["secret", "updated_at"])
    # The cache holds no secrets; cleared anyway so every endpoint write follows the same rule.
    _cache_invalidate()
    return endpoint


def _event_built(event: dict[str, Any], *, now) -> dict[str, Any]:
    """One event as receivers see it (``id``, ``type``, ``created_at``, ``data``), JSON-ready."""
    event_id = event_id_for(event["type"], event["key"])
    payload = {"id": str(event_id), "type": event["type"], "created_at": now.isoformat(), "data": event["data"]}
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def _runs(items: list, most: int) -> list[list]:
    """``items`` cut, in order, into ceil(len / most) consecutive runs of near-equal length (201 by 100:
    67, 67, 67, rather than 100, 100, 1)."""
    count = -(-len(items) // most)
    size, longer = divmod(len(items), count)
    runs, start = [], 0
    for n in range(count):
        end = start + size + (1 if n < longer else 0)
        runs.append(items[start:end])
        start = end
    return runs


def _delivery_row(endpoint_id: int, events: list[dict[str, Any]], *, now) -> WebhookDelivery:
    """The outbox row of one POST. One event is sent as it always was; several go as a batch whose id is
    derived from theirs, so the same events enqueued again are the same delivery."""
    if len(events) == 1:
        (event,) = events
        return WebhookDelivery(endpoint_id=endpoint_id, event_id=uuid.UUID(event["id"]), event_type=event["type"],
                               payload=event, next_attempt_at=now)
    batch_id = event_id_for(BATCH, ",".join(event["id"] for event in events))
    payload = {"id": str(batch_id), "type": BATCH, "created_at": now.isoformat(), "events": events}
    return WebhookDelivery(endpoint_id=endpoint_id, event_id=batch_id, event_type=BATCH, event_count=len(events),
                           payload=payload, next_attempt_at=now)


def _endpoint_rows(endpoint: EndpointRef, events: list[dict[str, Any]], *, batch: bool, now) -> list[WebhookDelivery]:
    mine = [event for event in events if event["type"] in endpoint.event_types]
    if not mine:
        return []
    if not (batch and endpoint.batches):
        return [_delivery_row(endpoint.id, [event], now=now) for event in mine]
    return [_delivery_row(endpoint.id, run, now=now) for run in _runs(mine, max(settings.WEBHOOK_BATCH_MAX, 1))]


def webhook_events_enqueue(*, events: Iterable[dict[str, Any]], batch: bool = False) -> list[int]:
    """Write these events' outbox rows for every subscribed endpoint in the current transaction; send after commit.

    Each event is ``{"type", "key", "data"}``: ``key`` names the fact (e.g. ``SKU-1:v7``) and fixes the
    event id. With ``batch`` (the events of one change), an endpoint that accepts batches gets them in
    ceil(n / WEBHOOK_BATCH_MAX) deliveries, in order; otherwise one delivery per event. Returns the new
    deliveries' ids in the order they are sent. With no endpoint subscribed to any of the types this
    makes no query at all.
    """
    endpoints = endpoints_active_cached()
    if not endpoints:
        return []
    now = timezone.now()
    wanted = set().union(*(e.event_types for e in endpoints))
    built = [_event_built(event, now=now) for event in events if event["type"] in wanted]
    rows = [row for endpoint in endpoints for row in _endpoint_rows(endpoint, built, batch=batch, now=now)]
    if not rows:
        return []
    # ignore_conflicts: the same fact enqueued twice stays one delivery per endpoint.
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    # In id order, so each endpoint's deliveries are queued in the order their events happened.
    ids = list(
        WebhookDelivery.objects.filter(event_id__in={r.event_id for r in rows}, created_at__gte=now,
                                       status=DeliveryStatus.PENDING, attempts=0)
        .order_by("id").values_list("id", flat=True)
    )
    if ids:
        transaction.on_commit(partial(_deliveries_send_enqueue, ids))
    return ids


def _deliveries_send_enqueue(delivery_ids: list[int]) -> None:
    from webhooks.tasks import webhook_delivery_send_task

    for delivery_id in delivery_ids:
        try:
            webhook_delivery_send_task.delay(delivery_id)
        except Exception:
            # The beat sweep sends due rows anyway; a broker hiccup only delays them.
            logger.exception("webhook send task could not be queued", extra={"delivery_id": delivery_id})


def webhooks_stock_rows_changed(*, stock_events: Sequence[dict[str, Any]],
                                transitions: Sequence[Any] = ()) -> list[int]:
    """The webhook part of the stock hook: stock.changed per row, alert transitions, reservation.confirmed.

    Called inside the writing transaction under the row locks; cheap when nobody is subscribed. Stock and
    alert events name their location (``location``, a code), at every location. The events of one change
    are batched for the endpoints that accept batches (the 3,006 events of an import of 3,000 products are
    31 POSTs per endpoint, not 3,006).
    """
    if not endpoints_active_cached():
        return []
    default = settings.DEFAULT_LOCATION_CODE
    events = []
    # {(code, location): version}: one change may move the same product at two locations (a transfer), each
    # row with its own version.
    versions: dict[tuple[str, str], int] = {}
    for event in stock_events:
        kind = event.get("type")
        if kind == EventType.STOCK_CHANGED:
            location = event.get("location") or default
            versions[(event["code"], location)] = event["version"]
            key = f"{_stock_key(event['code'], location)}:v{event['version']}"
            events.append({"type": kind, "key": key, "data": event})
        elif kind == EventType.RESERVATION_CONFIRMED:
            key = str(event.get("reservation_id") or event.get("id"))
            events.append({"type": kind, "key": key, "data": event})
    for transition in transitions:
        event_type = _alert_event_type(transition.from_level, transition.to_level)
        if event_type is None:
            continue
        location = transition.location or default
        version = versions.get((transition.code, location))
        data = {"type": event_type, "code": transition.code, "from_level": transition.from_level,
                "to_level": transition.to_level, "available": transition.available, "version": version,
                "location": location}
        key = f"{_stock_key(transition.code, location)}:{transition.to_level}:v{version}"
        events.append({"type": event_type, "key": key, "data": data})
    return webhook_events_enqueue(events=events, batch=True)


def _backoff(attempts: int) -> timedelta:
    base = settings.WEBHOOK_BACKOFF_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    delay = min(base, settings.WEBHOOK_BACKOFF_MAX_SECONDS)
    return timedelta(seconds=delay * random.uniform(0.9, 1.1))


def _claim(delivery_id: int, *, force: bool) -> WebhookDelivery | None:
    """Take a due delivery for one attempt. The lease (next_attempt_at pushed forward) lets the sweep
    retry it if this worker dies mid-request, and stops a second worker sending it meanwhile."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("endpoint").filter(pk=delivery_id, status=DeliveryStatus.PENDING).first()
        )
        now = timezone.now()
        if delivery is None or (delivery.next_attempt_at > now and not force):
            return None
        delivery.attempts += 1
        delivery.next_attempt_at = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)
        delivery.save(update_fields=["attempts", "next_attempt_at"])
        return delivery


def webhook_delivery_attempt(*, delivery_id: int, force: bool = False) -> WebhookDelivery | None:
    """POST one due delivery, signed, and record the outcome: delivered, retry later with backoff, or dead.

    Runs outside any transaction: the HTTP request must never hold a lock. Returns None when the row
    is not due (already sent, being sent, or waiting for its next attempt).
    """
    if connection.in_atomic_block:
        raise RuntimeError("webhook_delivery_attempt must not run inside a transaction")
    delivery = _claim(delivery_id, force=force)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = signature_headers(secret=endpoint.secret, body=body, event_id=str(delivery.event_id),
                                event_type=delivery.event_type)
    status_code, error = None, ""
    try:
        with delivery_session() as session:
            response = session.post(endpoint.url, data=body, headers=headers,
                                    timeout=settings.WEBHOOK_TIMEOUT_SECONDS, allow_redirects=False)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}: {response.text[:500]}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    now = timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update(of=("self",)).get(pk=delivery.pk)
        delivery.last_status_code = status_code
        delivery.last_error = error
        if not error:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
        elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.DEAD
            logger.warning("webhook delivery dead", extra={"delivery_id": delivery.pk, "error": error})
            transaction.on_commit(PIPELINE_GAVE_UP.labels("webhooks").inc)
        else:
            delivery.next_attempt_at = now + _backoff(delivery.attempts)
        delivery.save(update_fields=["last_status_code", "last_error", "status", "delivered_at", "next_attempt_at"])
    return delivery


@transaction.atomic
def webhook_deliveries_redeliver(*, delivery_ids: Sequence[int]) -> list[int]:
    """Send these deliveries again now (dead or delivered ones too), from the admin or the API.

    Returns the ids found and queued, in order; ids that match no delivery are left out.
    """
    ids = sorted(set(delivery_ids))
    locked = list(WebhookDelivery.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk"))
    now = timezone.now()
    for delivery in locked:
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = now
        # A redelivery gets a fresh series of tries.
        delivery.attempts = 0
        delivery.save(update_fields=["status", "next_attempt_at", "attempts"])
    found = [d.pk for d in locked]
    transaction.on_commit(partial(_deliveries_send_enqueue, found))
    return found


def webhook_deliveries_sweep(*, limit: int = 200) -> list[int]:
    """Queue a send for every due delivery: first sends whose task was lost, and retries whose time has come."""
    ids = deliveries_due(limit=limit)
    _deliveries_send_enqueue(ids)
    return ids
