"""Factories for webhooks: endpoints are created through the service so the endpoint cache stays right."""
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_endpoint_create


def endpoint_make(*, url: str = "http://127.0.0.1:9/hook", event_types=("stock.changed",),
                  secret: str = "test-secret") -> WebhookEndpoint:
    return webhook_endpoint_create(url=url, event_types=list(event_types), secret=secret)
