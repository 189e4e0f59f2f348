"""Order services: accepting (with its reservation), processing once, failing with a reason, retrying, sweeping."""
from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import Conflict, Gone, InsufficientStock, Unprocessable, ValidationFailed
from core.tests.factories import ApiClientFactory
from core.tests.metrics import gave_up
from inventory.models import MovementKind, Stock, StockMovement
from inventory.tests.factories import ProductFactory
from orders.models import Order, OrderStatus
from orders.services import order_create, order_process, orders_requeue_stuck, orders_retry
from reservations.models import Reservation, ReservationStatus
from reservations.services import reservation_create, reservation_release
from webhooks.models import WebhookDelivery
from webhooks.tests.factories import endpoint_make


@pytest.fixture
def client_record(db):
    return ApiClientFactory(scopes=["read", "reserve"])


def _stock(code: str) -> Stock:
    return Stock.objects.get(product__code=code)


@pytest.mark.django_db
def test_order_from_reservation_is_received_and_keeps_the_units_held(client_record):
    ProductFactory(code="ARROZ-5", on_hand=10)
    reservation = reservation_create(client=client_record, lines=[{"code": "ARROZ-5", "quantity": 2}])
    first_expiry = reservation.expires_at

    order = order_create(client=client_record, reservation_id=reservation.pk)

    assert order.status == OrderStatus.RECEIVED
    assert [(line.product.code, line.quantity) for line in order.lines.all()] == [("ARROZ-5", 2)]
    assert list(order.steps.values_list("step", flat=True)) == ["received"]
    reservation.refresh_from_db()
    assert reservation.expires_at > first_expiry + timedelta(hours=1)
    assert _stock("ARROZ-5").reserved == 2


@pytest.mark.django_db
def test_order_with_lines_reserves_them_in_the_same_step(client_record):
    ProductFactory(code="FEIJAO-1", on_hand=5)

    order = order_create(client=client_record, lines=[{"code": "FEIJAO-1", "quantity": 3}])

    assert order.reservation.status == ReservationStatus.ACTIVE
    assert [(line.product.code, line.quantity) for line in order.lines.all()] == [("FEIJAO-1", 3)]
    assert _stock("FEIJAO-1").reserved == 3


@pytest.mark.django_db
def test_order_with_too_many_units_is_refused_and_leaves_nothing(client_record):
    ProductFactory(code="FEIJAO-2", on_hand=1)

    with pytest.raises(InsufficientStock) as caught:
        order_create(client=client_record, lines=[{"code": "FEIJAO-2", "quantity": 3}])

    assert caught.value.lines == [{"code": "FEIJAO-2", "requested": 3, "available": 1}]
    assert Order.objects.count() == 0 and Reservation.objects.count() == 0


@pytest.mark.django_db
def test_order_needs_exactly_one_of_reservation_or_lines(client_record):
    with pytest.raises(ValidationFailed):
        order_create(client=client_record)
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_same_idempotency_key_gives_back_the_same_order(client_record):
    ProductFactory(code="OLEO-1", on_hand=5)
    lines = [{"code": "OLEO-1", "quantity": 1}]

    first = order_create(client=client_record, lines=lines, idempotency_key="k-1")
    again = order_create(client=client_record, lines=lines, idempotency_key="k-1")

    assert again.pk == first.pk and again.replayed
    assert Order.objects.count() == 1 and _stock("OLEO-1").reserved == 1
    with pytest.raises(Unprocessable):
        order_create(client=client_record, lines=[{"code": "OLEO-1", "quantity": 2}], idempotency_key="k-1")


@pytest.mark.django_db
def test_a_reservation_is_ordered_once(client_record):
    ProductFactory(code="SAL-1", on_hand=5)
    reservation = reservation_create(client=client_record, lines=[{"code": "SAL-1", "quantity": 1}])
    order_create(client=client_record, reservation_id=reservation.pk)

    with pytest.raises(Conflict):
        order_create(client=client_record, reservation_id=reservation.pk)
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_released_or_expired_reservation_cannot_be_ordered(client_record):
    ProductFactory(code="SAL-2", on_hand=5)
    released = reservation_create(client=client_record, lines=[{"code": "SAL-2", "quantity": 1}])
    reservation_release(reservation_id=released.pk, client=client_record)
    expired = reservation_create(client=client_record, lines=[{"code": "SAL-2", "quantity": 1}])
    Reservation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(Conflict):
        order_create(client=client_record, reservation_id=released.pk)
    with pytest.raises(Gone):
        order_create(client=client_record, reservation_id=expired.pk)
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_processing_sells_the_units_and_numbers_the_invoice(client_record):
    ProductFactory(code="CAFE-9", on_hand=10)
    order = order_create(client=client_record, lines=[{"code": "CAFE-9", "quantity": 4}])

    processed = order_process(order_id=order.pk)

    assert processed.status == OrderStatus.PROCESSED
    assert (processed.invoice_series, processed.invoice_number) == ("1", 1)
    stock = _stock("CAFE-9")
    assert (stock.on_hand, stock.reserved) == (6, 0)
    sale = StockMovement.objects.get(kind=MovementKind.SALE)
    assert (sale.quantity, sale.reservation_id) == (-4, order.reservation_id)
    assert list(processed.steps.values_list("step", flat=True)) == [
        "received", "stock_confirmed", "invoiced", "processed"]


