"""Tests for the pipelines' backlog on /metrics: rows waiting and how late the oldest due one is, read from PostgreSQL."""
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from core import pipelines
from core.tests.factories import ApiClientFactory
from core.tests.metrics import samples_in_text
from inventory import services as inventory
from inventory.tests.factories import ProductFactory
from notifications.models import AlertOutbox
from notifications.tests.factories import DriverFactory
from orders.models import Order
from orders.services import order_create
from webhooks.models import WebhookDelivery
from webhooks.tests.factories import deliveries_make, endpoint_make

# The backlog is read on a thread of its own, over its own connection: it sees committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)

PIPELINES = {"alerts", "orders", "webhooks"}


def _backlog(client) -> tuple[dict[str, float], dict[str, float]]:
    """(waiting, oldest due seconds) by pipeline, as a scrape of /metrics reports them."""
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    return tuple({dict(labels)["pipeline"]: value for labels, value in samples_in_text(text, name).items()}
                 for name in ("stockpulse_pipeline_waiting", "stockpulse_pipeline_oldest_due_seconds"))


def test_with_nothing_waiting_every_pipeline_reports_zero(client):
    waiting, late = _backlog(client)

    assert waiting == {name: 0 for name in PIPELINES}
    assert late == {name: 0 for name in PIPELINES}


def test_waiting_rows_are_counted_and_the_oldest_due_one_says_how_late_the_pipeline_is(client):
    now = timezone.now()
    product = ProductFactory(on_hand=6)
    DriverFactory()
    inventory.stock_adjust(code=product.code, delta=-3, reason="test")  # 6 → 3 crosses the threshold of 5
    AlertOutbox.objects.update(updated_at=now - timedelta(seconds=120))
    endpoint_make(event_types=["order.processed"])
    endpoint_make(url="http://127.0.0.1:9/other", event_types=["order.processed"])
    due, retry_later = deliveries_make(key="k-1")
    WebhookDelivery.objects.filter(pk=due.pk).update(next_attempt_at=now - timedelta(seconds=30))
    WebhookDelivery.objects.filter(pk=retry_later.pk).update(next_attempt_at=now + timedelta(minutes=10))
    ordered = ProductFactory(on_hand=10)
    order = order_create(client=ApiClientFactory(), lines=[{"code": ordered.code, "quantity": 1}])
    Order.objects.filter(pk=order.pk).update(queued_at=now - timedelta(seconds=45))
    # Nothing was delivered or processed: no worker runs the tasks queued after these commits.

    waiting, late = _backlog(client)

    assert waiting == {"alerts": 1, "webhooks": 2, "orders": 1}
    # Seconds since the fixed times above, plus however long the test took to get here.
    assert 120 <= late["alerts"] < 180
    assert 30 <= late["webhooks"] < 90  # the delivery to retry in ten minutes is waiting, not late
    assert 45 <= late["orders"] < 105


def test_a_pipeline_that_cannot_be_read_is_left_out_and_the_scrape_still_answers(client, monkeypatch):
    def unreadable(*, now):
        raise RuntimeError("no such table")

    readers = pipelines.backlog_readers()
    monkeypatch.setattr(pipelines, "backlog_readers", lambda: {**readers, "broken": unreadable})

    waiting, late = _backlog(client)

    assert set(waiting) == set(late) == PIPELINES


def test_a_read_over_its_budget_leaves_the_backlog_out_and_the_scrape_still_answers(client, monkeypatch, settings):
    held, release = threading.Event(), threading.Event()

    def stuck(*, now):  # as a read waits on a pool whose database does not answer
        held.set()
        release.wait(10)
        raise RuntimeError("gave up")

    readers = pipelines.backlog_readers()
    monkeypatch.setattr(pipelines, "backlog_readers", lambda: {**readers, "stuck": stuck})
    settings.METRICS_BACKLOG_SECONDS = 0.2
    try:
        waiting, late = _backlog(client)
        assert held.is_set()
        assert waiting == late == {}
        assert "stockpulse_http_requests_total" in client.get("/metrics").content.decode()
    finally:
        release.set()
