"""Webhook admin: endpoints saved through the service (secret generated, batches switched), deliveries redelivered."""
import pytest
from django.db import transaction

from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_events_enqueue
from webhooks.tests.factories import endpoint_make


@pytest.mark.django_db
def test_endpoint_added_in_the_admin_gets_a_secret(staff_client):
    response = staff_client.post("/admin/webhooks/webhookendpoint/add/", {
        "url": "https://erp.example.com/hooks", "description": "ERP", "event_types": ["order.processed"],
        "secret": "", "active": "on"})

    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_") and endpoint.event_types == ["order.processed"]


@pytest.mark.django_db
def test_dead_delivery_is_redelivered_from_the_admin(staff_client):
    endpoint_make(event_types=["order.processed"])
    with transaction.atomic():
        webhook_events_enqueue(events=[{"type": "order.processed", "key": "o-9", "data": {}}])
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD, attempts=12)

    response = staff_client.post("/admin/webhooks/webhookdelivery/", {
        "action": "redeliver", "_selected_action": [delivery.pk]})

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
    assert staff_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_batches_are_switched_off_and_on_in_the_admin(staff_client):
    endpoint = endpoint_make(url="https://erp.example.com/hooks", event_types=["stock.changed"])
    form = {"url": endpoint.url, "description": "", "event_types": ["stock.changed"], "secret": "", "active": "on"}
    assert endpoint.batches is True

    off = staff_client.post(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/", form)
    endpoint.refresh_from_db()
    assert off.status_code == 302 and endpoint.batches is False

    on = staff_client.post(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/", {**form, "batches": "on"})
    endpoint.refresh_from_db()
    assert on.status_code == 302 and endpoint.batches is True
