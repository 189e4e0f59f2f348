"""Factories for webhooks: endpoints and deliveries are written through the services, as production writes them."""
from django.db import transaction

from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_create, webhook_events_enqueue


def endpoint_make(*, url: str = "http://127.0.0.1:9/hook", event_types=("stock.changed",),
                  secret: str = "test-secret") -> WebhookEndpoint:
    return webhook_endpoint_create(url=url, event_types=list(event_types), secret=secret)


def deliveries_make(*, key: str, event_type: str = "order.processed") -> list[WebhookDelivery]:
    """The outbox rows of one event (one per subscribed endpoint, by endpoint id), as a committed change writes them."""
    with transaction.atomic():
        ids = webhook_events_enqueue(events=[{"type": event_type, "key": key, "data": {"key": key}}])
    return list(WebhookDelivery.objects.filter(pk__in=ids).order_by("endpoint_id"))
