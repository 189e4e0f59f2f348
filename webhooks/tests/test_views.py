"""Webhooks API: endpoints under the manage scope, secrets shown only on create and rotate, redelivery."""
import pytest
from rest_framework.test import APIClient

from core.tests.celery_worker import queue_size, queues_purge, running_worker
from inventory.services import stock_receive
from inventory.tests.factories import ProductFactory
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.selectors import endpoints_active_cached
from webhooks.services import webhook_delivery_attempt, webhook_events_enqueue
from webhooks.tests.factories import deliveries_make, endpoint_make
from webhooks.tests.helpers import delivery_wait_for
from webhooks.views import REDELIVER_MAX_IDS

ENDPOINTS = "/api/v1/webhooks/endpoints"
DELIVERIES = "/api/v1/webhooks/deliveries"
REDELIVER = "/api/v1/webhooks/deliveries/redeliver"

# Every route with a body valid enough to reach the permission check.
ROUTES = [
    ("get", ENDPOINTS, None),
    ("post", ENDPOINTS, {"url": "https://erp.example.com/hooks", "event_types": ["stock.changed"]}),
    ("get", f"{ENDPOINTS}/1", None),
    ("patch", f"{ENDPOINTS}/1", {"active": False}),
    ("delete", f"{ENDPOINTS}/1", None),
    ("post", f"{ENDPOINTS}/1/rotate-secret", None),
    ("get", DELIVERIES, None),
    ("post", REDELIVER, {"ids": [1]}),
]


def _call(http, method: str, url: str, body=None):
    return getattr(http, method)(url, body, format="json") if body is not None else getattr(http, method)(url)


@pytest.mark.django_db
def test_list_pages_the_endpoints_without_their_secrets(manager):
    first = endpoint_make(url="https://erp.example.com/hooks", secret="first-secret-0123456")
    second = endpoint_make(url="https://shop.example.com/hooks", secret="second-secret-012345")

    response = manager.get(ENDPOINTS, {"page_size": 1})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and body["next"] is not None
    assert [e["id"] for e in body["results"]] == [first.pk]
    assert set(body["results"][0]) == {"id", "url", "description", "event_types", "active", "batches",
                                       "created_at", "updated_at"}
    assert manager.get(ENDPOINTS, {"page": 2, "page_size": 1}).json()["results"][0]["id"] == second.pk
    assert b"first-secret" not in response.content


@pytest.mark.django_db
def test_create_registers_the_endpoint_and_shows_the_generated_secret_once(manager):
    assert WebhookEndpoint.objects.count() == 0

    response = manager.post(ENDPOINTS, {"url": "https://erp.example.com/hooks", "description": " ERP ",
                                        "event_types": ["order.processed", "stock.out", "order.processed"]},
                            format="json")

    assert response.status_code == 201
    body = response.json()
    endpoint = WebhookEndpoint.objects.get()
    assert body["id"] == endpoint.pk and body["secret"] == endpoint.secret
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 40
    assert (endpoint.url, endpoint.description, endpoint.active) == ("https://erp.example.com/hooks", "ERP", True)
    assert endpoint.event_types == ["order.processed", "stock.out"]
    listed, detail = manager.get(ENDPOINTS), manager.get(f"{ENDPOINTS}/{endpoint.pk}")
    assert "secret" not in listed.json()["results"][0] and "secret" not in detail.json()
    assert endpoint.secret not in listed.content.decode() + detail.content.decode()


@pytest.mark.django_db
def test_create_keeps_a_secret_the_client_chose(manager):
    response = manager.post(ENDPOINTS, {"url": "http://127.0.0.1:8080/hooks", "event_types": ["stock.low"],
                                        "secret": "my-own-long-secret-42", "active": False}, format="json")

    assert response.status_code == 201 and response.json()["secret"] == "my-own-long-secret-42"
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.secret, endpoint.active) == ("my-own-long-secret-42", False)


