"""Blocked webhook destinations: refused when registered by address, and at connect time for every delivery."""
import pytest
from django.utils import translation

from core.errors import ValidationFailed
from webhooks.http import address_blocked
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_delivery_attempt, webhook_endpoint_create
from webhooks.tests.factories import deliveries_make, endpoint_make

ENDPOINTS = "/api/v1/webhooks/endpoints"


@pytest.mark.parametrize(("address", "network"), [
    ("169.254.169.254", "169.254.0.0/16"),
    ("::ffff:169.254.169.254", "169.254.0.0/16"),
    ("fe80::1%eth0", "fe80::/10"),
    ("fd00:ec2::254", "fd00:ec2::254/128"),
    ("0.0.0.0", "0.0.0.0/8"),
    ("127.0.0.1", None),
    ("10.1.2.3", None),
    ("203.0.113.7", None),
])
def test_default_blocked_networks_are_link_local_and_this_host_not_loopback_or_private(address, network):
    found = address_blocked(address)
    assert (str(found) if found else None) == network


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "https://[fe80::1]/hook",
                                 "http://[::ffff:169.254.169.254]/"])
def test_an_endpoint_on_a_blocked_address_is_refused_and_nothing_is_saved(url):
    with translation.override("en"), pytest.raises(ValidationFailed) as refused:
        webhook_endpoint_create(url=url, event_types=["stock.changed"])

    assert refused.value.message == "Webhooks cannot be sent to this address."
    assert refused.value.details["url"] == url
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
def test_the_api_answers_400_for_a_metadata_address(api_client_with_scopes):
    manager = api_client_with_scopes("manage")

    response = manager.post(ENDPOINTS, {"url": "http://169.254.169.254/latest/meta-data/",
                                        "event_types": ["stock.changed"]}, format="json",
                            HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid", "message": "Webhooks cannot be sent to this address.",
        "details": {"url": "http://169.254.169.254/latest/meta-data/", "blocked_network": "169.254.0.0/16"}}
    assert WebhookEndpoint.objects.count() == 0


def _delivery_to_receiver_by_name(receiver, key: str) -> WebhookDelivery:
    """A due delivery to the receiver by host name, so registration cannot judge it: "localhost"
    resolves to the receiver's 127.0.0.1."""
    port = receiver.server.server_address[1]
    endpoint_make(url=f"http://localhost:{port}/hooks/stockpulse", event_types=["order.processed"],
                  secret=receiver.secret)
    (delivery,) = deliveries_make(key=key)
    return delivery


@pytest.mark.django_db(transaction=True)
def test_a_host_name_that_resolves_to_a_blocked_network_gets_nothing_and_is_retried_later(receiver, settings):
    delivery = _delivery_to_receiver_by_name(receiver, "o-blocked")
    settings.WEBHOOK_BLOCKED_NETWORKS = [*settings.WEBHOOK_BLOCKED_NETWORKS, "127.0.0.0/8", "::1/128"]

    result = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert receiver.received == []
    assert result.status == DeliveryStatus.PENDING and result.attempts == 1
    assert result.last_status_code is None
    assert "is in the blocked network 127.0.0.0/8" in result.last_error


@pytest.mark.django_db(transaction=True)
def test_the_same_receiver_by_name_gets_the_delivery_when_loopback_is_allowed(receiver):
    delivery = _delivery_to_receiver_by_name(receiver, "o-allowed")

    result = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert result.status == DeliveryStatus.DELIVERED
    assert [r.signature_ok for r in receiver.received] == [True]


def test_a_malformed_blocked_network_is_a_configuration_error_that_names_it(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.WEBHOOK_BLOCKED_NETWORKS = ["169.254.0.0/16", "not-a-network"]

    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_BLOCKED_NETWORKS: 'not-a-network'"):
        address_blocked("169.254.1.1")
