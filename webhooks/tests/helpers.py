"""Test helpers for webhooks: waiting for a worker in another thread to bring a delivery to a status."""
import time

from webhooks.models import WebhookDelivery


def delivery_wait_for(delivery: WebhookDelivery, *, status: str, seconds: float = 15.0) -> WebhookDelivery:
    """Reload the delivery until it has this status or the time is up; the caller asserts on what it got."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        delivery.refresh_from_db()
        if delivery.status == status:
            break
        time.sleep(0.1)
    return delivery