@pytest.mark.django_db
def test_processing_twice_changes_nothing_the_second_time(client_record):
    ProductFactory(code="CAFE-8", on_hand=10)
    order = order_create(client=client_record, lines=[{"code": "CAFE-8", "quantity": 4}])
    order_process(order_id=order.pk)

    order_process(order_id=order.pk)

    assert _stock("CAFE-8").on_hand == 6
    assert StockMovement.objects.filter(kind=MovementKind.SALE).count() == 1
    assert Order.objects.get().invoice_number == 1


@pytest.mark.django_db
def test_invoice_numbers_follow_each_other(client_record):
    ProductFactory(code="CAFE-7", on_hand=10)
    orders = [order_create(client=client_record, lines=[{"code": "CAFE-7", "quantity": 1}]) for _ in range(3)]

    numbers = [order_process(order_id=o.pk).invoice_number for o in orders]

    assert numbers == [1, 2, 3]


@pytest.mark.django_db
def test_order_whose_reservation_expired_fails_with_the_reason_and_can_be_retried(client_record):
    ProductFactory(code="PAO-1", on_hand=3)
    order = order_create(client=client_record, lines=[{"code": "PAO-1", "quantity": 2}])
    Reservation.objects.filter(pk=order.reservation_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    failed = order_process(order_id=order.pk)

    assert failed.status == OrderStatus.FAILED and failed.failure_reason.startswith("gone")
    assert (_stock("PAO-1").on_hand, _stock("PAO-1").reserved) == (3, 0)
    assert orders_retry(order_ids=[order.pk]) == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.RECEIVED
    assert list(order.steps.values_list("step", flat=True))[-2:] == ["failed", "retried"]


@pytest.mark.django_db
def test_a_failed_order_is_counted_once_committed(client_record, django_capture_on_commit_callbacks):
    ProductFactory(code="PAO-9", on_hand=3)
    order = order_create(client=client_record, lines=[{"code": "PAO-9", "quantity": 1}])
    Reservation.objects.filter(pk=order.reservation_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = gave_up("orders")

    with django_capture_on_commit_callbacks(execute=True):
        failed = order_process(order_id=order.pk)

    assert failed.status == OrderStatus.FAILED
    assert gave_up("orders") == before + 1


@pytest.mark.django_db
def test_sweep_queues_again_only_orders_left_received(client_record):
    ProductFactory(code="PAO-2", on_hand=5)
    stuck = order_create(client=client_record, lines=[{"code": "PAO-2", "quantity": 1}])
    done = order_create(client=client_record, lines=[{"code": "PAO-2", "quantity": 1}])
    order_process(order_id=done.pk)
    fresh = order_create(client=client_record, lines=[{"code": "PAO-2", "quantity": 1}])
    Order.objects.filter(pk__in=[stuck.pk, done.pk]).update(queued_at=timezone.now() - timedelta(minutes=5))

    requeued = orders_requeue_stuck(older_than=timedelta(minutes=1))

    assert requeued == [stuck.pk]
    assert fresh.pk not in requeued
    assert stuck.steps.filter(step="requeued").count() == 1


@pytest.mark.django_db
def test_processing_writes_the_order_processed_webhook_in_its_transaction(client_record):
    endpoint_make(event_types=["order.processed", "reservation.confirmed"])
    ProductFactory(code="MEL-1", on_hand=5)
    order = order_create(client=client_record, lines=[{"code": "MEL-1", "quantity": 1}])
    assert WebhookDelivery.objects.count() == 0

    order_process(order_id=order.pk)

    types = sorted(WebhookDelivery.objects.values_list("event_type", flat=True))
    assert types == ["order.processed", "reservation.confirmed"]
    payload = WebhookDelivery.objects.get(event_type="order.processed").payload
    assert payload["data"]["order_id"] == str(order.pk) and payload["data"]["invoice"] == "1-1"
