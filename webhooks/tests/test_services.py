"""Webhook outbox: rows written with their cause, batched per change, signed sends, retries, dead ones, redelivery,
stock and alert events at every location."""
import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from core.errors import ValidationFailed
from core.tests.metrics import gave_up
from inventory.importing import stock_import
from inventory.models import Stock
from inventory.selectors import location_default
from inventory.services import stock_adjust, stock_receive, transfer_create
from inventory.tests.factories import LocationFactory, ProductFactory, stock_at_location
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.selectors import endpoints_active_cached
from webhooks.services import (
    event_id_for,
    webhook_deliveries_redeliver,
    webhook_deliveries_sweep,
    webhook_delivery_attempt,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_update,
    webhook_events_enqueue,
    webhooks_stock_rows_changed,
)
from webhooks.signing import signature_headers, signature_verify
from webhooks.tests.factories import deliveries_make, endpoint_make
from webhooks.tests.helpers import delivery_wait_for


@pytest.mark.django_db
def test_endpoint_with_unknown_event_type_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        endpoint_make(event_types=["stock.changed", "stock.melted"])
    assert caught.value.details["unknown"] == ["stock.melted"]


@pytest.mark.django_db
def test_stock_hook_makes_no_query_when_nobody_is_subscribed(django_assert_num_queries):
    endpoints_active_cached()  # warm: one query per process every few seconds
    event = {"type": "stock.changed", "code": "SKU-1", "version": 3}
    with django_assert_num_queries(0):
        assert webhooks_stock_rows_changed(stock_events=[event]) == []


@pytest.mark.django_db
def test_stock_change_writes_a_delivery_in_its_transaction():
    endpoint_make(event_types=["stock.changed"])
    product = ProductFactory(code="CAFE-1", on_hand=3)
    assert WebhookDelivery.objects.count() == 0

    stock_receive(code="CAFE-1", quantity=4)

    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "stock.changed"
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.payload["data"]["code"] == product.code
    assert delivery.payload["data"]["on_hand"] == 7
    assert delivery.payload["id"] == str(delivery.event_id)


@pytest.mark.django_db
def test_rolled_back_stock_change_leaves_no_delivery():
    endpoint_make(event_types=["stock.changed"])
    ProductFactory(code="CAFE-2", on_hand=3)

    with pytest.raises(RuntimeError), transaction.atomic():
        stock_receive(code="CAFE-2", quantity=4)
        raise RuntimeError("the caller fails after the change")

    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
def test_endpoint_not_subscribed_to_the_type_gets_nothing():
    endpoint_make(event_types=["order.processed"])
    ProductFactory(code="CAFE-3", on_hand=1)

    stock_receive(code="CAFE-3", quantity=1)

    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
def test_deactivated_endpoint_stops_receiving():
    endpoint = endpoint_make(event_types=["stock.changed"])
    ProductFactory(code="CAFE-4", on_hand=1)
    webhook_endpoint_update(endpoint=endpoint, active=False)

    stock_receive(code="CAFE-4", quantity=1)

    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
def test_same_fact_enqueued_twice_is_one_delivery():
    endpoint_make(event_types=["reservation.confirmed"])
    event = {"type": "reservation.confirmed", "key": "res-42", "data": {"reservation_id": "res-42"}}

    webhook_events_enqueue(events=[event])
    webhook_events_enqueue(events=[event])

    assert WebhookDelivery.objects.count() == 1


def test_signature_verifies_only_the_exact_fresh_body():
    body = b'{"id":"e1","type":"stock.changed"}'
    headers = signature_headers(secret="s3cret", body=body, event_id="e1", event_type="stock.changed",
                                timestamp=1_700_000_000)
    header = headers["X-StockPulse-Signature"]

    assert signature_verify(secret="s3cret", header=header, body=body, now=1_700_000_010)
    assert not signature_verify(secret="s3cret", header=header, body=body + b" ", now=1_700_000_010)
    assert not signature_verify(secret="other", header=header, body=body, now=1_700_000_010)
    assert not signature_verify(secret="s3cret", header=header, body=body, now=1_700_000_000 + 3600)
    assert not signature_verify(secret="s3cret", header="garbage", body=body)


