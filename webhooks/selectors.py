"""Reads for webhooks: endpoints (active ones cached in-process for the stock hot path) and deliveries."""
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import NotFound
from core.pipelines import Backlog
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


@dataclass(frozen=True)
class EndpointRef:
    id: int
    event_types: frozenset[str]
    batches: bool = False


_cache: dict[str, object] = {"endpoints": None, "loaded_at": 0.0}


def endpoints_cache_clear() -> None:
    """Forget the cached endpoint list; the next lookup reloads it."""
    _cache["endpoints"] = None
    _cache["loaded_at"] = 0.0


def endpoints_active_cached() -> tuple[EndpointRef, ...]:
    """Active endpoints and their event types. The stock hook runs under row locks on every change,
    so the list is kept in-process for WEBHOOK_ENDPOINT_CACHE_SECONDS: no query while it is fresh."""
    now = time.monotonic()
    cached = _cache["endpoints"]
    if cached is not None and now - _cache["loaded_at"] < settings.WEBHOOK_ENDPOINT_CACHE_SECONDS:
        return cached  # type: ignore[return-value]
    rows = WebhookEndpoint.objects.filter(active=True).order_by("id").values_list("id", "event_types", "batches")
    endpoints = tuple(EndpointRef(id=pk, event_types=frozenset(types or []), batches=batches)
                      for pk, types, batches in rows)
    _cache["endpoints"] = endpoints
    _cache["loaded_at"] = now
    return endpoints


def endpoints_active_peek() -> tuple[EndpointRef, ...] | None:
    """The cached endpoint list while it is fresh, else None; never queries (for async callers)."""
    cached = _cache["endpoints"]
    if cached is not None and time.monotonic() - _cache["loaded_at"] < settings.WEBHOOK_ENDPOINT_CACHE_SECONDS:
        return cached  # type: ignore[return-value]
    return None


def deliveries_due(*, limit: int = 200) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def deliveries_backlog(*, now: datetime) -> Backlog:
    """Deliveries still pending (due now or waiting for a retry), and the earliest due time among the due ones."""
    figures = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).aggregate(
        waiting=Count("pk"), oldest_due_at=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now)))
    return Backlog(**figures)


def endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("id")


def endpoint_get(*, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(_("No webhook endpoint has this id."), details={"id": endpoint_id})
    return endpoint


def delivery_list(*, endpoint_id: int | None = None, status: str | None = None,
                  event_type: str | None = None) -> QuerySet[WebhookDelivery]:
    """Deliveries, newest first, optionally of one endpoint, status and/or event type."""
    wanted = {"endpoint_id": endpoint_id, "status": status, "event_type": event_type}
    return WebhookDelivery.objects.filter(**{k: v for k, v in wanted.items() if v is not None}).order_by("-id")
