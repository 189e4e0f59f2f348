"""Orders processed by real Celery worker processes: end to end over Redis, SIGKILL mid-processing, RabbitMQ,
and on a worker of their own while webhook deliveries wait."""
import json
import socket
import threading
import uuid
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from kombu import Connection

from core.tests.factories import ApiClientFactory
from inventory.importing import stock_import
from inventory.models import MovementKind, Stock, StockMovement
from inventory.tests.factories import ProductFactory
from orders.models import InvoiceSeries, Order, OrderStatus, OrderStep
from orders.services import order_create, orders_requeue_stuck
from orders.tasks import order_process_task
from orders.tests.worker import Worker, _database_url, wait_for
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.tests.factories import endpoint_make

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _statuses() -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Order.objects.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_order_placed_over_the_api_is_processed_by_a_worker(empty_queue, receiver, api_client_with_scopes):
    endpoint_make(url=receiver.url, event_types=["order.processed"], secret=receiver.secret)
    ProductFactory(code="VINHO-1", on_hand=8)
    http = api_client_with_scopes("read", "reserve")
    # The Procfile's orders worker and, for the order.processed webhook, the default one.
    worker = Worker(queues="orders,celery")
    try:
        accepted = http.post("/api/v1/orders", {"lines": [{"code": "VINHO-1", "quantity": 3}]}, format="json")
        assert accepted.status_code == 202 and accepted.json()["status"] == "received"
        order_id = accepted.json()["id"]

        wait_for(lambda: Order.objects.filter(pk=order_id, status=OrderStatus.PROCESSED).exists(), worker=worker)
        wait_for(lambda: receiver.received, worker=worker)
    finally:
        worker.stop()
        connection.close()

    shown = http.get(f"/api/v1/orders/{order_id}").json()
    assert shown["status"] == "processed" and shown["invoice"] == "1-1"
    assert [s["step"] for s in shown["steps"]] == ["received", "stock_confirmed", "invoiced", "processed"]
    stock = Stock.objects.get(product__code="VINHO-1")
    assert (stock.on_hand, stock.reserved) == (5, 0)
    hook = receiver.received[0]
    assert hook.signature_ok and hook.event_type == "order.processed"
    assert hook.body["data"]["order_id"] == order_id


def _hold_invoice_counter(locked: threading.Event, release: threading.Event) -> None:
    """Hold the invoice counter row from outside Django so workers stop mid-processing, stock already sold."""
    with psycopg.connect(_database_url().replace("postgres://", "postgresql://"), autocommit=False) as conn:
        conn.execute("SELECT * FROM orders_invoiceseries WHERE series = '1' FOR UPDATE")
        locked.set()
        release.wait(60)
        conn.rollback()


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                       "WHERE NOT l.granted AND a.datname = current_database()")
        return cursor.fetchone()[0]


def test_worker_killed_mid_processing_then_replaced_processes_every_order_once(empty_queue):
    client = ApiClientFactory(scopes=["reserve"])
    ProductFactory(code="CERVEJA-1", on_hand=100)
    ProductFactory(code="CERVEJA-2", on_hand=100)
    InvoiceSeries.objects.create(series="1")
    orders = [
        order_create(client=client, lines=[{"code": "CERVEJA-1", "quantity": 1}, {"code": "CERVEJA-2", "quantity": 2}])
        for _ in range(12)
    ]
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_invoice_counter, args=(locked, release))
    holder.start()
    assert locked.wait(10)
    first = Worker(queues="orders", concurrency=2)
    try:
        # Both pool processes are inside order_process, stock confirmed, blocked on the invoice counter.
        wait_for(lambda: _waiting_on_locks() >= 2, worker=first)
        first.kill()
    finally:
        release.set()
        holder.join()
        first.stop()
    assert _statuses() == {"received": 12}

    second = Worker(queues="orders", concurrency=2)
    try:
        # The killed worker's tasks were never acked; the beat sweep is what brings them back.
        orders_requeue_stuck(older_than=timedelta(0))
        wait_for(lambda: _statuses() == {"processed": 12}, timeout=60, worker=second)
    finally:
        second.stop()
        connection.close()

    numbers = sorted(Order.objects.values_list("invoice_number", flat=True))
    assert numbers == list(range(1, 13))
    assert InvoiceSeries.objects.get(series="1").last_number == 12
    assert OrderStep.objects.filter(step="processed").count() == 12
    sales = StockMovement.objects.filter(kind=MovementKind.SALE)
    assert sales.count() == 24
    assert {r for r in sales.values_list("reservation_id", flat=True)} == {o.reservation_id for o in orders}
    assert Stock.objects.get(product__code="CERVEJA-1").on_hand == 88
    assert Stock.objects.get(product__code="CERVEJA-2").on_hand == 76
    assert sum(s.reserved for s in Stock.objects.all()) == 0


AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _rabbitmq_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            pass
        with Connection(AMQP_URL, connect_timeout=2) as conn:
            conn.connect()
        return True
    except Exception:
        return False


def test_order_is_processed_through_a_rabbitmq_broker():
    if not _rabbitmq_answers():
        pytest.skip("RabbitMQ does not answer on 127.0.0.1:5672")
    client = ApiClientFactory(scopes=["reserve"])
    ProductFactory(code="AGUA-1", on_hand=4)
    order = order_create(client=client, lines=[{"code": "AGUA-1", "quantity": 1}])
    # A queue of our own: other runs may share this RabbitMQ.
    queue = f"orders-test-{uuid.uuid4().hex[:12]}"
    worker = Worker(broker=AMQP_URL, queues=queue, concurrency=1)
    try:
        with Connection(AMQP_URL) as conn:
            order_process_task.apply_async(args=[str(order.pk)], queue=queue, connection=conn)
        wait_for(lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.PROCESSED).exists(), worker=worker)
    finally:
        worker.stop()
        connection.close()
        with Connection(AMQP_URL) as conn:
            conn.default_channel.queue_delete(queue)

    assert Stock.objects.get(product__code="AGUA-1").on_hand == 3


def test_an_order_is_processed_while_an_imports_webhook_deliveries_wait_on_a_slow_receiver(
        empty_queue, receiver, settings):
    """Issue #14 item 7: the orders worker takes an order while the main worker is stuck on webhook sends."""
    settings.WEBHOOK_BATCH_MAX = 5
    endpoint_make(url=receiver.url, event_types=["stock.changed"], secret=receiver.secret)
    products = [ProductFactory(code=f"IMPORT-{n:02d}", on_hand=1) for n in range(40)]
    client = ApiClientFactory(scopes=["reserve"])
    receiver.gate.clear()  # the receiver takes every request and answers none until the test says so
    # As the Procfile: the main worker (default and projections queues) and the orders worker.
    main = Worker(queues="celery,projections", concurrency=1, env={"WEBHOOK_TIMEOUT_SECONDS": "60"})
    orders = Worker(queues="orders", concurrency=1)
    try:
        stock_import(content=json.dumps([{"code": p.code, "on_hand": 9} for p in products]), fmt="json")
        batches = WebhookDelivery.objects.filter(event_type="batch")
        assert batches.count() == 8  # 40 rows in one change: ceil(40 / 5) deliveries, not 40
        wait_for(lambda: len(receiver.received) == 1, timeout=60, worker=main)  # main is inside the first POST

        order = order_create(client=client, lines=[{"code": "IMPORT-00", "quantity": 2}])
        wait_for(lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.PROCESSED).exists(), timeout=60,
                 worker=orders)

        # Processed while every delivery of the import is still pending, the first one held by the receiver.
        assert batches.filter(status=DeliveryStatus.PENDING).count() == 8
        assert len(receiver.received) == 1
        assert list(OrderStep.objects.filter(order=order).order_by("id").values_list("step", flat=True)) == [
            "received", "stock_confirmed", "invoiced", "processed"]

        receiver.gate.set()
        wait_for(lambda: not batches.filter(status=DeliveryStatus.PENDING).exists(), timeout=60, worker=main)
    finally:
        receiver.gate.set()
        main.stop()
        orders.stop()
        connection.close()

    sent = [r.body for r in receiver.received if r.event_type == "batch"]
    assert [len(body["events"]) for body in sent] == [5] * 8
    assert [e["data"]["code"] for body in sent for e in body["events"]] == [p.code for p in products]