@pytest.mark.django_db
def test_an_endpoint_created_over_the_api_gets_the_next_stock_change_at_once(manager):
    ProductFactory(code="CAFE-API", on_hand=1)
    assert endpoints_active_cached() == ()  # the cached list is warm and empty

    manager.post(ENDPOINTS, {"url": "https://erp.example.com/hooks", "event_types": ["stock.changed"]},
                 format="json")
    stock_receive(code="CAFE-API", quantity=2)

    delivery = WebhookDelivery.objects.get()
    assert delivery.endpoint.url == "https://erp.example.com/hooks"
    assert delivery.payload["data"]["on_hand"] == 3


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"url": "https://erp.example.com/hooks", "event_types": ["stock.changed", "stock.melted"]}, "unknown"),
    ({"url": "https://erp.example.com/hooks", "event_types": []}, "unknown"),
    ({"url": "ftp://erp.example.com/hooks", "event_types": ["stock.changed"]}, "url"),
    ({"url": "javascript:alert(1)", "event_types": ["stock.changed"]}, "url"),
    ({"url": "erp.example.com/hooks", "event_types": ["stock.changed"]}, "url"),
    ({"url": "https://erp.example.com/" + "a" * 500, "event_types": ["stock.changed"]}, "url"),
    ({"event_types": ["stock.changed"]}, "url"),
    ({"url": "https://erp.example.com/hooks", "event_types": "stock.changed"}, "event_types"),
    ({"url": "https://erp.example.com/hooks", "event_types": ["stock.changed"], "secret": "short"}, "secret"),
    ({"url": "https://erp.example.com/hooks", "event_types": ["stock.changed"], "description": "d" * 201},
     "description"),
])
def test_invalid_endpoints_get_400_with_details_and_write_nothing(manager, body, field):
    response = manager.post(ENDPOINTS, body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["details"]
    assert WebhookEndpoint.objects.count() == 0


@pytest.mark.django_db
def test_unknown_event_type_error_lists_the_allowed_types(manager):
    response = manager.post(ENDPOINTS, {"url": "https://erp.example.com/hooks", "event_types": ["stock.melted"]},
                            format="json")

    details = response.json()["error"]["details"]
    assert details["unknown"] == ["stock.melted"] and "stock.changed" in details["allowed"]


@pytest.mark.django_db
def test_patch_changes_only_the_fields_sent(manager):
    endpoint = endpoint_make(url="https://erp.example.com/hooks", event_types=["stock.changed"])
    secret_before = endpoint.secret

    response = manager.patch(f"{ENDPOINTS}/{endpoint.pk}", {"event_types": ["stock.out", "stock.back_in"],
                                                            "description": "ERP alerts"}, format="json")

    assert response.status_code == 200 and "secret" not in response.json()
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["stock.out", "stock.back_in"] and endpoint.description == "ERP alerts"
    assert (endpoint.url, endpoint.active, endpoint.secret) == ("https://erp.example.com/hooks", True, secret_before)


@pytest.mark.django_db
def test_an_endpoint_switched_off_batches_over_the_api_gets_one_delivery_per_event(manager, settings):
    settings.WEBHOOK_BATCH_MAX = 10
    created = manager.post(ENDPOINTS, {"url": "https://erp.example.com/hooks", "event_types": ["stock.changed"]},
                           format="json").json()
    assert created["batches"] is True
    events = [{"type": "stock.changed", "key": f"SKU-{n}:v1", "data": {"code": f"SKU-{n}"}} for n in range(3)]

    response = manager.patch(f"{ENDPOINTS}/{created['id']}", {"batches": False}, format="json")
    webhook_events_enqueue(events=events, batch=True)

    assert response.status_code == 200 and response.json()["batches"] is False
    assert list(WebhookDelivery.objects.order_by("id").values_list("event_type", "event_count")) == [
        ("stock.changed", 1)] * 3


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"url": ""}, "url"),
    ({"url": "gopher://erp.example.com/hooks"}, "url"),
    ({"event_types": ["stock.melted"]}, "unknown"),
    ({"event_types": []}, "unknown"),
    ({"active": "sometimes"}, "active"),
    ({"batches": "sometimes"}, "batches"),
])
def test_invalid_patch_gets_400_and_changes_nothing(manager, body, field):
    endpoint = endpoint_make(url="https://erp.example.com/hooks", event_types=["stock.changed"])

    response = manager.patch(f"{ENDPOINTS}/{endpoint.pk}", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid" and field in response.json()["error"]["details"]
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.event_types) == ("https://erp.example.com/hooks", ["stock.changed"])


@pytest.mark.django_db
def test_deactivated_over_the_api_the_endpoint_stops_receiving_at_once(manager):
    endpoint = endpoint_make(event_types=["stock.changed"])
    ProductFactory(code="CAFE-OFF", on_hand=1)
    assert len(endpoints_active_cached()) == 1

    manager.patch(f"{ENDPOINTS}/{endpoint.pk}", {"active": False}, format="json")
    stock_receive(code="CAFE-OFF", quantity=1)

    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
def test_delete_removes_the_endpoint_and_its_deliveries(manager):
    endpoint = endpoint_make(event_types=["order.processed"])
    deliveries_make(key="o-del")
    assert WebhookDelivery.objects.count() == 1

    response = manager.delete(f"{ENDPOINTS}/{endpoint.pk}")

    assert response.status_code == 204
    assert WebhookEndpoint.objects.count() == 0 and WebhookDelivery.objects.count() == 0
    assert endpoints_active_cached() == ()


