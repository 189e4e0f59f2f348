"""Tests for the webhooks migrations: what they do to rows that existed before them."""
import pytest

from core.tests.migrations import latest, migrate

BEFORE = [("webhooks", "0001_initial")]
AFTER = [("webhooks", "0002_batched_deliveries")]


@pytest.mark.django_db(transaction=True)
def test_endpoints_registered_before_batches_keep_one_request_per_event():
    old_apps = migrate(BEFORE)
    try:
        old = old_apps.get_model("webhooks", "WebhookEndpoint").objects.create(
            url="https://erp.example.com/hooks", secret="old-secret-0123456789", event_types=["stock.changed"])

        new_apps = migrate(AFTER)
        endpoints = new_apps.get_model("webhooks", "WebhookEndpoint").objects
        created_after = endpoints.create(url="https://shop.example.com/hooks", secret="new-secret-0123456789",
                                         event_types=["stock.changed"])

        assert endpoints.get(pk=old.pk).batches is False
        assert endpoints.get(pk=created_after.pk).batches is True
    finally:
        migrate(latest())
