"""A Telegram outage end to end: a real worker and sweep against a fake Bot API that answers 5xx, refuses
connections and goes silent, then recovers. Every alert arrives once, in order per chat, and /metrics
shows the backlog meanwhile. The backoff is made short; the delivery code is the real one."""
import threading
import time

import pytest

from core.tests.metrics import samples_in_text
from inventory import services as inventory
from inventory.tests.factories import ProductFactory
from notifications.models import AlertOutbox, OutboxState
from notifications.tasks import alert_outbox_sweep_task
from notifications.tests.factories import DriverFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def alerts_waiting(client) -> float:
    text = client.get("/metrics").content.decode()
    return samples_in_text(text, "stockpulse_pipeline_waiting")[(("pipeline", "alerts"),)]


def crossing(product) -> None:
    inventory.stock_adjust(code=product.code, delta=-3, reason="sale")  # 6 → 3: LOW


def wait_until(predicate, timeout: float):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not predicate():
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def beat():
    """The alert-outbox-sweep beat entry, every 0.2 s, while the test runs."""
    stop = threading.Event()

    def tick():
        while not stop.wait(0.2):
            alert_outbox_sweep_task.delay()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


def test_an_outage_delivers_every_alert_once_afterwards_in_order_per_chat(
        fake_telegram, celery_worker, beat, settings, client):
    settings.ALERT_RETRY_BASE_SECONDS = 0.1
    settings.ALERT_RETRY_MAX_SECONDS = 0.5
    settings.ALERT_SWEEP_GRACE_SECONDS = 0
    settings.TELEGRAM_TIMEOUT = 0.3
    settings.TELEGRAM_RETRY_BUDGET = 0.5
    settings.TELEGRAM_LATE_ANSWER_SECONDS = 1.0
    fake_telegram.silent_seconds = 0.6
    drivers = [DriverFactory(), DriverFactory()]
    products = [ProductFactory(on_hand=6, name=f"Produto {n}", code=f"OUT-{n}") for n in range(6)]
    assert alerts_waiting(client) == 0

    fake_telegram.outage = "5xx"
    crossing(products[0])
    crossing(products[1])
    assert wait_until(lambda: AlertOutbox.objects.filter(state=OutboxState.FAILED).count() == 4, timeout=10)
    fake_telegram.go_down()  # connections refused
    crossing(products[2])
    crossing(products[3])
    time.sleep(1)
    fake_telegram.come_back()
    fake_telegram.outage = "silent"
    crossing(products[4])
    crossing(products[5])
    time.sleep(1)
    during = alerts_waiting(client)
    assert fake_telegram.delivered("sendMessage") == []
    assert len([c for c in fake_telegram.calls_to("sendMessage") if c.status == 503]) >= 2
    assert len([c for c in fake_telegram.calls_to("sendMessage") if c.status == 0]) >= 1

    fake_telegram.outage = None  # Telegram is back
    assert wait_until(lambda: AlertOutbox.objects.filter(state=OutboxState.SENT).count() == 12, timeout=20)
    time.sleep(0.5)  # anything sent twice would arrive now

    assert during == 12
    assert alerts_waiting(client) == 0
    for driver in drivers:
        texts = [c.payload["text"] for c in fake_telegram.delivered("sendMessage")
                 if c.payload["chat_id"] == driver.chat_id]
        first_seen = []
        for product in products:
            found = [i for i, text in enumerate(texts) if product.name in text]
            assert len(found) == 1, (product.name, texts)  # exactly once
            first_seen.append(found[0])
        assert first_seen == sorted(first_seen)  # none before an earlier one