@pytest.mark.django_db
def test_rotate_secret_shows_a_new_secret_once(manager):
    endpoint = endpoint_make(secret="old-secret-0123456789")

    response = manager.post(f"{ENDPOINTS}/{endpoint.pk}/rotate-secret")

    assert response.status_code == 200
    new_secret = response.json()["secret"]
    endpoint.refresh_from_db()
    assert endpoint.secret == new_secret and new_secret.startswith("whsec_") and new_secret != "old-secret-0123456789"
    assert new_secret not in manager.get(f"{ENDPOINTS}/{endpoint.pk}").content.decode()


@pytest.mark.django_db(transaction=True)
def test_after_rotation_deliveries_are_signed_with_the_new_secret_only(manager, receiver):
    endpoint = endpoint_make(url=receiver.url, event_types=["order.processed"], secret=receiver.secret)
    delivery, = deliveries_make(key="o-rot")
    queues_purge()  # the send queued on commit; this test sends by hand

    new_secret = manager.post(f"{ENDPOINTS}/{endpoint.pk}/rotate-secret").json()["secret"]
    webhook_delivery_attempt(delivery_id=delivery.pk)
    receiver.secret = new_secret
    next_delivery, = deliveries_make(key="o-rot-2")
    queues_purge()
    webhook_delivery_attempt(delivery_id=next_delivery.pk)

    # Checked with the old secret, then with the new one: only the new one verifies.
    assert [r.signature_ok for r in receiver.received] == [False, True]


@pytest.mark.django_db
@pytest.mark.parametrize("method, suffix", [("get", ""), ("patch", ""), ("delete", ""), ("post", "/rotate-secret")])
def test_unknown_endpoint_is_404(manager, method, suffix):
    endpoint_make()

    response = _call(manager, method, f"{ENDPOINTS}/999999{suffix}", {} if method == "patch" else None)

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("method, url, body", ROUTES)
def test_every_route_needs_credentials(method, url, body):
    response = _call(APIClient(), method, url, body)

    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.parametrize("method, url, body", ROUTES)
@pytest.mark.parametrize("scopes", [("read",), ("read", "reserve")])
def test_every_route_needs_the_manage_scope(api_client_with_scopes, method, url, body, scopes):
    endpoint_make()

    response = _call(api_client_with_scopes(*scopes), method, url, body)

    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.django_db
def test_deliveries_are_listed_newest_first_and_filtered(manager):
    erp = endpoint_make(url="https://erp.example.com/hooks", event_types=["order.processed", "stock.out"])
    shop = endpoint_make(url="https://shop.example.com/hooks", event_types=["order.processed"])
    erp_order, shop_order = deliveries_make(key="o-1")
    erp_out, = deliveries_make(key="SKU-1:out:v3", event_type="stock.out")
    WebhookDelivery.objects.filter(pk=shop_order.pk).update(status=DeliveryStatus.DEAD, attempts=12)

    def ids(**params):
        response = manager.get(DELIVERIES, params)
        assert response.status_code == 200
        return [d["id"] for d in response.json()["results"]]

    assert ids() == [erp_out.pk, shop_order.pk, erp_order.pk]
    assert ids(endpoint=erp.pk) == [erp_out.pk, erp_order.pk]
    assert ids(endpoint=shop.pk, status="dead") == [shop_order.pk]
    assert ids(event_type="stock.out") == [erp_out.pk]
    assert ids(status="delivered") == []
    row = manager.get(DELIVERIES, {"endpoint": shop.pk}).json()["results"][0]
    assert row["endpoint"] == shop.pk and row["status"] == "dead" and row["attempts"] == 12
    assert row["event_id"] == str(shop_order.event_id) and row["payload"]["type"] == "order.processed"


@pytest.mark.django_db
def test_batched_deliveries_are_listed_with_their_event_count_and_filtered_as_batch(manager):
    endpoint_make(event_types=["stock.changed", "order.processed"])
    (single,) = deliveries_make(key="o-1")
    (batch,) = WebhookDelivery.objects.filter(pk__in=webhook_events_enqueue(batch=True, events=[
        {"type": "stock.changed", "key": f"SKU-{n}:v1", "data": {"code": f"SKU-{n}"}} for n in range(3)]))

    listed = manager.get(DELIVERIES).json()["results"]
    batches = manager.get(DELIVERIES, {"event_type": "batch"}).json()["results"]

    assert [(d["id"], d["event_type"], d["event_count"]) for d in listed] == [
        (batch.pk, "batch", 3), (single.pk, "order.processed", 1)]
    assert [d["id"] for d in batches] == [batch.pk]
    assert [e["data"]["code"] for e in batches[0]["payload"]["events"]] == ["SKU-0", "SKU-1", "SKU-2"]


