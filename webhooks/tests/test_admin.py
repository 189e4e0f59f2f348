"""Webhook admin: endpoints are created through the service (secret generated) and deliveries can be redelivered."""
import pytest
from django.db import transaction

from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_events_enqueue
from webhooks.tests.factories import endpoint_make


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


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