def _make_due(delivery_id: int) -> None:
    # Stands in for the backoff delay passing.
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db(transaction=True)
def test_receiver_gets_signed_payload_and_a_retry_after_answering_500(receiver):
    receiver.statuses = [500, 200]
    endpoint_make(url=receiver.url, event_types=["stock.changed"], secret=receiver.secret)
    ProductFactory(code="LEITE-1", on_hand=2)
    stock_receive(code="LEITE-1", quantity=3)
    delivery = WebhookDelivery.objects.get()

    first = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert first.status == DeliveryStatus.PENDING
    assert first.attempts == 1 and first.last_status_code == 500
    assert first.next_attempt_at > timezone.now()
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None  # not due yet: no second request

    _make_due(delivery.pk)
    second = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert second.status == DeliveryStatus.DELIVERED and second.attempts == 2
    assert [r.answered for r in receiver.received] == [500, 200]
    assert all(r.signature_ok for r in receiver.received)
    assert {r.event_id for r in receiver.received} == {str(delivery.event_id)}
    assert receiver.received[1].body["data"]["on_hand"] == 5


@pytest.mark.django_db(transaction=True)
def test_delivery_is_dead_after_the_last_try_and_redelivery_sends_it_again(receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.statuses = [500, 503, 200]
    endpoint_make(url=receiver.url, event_types=["order.processed"], secret=receiver.secret)
    with transaction.atomic():
        webhook_events_enqueue(events=[{"type": "order.processed", "key": "o-1", "data": {"order_id": "o-1"}}])
    delivery = WebhookDelivery.objects.get()

    webhook_delivery_attempt(delivery_id=delivery.pk)
    _make_due(delivery.pk)
    dead = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert dead.status == DeliveryStatus.DEAD and dead.attempts == 2
    assert "503" in dead.last_error

    webhook_deliveries_redeliver(delivery_ids=[delivery.pk])
    sent = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert sent.status == DeliveryStatus.DELIVERED
    assert [r.answered for r in receiver.received] == [500, 503, 200]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_given_up_is_counted_once_committed(receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.statuses = [500]
    endpoint_make(url=receiver.url, event_types=["order.processed"], secret=receiver.secret)
    with transaction.atomic():
        webhook_events_enqueue(events=[{"type": "order.processed", "key": "o-9", "data": {"order_id": "o-9"}}])
    before = gave_up("webhooks")

    dead = webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)

    assert dead.status == DeliveryStatus.DEAD
    assert gave_up("webhooks") == before + 1


@pytest.mark.django_db(transaction=True)
def test_unreachable_receiver_is_retried_later():
    endpoint_make(url="http://127.0.0.1:9/hook", event_types=["order.processed"])
    with transaction.atomic():
        webhook_events_enqueue(events=[{"type": "order.processed", "key": "o-2", "data": {}}])
    delivery = WebhookDelivery.objects.get()

    result = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert result.status == DeliveryStatus.PENDING
    assert result.last_status_code is None and "ConnectionError" in result.last_error


@pytest.mark.django_db
def test_alert_crossings_become_stock_out_and_back_in_deliveries():
    endpoint_make(event_types=["stock.low", "stock.out", "stock.back_in"])
    ProductFactory(code="OVO-12", on_hand=20, low_stock_threshold=5)

    stock_adjust(code="OVO-12", delta=-20, reason="broken")
    stock_receive(code="OVO-12", quantity=30)

    rows = list(WebhookDelivery.objects.order_by("id").values_list("event_type", "payload"))
    assert [t for t, _ in rows] == ["stock.out", "stock.back_in"]
    assert rows[0][1]["data"]["available"] == 0 and rows[1][1]["data"]["from_level"] == "out"


@pytest.mark.django_db(transaction=True)
def test_the_sweep_queues_due_deliveries_and_leaves_the_others(receiver):
    from core.tests.celery_worker import queue_size, queues_purge

    endpoint_make(url=receiver.url, event_types=["order.processed"], secret=receiver.secret)
    with transaction.atomic():
        webhook_events_enqueue(events=[{"type": "order.processed", "key": f"s-{n}", "data": {}} for n in range(3)])
    due, later, done = WebhookDelivery.objects.order_by("pk")
    _make_due(due.pk)
    WebhookDelivery.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    WebhookDelivery.objects.filter(pk=done.pk).update(status=DeliveryStatus.DELIVERED)
    queues_purge()

    swept = webhook_deliveries_sweep()

    assert swept == [due.pk]
    assert queue_size("celery") == 1
    queues_purge()


@pytest.mark.django_db(transaction=True)
def test_a_failed_send_is_retried_by_the_beat_sweep_through_a_real_worker(receiver):
    """The retry path end to end: the first try fails, the sweep task queues the due retry, a worker sends it."""
    from core.tests.celery_worker import queues_purge, running_worker
    from webhooks.tasks import webhook_deliveries_sweep_task

    receiver.statuses = [500, 200]
    endpoint_make(url=receiver.url, event_types=["order.processed"], secret=receiver.secret)
    (delivery,) = deliveries_make(key="retry-1")
    assert webhook_delivery_attempt(delivery_id=delivery.pk).status == DeliveryStatus.PENDING
    _make_due(delivery.pk)
    queues_purge()

    with running_worker("celery"):
        webhook_deliveries_sweep_task.delay()
        delivery_wait_for(delivery, status=DeliveryStatus.DELIVERED)
    queues_purge()

    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    assert [r.answered for r in receiver.received] == [500, 200]


@pytest.mark.django_db
def test_update_with_an_empty_url_is_refused_not_ignored():
    endpoint = endpoint_make(url="https://erp.example.com/hooks")

    with pytest.raises(ValidationFailed) as caught:
        webhook_endpoint_update(endpoint=endpoint, url="")

    assert "url" in caught.value.details
    endpoint.refresh_from_db()
    assert endpoint.url == "https://erp.example.com/hooks"


@pytest.mark.django_db
def test_an_update_from_a_stale_copy_keeps_a_secret_rotated_meanwhile():
    endpoint = endpoint_make(secret="before-rotation-secret")
    stale = WebhookEndpoint.objects.get(pk=endpoint.pk)
    rotated = webhook_endpoint_secret_rotate(endpoint=endpoint)

    webhook_endpoint_update(endpoint=stale, description="ERP")

    fresh = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert (fresh.secret, fresh.description) == (rotated.secret, "ERP")


def _import_counts(products, *, on_hand: int) -> None:
    """An ERP import recounting these products: one transaction changing every one of their stock rows."""
    rows = [{"code": p.code, "on_hand": on_hand} for p in products]
    stock_import(content=json.dumps(rows), fmt="json", reference="erp-recount")


@pytest.mark.django_db
def test_a_bulk_change_of_n_rows_is_ceil_n_over_max_deliveries_per_endpoint(settings):
    settings.WEBHOOK_BATCH_MAX = 4
    erp = endpoint_make(event_types=["stock.changed"])
    shop = endpoint_make(event_types=["stock.changed", "order.processed"])
    products = [ProductFactory(code=f"BULK-{n:02d}", on_hand=1) for n in range(10)]
    assert WebhookDelivery.objects.count() == 0

    _import_counts(products, on_hand=7)

    for endpoint in (erp, shop):
        deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id"))
        assert [(d.event_type, d.event_count) for d in deliveries] == [("batch", 4), ("batch", 3), ("batch", 3)]
        events = [event for d in deliveries for event in d.payload["events"]]
        # Every event once, in the order of the change, each with its own id and the stock hook's data.
        assert [e["data"]["code"] for e in events] == [p.code for p in products]
        assert {e["type"] for e in events} == {"stock.changed"} and {e["data"]["on_hand"] for e in events} == {7}
        assert [e["id"] for e in events] == [
            str(event_id_for("stock.changed", f"{p.code}:v2")) for p in products]


@pytest.mark.django_db
def test_an_endpoint_that_does_not_take_batches_still_gets_one_delivery_per_event(settings):
    settings.WEBHOOK_BATCH_MAX = 4
    endpoint = endpoint_make(event_types=["stock.changed"])
    webhook_endpoint_update(endpoint=endpoint, batches=False)
    products = [ProductFactory(on_hand=1) for _ in range(5)]

    _import_counts(products, on_hand=3)

    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [(d.event_type, d.event_count) for d in deliveries] == [("stock.changed", 1)] * 5
    assert [d.payload["data"]["code"] for d in deliveries] == [p.code for p in products]
    assert all(d.payload["id"] == str(d.event_id) for d in deliveries)


@pytest.mark.django_db
def test_the_same_events_enqueued_twice_as_a_batch_are_one_delivery():
    endpoint_make(event_types=["stock.changed"])
    events = [{"type": "stock.changed", "key": f"SKU-{n}:v1", "data": {"code": f"SKU-{n}"}} for n in range(3)]

    first = webhook_events_enqueue(events=events, batch=True)
    again = webhook_events_enqueue(events=events, batch=True)

    assert len(first) == 1 and again == []
    assert WebhookDelivery.objects.get().event_count == 3


@pytest.mark.django_db(transaction=True)
def test_receiver_gets_each_batch_signed_over_its_body_with_the_batch_id(receiver, settings):
    settings.WEBHOOK_BATCH_MAX = 3
    endpoint_make(url=receiver.url, event_types=["stock.changed"], secret=receiver.secret)
    products = [ProductFactory(on_hand=2) for _ in range(5)]
    _import_counts(products, on_hand=9)
    deliveries = list(WebhookDelivery.objects.order_by("id"))

    sent = [webhook_delivery_attempt(delivery_id=d.pk) for d in deliveries]

    assert [d.status for d in sent] == [DeliveryStatus.DELIVERED] * 2
    assert [len(r.body["events"]) for r in receiver.received] == [3, 2]
    for request, delivery in zip(receiver.received, deliveries):
        assert request.signature_ok and request.event_type == "batch"
        assert request.event_id == request.body["id"] == str(delivery.event_id)
        assert request.body["type"] == "batch" and request.body["created_at"]
    events = [e for r in receiver.received for e in r.body["events"]]
    assert [(e["type"], e["data"]["code"], e["data"]["on_hand"]) for e in events] == [
        ("stock.changed", p.code, 9) for p in products]
    assert len({e["id"] for e in events}) == 5


@pytest.mark.django_db(transaction=True)
def test_a_changes_deliveries_reach_the_receiver_in_the_order_of_its_events(receiver, settings):
    from core.tests.celery_worker import queues_purge, running_worker

    settings.WEBHOOK_BATCH_MAX = 2
    endpoint_make(url=receiver.url, event_types=["stock.changed"], secret=receiver.secret)
    products = [ProductFactory(on_hand=1) for _ in range(6)]
    queues_purge()

    with running_worker("celery"):
        _import_counts(products, on_hand=5)
        deliveries = list(WebhookDelivery.objects.order_by("id"))
        for delivery in deliveries:
            delivery_wait_for(delivery, status=DeliveryStatus.DELIVERED)
    queues_purge()

    assert [d.status for d in deliveries] == [DeliveryStatus.DELIVERED] * 3
    events = [event for request in receiver.received for event in request.body.get("events", [request.body])]
    assert [e["data"]["code"] for e in events] == [p.code for p in products]


# Locations: every location's stock and alert events, each naming its location, with ids per product, location
# and version (the default location's ids as before locations).


@pytest.fixture
def store_b():
    return LocationFactory(code="LOJA-B", name="Loja Bairro")


def _sent(endpoint=None) -> list[dict]:
    """Every event written to the outbox (of one endpoint, or all), in the order sent, batches opened."""
    rows = WebhookDelivery.objects.order_by("id")
    if endpoint is not None:
        rows = rows.filter(endpoint=endpoint)
    return [event for row in rows for event in row.payload.get("events", [row.payload])]


def _version(product, location) -> int:
    return Stock.objects.get(product=product, location=location).version


@pytest.mark.django_db
def test_stock_falling_low_then_out_at_another_location_is_sent_naming_it(store_b):
    endpoint_make(event_types=["stock.low", "stock.out"])
    product = ProductFactory(code="CAFE-B1", on_hand=20, low_stock_threshold=5)
    stock_at_location(product, store_b, on_hand=6)
    assert WebhookDelivery.objects.count() == 0

    stock_adjust(code="CAFE-B1", delta=-3, reason="broken", location="LOJA-B")
    low_version = _version(product, store_b)
    stock_adjust(code="CAFE-B1", delta=-3, reason="broken", location="LOJA-B")

    events = _sent()
    assert [(e["type"], e["data"]["location"], e["data"]["available"], e["data"]["version"]) for e in events] == [
        ("stock.low", "LOJA-B", 3, low_version), ("stock.out", "LOJA-B", 0, _version(product, store_b))]
    assert {e["data"]["code"] for e in events} == {"CAFE-B1"}
    assert Stock.objects.get(product=product, location=location_default()).on_hand == 20


@pytest.mark.django_db
def test_back_in_stock_at_another_location_is_sent_naming_it(store_b):
    endpoint_make(event_types=["stock.back_in"])
    product = ProductFactory(code="CAFE-B2", on_hand=1, low_stock_threshold=5)
    stock_at_location(product, store_b, on_hand=1)
    stock_adjust(code="CAFE-B2", delta=-1, reason="broken")
    stock_adjust(code="CAFE-B2", delta=-1, reason="broken", location="LOJA-B")
    assert WebhookDelivery.objects.count() == 0  # out at both: not a back_in yet

    stock_receive(code="CAFE-B2", quantity=10, location="LOJA-B")

    (event,) = _sent()
    assert event["type"] == "stock.back_in"
    assert (event["data"]["location"], event["data"]["from_level"], event["data"]["available"]) == ("LOJA-B", "out", 10)
    assert event["data"]["version"] == _version(product, store_b)


@pytest.mark.django_db
def test_the_same_version_at_two_locations_is_two_stock_changed_deliveries(store_b):
    endpoint_make(event_types=["stock.changed"])
    product = ProductFactory(code="CAFE-B3", on_hand=5)
    stock_at_location(product, store_b, on_hand=5)
    default = location_default()

    stock_receive(code="CAFE-B3", quantity=1)
    stock_receive(code="CAFE-B3", quantity=2, location="LOJA-B")

    assert _version(product, default) == _version(product, store_b) == 2
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [(d.payload["data"]["location"], d.payload["data"]["on_hand"]) for d in deliveries] == [
        (default.code, 6), ("LOJA-B", 7)]
    # The default location's id is derived as before locations; the other one's names its location.
    assert deliveries[0].event_id == event_id_for("stock.changed", "CAFE-B3:v2")
    assert deliveries[1].event_id == event_id_for("stock.changed", "CAFE-B3@LOJA-B:v2")


@pytest.mark.django_db
def test_a_transfer_is_one_event_per_location_in_a_batch_and_apart(store_b):
    batched = endpoint_make(event_types=["stock.changed"])
    single = endpoint_make(event_types=["stock.changed"])
    webhook_endpoint_update(endpoint=single, batches=False)
    product = ProductFactory(code="CAFE-B4", on_hand=5)
    stock_at_location(product, store_b, on_hand=5)
    default = location_default()

    transfer_create(code="CAFE-B4", source=default.code, destination="LOJA-B", quantity=2)

    assert _version(product, default) == _version(product, store_b) == 2
    (batch,) = WebhookDelivery.objects.filter(endpoint=batched)
    assert (batch.event_type, batch.event_count) == ("batch", 2)
    for endpoint in (batched, single):
        events = _sent(endpoint)
        assert {(e["data"]["location"], e["data"]["on_hand"], e["data"]["version"]) for e in events} == {
            ("LOJA-B", 7, 2), (default.code, 3, 2)}
        assert len({e["id"] for e in events}) == 2
    assert WebhookDelivery.objects.filter(endpoint=single).count() == 2


@pytest.mark.django_db
def test_a_transfer_emptying_one_location_into_another_sends_each_alert_with_its_own_version(store_b):
    endpoint_make(event_types=["stock.out", "stock.back_in"])
    product = ProductFactory(code="CAFE-B5", on_hand=3, low_stock_threshold=5)
    stock_at_location(product, store_b, on_hand=3)
    default = location_default()
    stock_adjust(code="CAFE-B5", delta=-3, reason="broken", location="LOJA-B")
    assert [(e["type"], e["data"]["location"]) for e in _sent()] == [("stock.out", "LOJA-B")]

    transfer_create(code="CAFE-B5", source=default.code, destination="LOJA-B", quantity=3)

    (batch,) = WebhookDelivery.objects.filter(event_type="batch")
    events = batch.payload["events"]
    assert _version(product, default) == 2 and _version(product, store_b) == 3
    assert sorted((e["type"], e["data"]["location"], e["data"]["version"], e["data"]["available"]) for e in events) == [
        ("stock.back_in", "LOJA-B", 3, 3), ("stock.out", default.code, 2, 0)]


@pytest.mark.django_db
def test_the_default_locations_alert_keeps_its_id_and_data_and_gains_location():
    endpoint = endpoint_make(event_types=["stock.changed", "stock.out"])
    webhook_endpoint_update(endpoint=endpoint, batches=False)
    ProductFactory(code="OVO-13", on_hand=20, low_stock_threshold=5)

    stock_adjust(code="OVO-13", delta=-20, reason="broken")

    changed, out = WebhookDelivery.objects.order_by("id")
    assert changed.event_id == event_id_for("stock.changed", "OVO-13:v2")
    assert out.event_id == event_id_for("stock.out", "OVO-13:out:v2")
    assert out.payload["data"] == {"type": "stock.out", "code": "OVO-13", "from_level": "ok", "to_level": "out",
                                   "available": 0, "version": 2, "location": location_default().code}


@pytest.mark.django_db
def test_a_default_location_event_enqueued_before_the_upgrade_is_not_sent_twice():
    endpoint_make(event_types=["stock.out"])
    ProductFactory(code="OVO-14", on_hand=20, low_stock_threshold=5)
    # As the code before locations wrote it: the same key, a payload without "location".
    (earlier,) = deliveries_make(key="OVO-14:out:v2", event_type="stock.out")

    stock_adjust(code="OVO-14", delta=-20, reason="broken")

    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [earlier.pk]


@pytest.mark.django_db
def test_an_import_at_another_location_batches_its_changes_and_alerts_naming_it(store_b, settings):
    settings.WEBHOOK_BATCH_MAX = 10
    endpoint_make(event_types=["stock.changed", "stock.out"])
    products = [ProductFactory(code=f"IMP-B{n}", on_hand=4, low_stock_threshold=2) for n in range(2)]
    for product in products:
        stock_at_location(product, store_b, on_hand=4)

    stock_import(content=json.dumps([{"code": p.code, "on_hand": 0} for p in products]), fmt="json",
                 reference="erp-recount", location="LOJA-B")

    (batch,) = WebhookDelivery.objects.all()
    events = batch.payload["events"]
    assert sorted((e["type"], e["data"]["code"], e["data"]["location"]) for e in events) == [
        ("stock.changed", "IMP-B0", "LOJA-B"), ("stock.changed", "IMP-B1", "LOJA-B"),
        ("stock.out", "IMP-B0", "LOJA-B"), ("stock.out", "IMP-B1", "LOJA-B")]
    assert len({e["id"] for e in events}) == 4
    assert {Stock.objects.get(product=p, location=location_default()).on_hand for p in products} == {4}


@pytest.mark.django_db(transaction=True)
def test_receiver_gets_an_alert_at_another_location_naming_it(receiver):
    store_b = LocationFactory(code="LOJA-B", name="Loja Bairro")
    endpoint_make(url=receiver.url, event_types=["stock.out"], secret=receiver.secret)
    product = ProductFactory(code="LEITE-B", on_hand=2)
    stock_at_location(product, store_b, on_hand=2)
    stock_adjust(code="LEITE-B", delta=-2, reason="broken", location="LOJA-B")
    delivery = WebhookDelivery.objects.get()

    sent = webhook_delivery_attempt(delivery_id=delivery.pk)

    assert sent.status == DeliveryStatus.DELIVERED
    (request,) = receiver.received
    assert request.signature_ok and request.event_type == "stock.out"
    assert request.event_id == request.body["id"] == str(delivery.event_id)
    assert (request.body["data"]["code"], request.body["data"]["location"], request.body["data"]["available"]) == (
        "LEITE-B", "LOJA-B", 0)