@pytest.mark.django_db
@pytest.mark.parametrize("params, field", [
    ({"status": "lost"}, "status"),
    ({"event_type": "stock.melted"}, "event_type"),
    ({"endpoint": "erp"}, "endpoint"),
])
def test_bad_delivery_filters_get_400(manager, params, field):
    response = manager.get(DELIVERIES, params)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid" and field in response.json()["error"]["details"]


@pytest.mark.django_db
def test_redeliver_makes_a_dead_delivery_pending_and_queues_it(manager, django_capture_on_commit_callbacks):
    endpoint_make(event_types=["order.processed"])
    delivery, = deliveries_make(key="o-dead")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD, attempts=12)
    queues_purge()

    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(REDELIVER, {"ids": [delivery.pk, 999999]}, format="json")

    assert response.status_code == 200
    assert response.json() == {"redelivered": [delivery.pk], "unknown": [999999]}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
    assert queue_size("celery") == 1
    queues_purge()


@pytest.mark.django_db(transaction=True)
def test_redelivered_dead_delivery_reaches_the_receiver_through_a_worker(manager, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.statuses = [500]
    endpoint_make(url=receiver.url, event_types=["order.processed"], secret=receiver.secret)
    delivery, = deliveries_make(key="o-worker")
    queues_purge()
    assert webhook_delivery_attempt(delivery_id=delivery.pk).status == DeliveryStatus.DEAD

    with running_worker("celery"):
        assert manager.post(REDELIVER, {"ids": [delivery.pk]}, format="json").status_code == 200
        delivery_wait_for(delivery, status=DeliveryStatus.DELIVERED)
    queues_purge()

    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
    assert [r.answered for r in receiver.received] == [500, 200]
    assert all(r.signature_ok for r in receiver.received)


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    {"ids": []},
    {"ids": list(range(1, REDELIVER_MAX_IDS + 2))},
    {"ids": ["one"]},
    {"ids": [0]},
    {},
])
def test_bad_redeliver_requests_get_400_and_change_nothing(manager, body):
    endpoint_make(event_types=["order.processed"])
    delivery, = deliveries_make(key="o-bad")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD)

    response = manager.post(REDELIVER, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid" and "ids" in response.json()["error"]["details"]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD


@pytest.mark.django_db
def test_schema_documents_every_route_with_its_own_components(client):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    paths, components = schema["paths"], schema["components"]["schemas"]
    assert set(paths[ENDPOINTS]) == {"get", "post"}
    assert set(paths[f"{ENDPOINTS}/{{endpoint_id}}"]) >= {"get", "patch", "delete"}
    assert "post" in paths[f"{ENDPOINTS}/{{endpoint_id}}/rotate-secret"]
    assert "get" in paths[DELIVERIES] and "post" in paths[REDELIVER]

    def ref(operation, status=None):
        if status is None:
            content = operation["requestBody"]["content"]["application/json"]["schema"]
        else:
            content = operation["responses"][status]["content"]["application/json"]["schema"]
        return content["$ref"].rsplit("/", 1)[1]

    assert ref(paths[ENDPOINTS]["post"]) == "WebhookEndpointCreateInputRequest"
    assert ref(paths[ENDPOINTS]["post"], "201") == "WebhookEndpointWithSecret"
    assert ref(paths[ENDPOINTS]["get"], "200") == "PaginatedWebhookEndpointList"
    assert ref(paths[f"{ENDPOINTS}/{{endpoint_id}}"]["patch"]) == "PatchedWebhookEndpointUpdateInputRequest"
    assert ref(paths[f"{ENDPOINTS}/{{endpoint_id}}"]["get"], "200") == "WebhookEndpoint"
    assert ref(paths[f"{ENDPOINTS}/{{endpoint_id}}/rotate-secret"]["post"], "200") == "WebhookEndpointWithSecret"
    assert ref(paths[DELIVERIES]["get"], "200") == "PaginatedWebhookDeliveryList"
    assert ref(paths[REDELIVER]["post"]) == "WebhookRedeliverInputRequest"
    assert "secret" in components["WebhookEndpointWithSecret"]["properties"]
    assert "secret" not in components["WebhookEndpoint"]["properties"]
    assert {"url", "event_types", "secret"} <= set(components["WebhookEndpointCreateInputRequest"]["properties"])
    assert set(components["WebhookRedeliverInputRequest"]["properties"]) == {"ids"}
    assert "stock.changed" in components["WebhookEventType"]["enum"]
