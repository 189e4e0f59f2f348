"""End-to-end through a real Celery worker and Redis broker: after-commit delivery, the sweep, the alerts queue, the
buyers' daily digest job."""
import time
from collections import Counter

import pytest
from celery.worker import state as worker_state
from django.db import connection

from config.celery_app import app as celery_app
from core.tests.celery_worker import queue_size, queues_purge
from inventory import services as inventory
from inventory.tests.factories import ProductFactory
from notifications import services
from notifications.models import AlertKind, AlertOutbox, OutboxState, TelegramUpdate
from notifications.tasks import alert_outbox_sweep_task, reorder_digest_task
from notifications.tests.conftest import running_worker
from notifications.tests.factories import BuyerFactory, DriverFactory, open_suggestion
from projections.tasks import projection_recompute_task
from webhooks.tasks import webhook_delivery_send_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_rows(state: str, count: int, timeout: float = 10.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = AlertOutbox.objects.filter(state=state).count()
        if found >= count:
            return found
        time.sleep(0.05)
    return AlertOutbox.objects.filter(state=state).count()


def test_crossing_is_delivered_by_the_worker_after_commit(fake_telegram, celery_worker):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    assert fake_telegram.calls == []

    inventory.stock_adjust(code=product.code, delta=-3, reason="sale")

    calls = fake_telegram.wait_for("sendMessage", 1)
    assert wait_rows(OutboxState.SENT, 1) == 1
    assert [c.payload["chat_id"] for c in calls] == [driver.chat_id]


def test_a_lost_task_is_delivered_exactly_once_by_the_sweep(fake_telegram, settings):
    settings.ALERT_SWEEP_GRACE_SECONDS = 0
    product = ProductFactory(on_hand=6)
    DriverFactory()
    queues_purge()
    inventory.stock_adjust(code=product.code, delta=-3, reason="sale")
    assert AlertOutbox.objects.get().state == OutboxState.PENDING
    # No worker was running: the queued task is dropped, as a worker killed after taking it would drop it.
    assert queue_size("alerts") >= 1
    assert queues_purge() >= 1  # ours, and any other app's after-commit task
    connection.close()

    with running_worker():
        alert_outbox_sweep_task.delay()
        fake_telegram.wait_for("sendMessage", 1)
        assert wait_rows(OutboxState.SENT, 1) == 1
        alert_outbox_sweep_task.delay()
        alert_outbox_sweep_task.delay()
        time.sleep(0.5)

    assert len(fake_telegram.calls_to("sendMessage")) == 1


def test_a_worker_killed_after_claiming_leaves_the_row_to_the_sweep_once_the_lease_ends(
        fake_telegram, celery_worker, settings):
    settings.ALERT_SWEEP_GRACE_SECONDS = 0
    settings.ALERT_CLAIM_SECONDS = 0.5
    settings.TELEGRAM_BOT_TOKEN = ""  # the commit queues nothing: only the claim below knows the row
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    inventory.stock_adjust(code=product.code, delta=-3, reason="sale")
    services._outbox_claim(driver_id=driver.pk, token="dead-worker")
    connection.close()
    settings.TELEGRAM_BOT_TOKEN = fake_telegram.token

    alert_outbox_sweep_task.delay()  # within the lease: nothing is due yet
    time.sleep(0.2)
    assert fake_telegram.calls_to("sendMessage") == []
    time.sleep(0.4)
    alert_outbox_sweep_task.delay()
    alert_outbox_sweep_task.delay()

    fake_telegram.wait_for("sendMessage", 1)
    assert wait_rows(OutboxState.SENT, 1) == 1
    time.sleep(0.3)
    assert len(fake_telegram.calls_to("sendMessage")) == 1


def test_a_dead_alert_does_not_stop_other_drivers(fake_telegram, celery_worker):
    product = ProductFactory(on_hand=6)
    failing = DriverFactory()
    healthy = DriverFactory()
    from notifications.tests import fake_telegram as tg

    fake_telegram.script("sendMessage", tg.forbidden())
    inventory.stock_adjust(code=product.code, delta=-3, reason="sale")

    assert wait_rows(OutboxState.DEAD, 1) == 1
    assert wait_rows(OutboxState.SENT, 1) == 1
    assert AlertOutbox.objects.get(state=OutboxState.SENT).driver_id in {failing.pk, healthy.pk}
    assert len(fake_telegram.calls_to("sendMessage")) == 2


def test_an_alert_is_delivered_while_every_other_queue_holds_a_backlog(fake_telegram, celery_worker):
    # A first full projection build queues thousands of recomputes; the default queue is busy too. Ids no
    # database has, so a worker of another run sharing this Redis would do nothing with them.
    recomputes, webhooks = 2_000, 200
    with celery_app.producer_or_acquire() as producer:
        for _ in range(recomputes):
            projection_recompute_task.apply_async(args=[[0]], producer=producer)
        for _ in range(webhooks):
            webhook_delivery_send_task.apply_async(args=[0], producer=producer)
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    assert queue_size("projections") >= recomputes and queue_size("celery") >= webhooks
    assert fake_telegram.calls == []
    ran_before = Counter(worker_state.total_count)

    inventory.stock_adjust(code=product.code, delta=-3, reason="sale")
    calls = fake_telegram.wait_for("sendMessage", 1, timeout=5)

    assert [c.payload["chat_id"] for c in calls] == [driver.chat_id]
    assert wait_rows(OutboxState.SENT, 1) == 1
    # Not behind the backlog: the worker of the alerts queue ran the delivery and nothing else, and
    # the backlog is still all there. (How fast drivers get it is bench-telegram's, docs/bench-tg.md.)
    assert set(Counter(worker_state.total_count) - ran_before) == {"notifications.tasks.alert_deliver_task"}
    assert queue_size("projections") >= recomputes and queue_size("celery") >= webhooks


def test_concurrent_deliveries_for_one_driver_send_once(fake_telegram):
    import threading

    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    inventory.stock_adjust(code=product.code, delta=-3, reason="sale")
    connection.close()
    barrier = threading.Barrier(4)

    def deliver():
        try:
            barrier.wait()
            services.alert_deliver(driver_id=driver.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(fake_telegram.calls_to("sendMessage")) == 1
    assert AlertOutbox.objects.get().state == OutboxState.SENT


def test_concurrent_claims_take_each_row_once(fake_telegram):
    import threading

    products = [ProductFactory(on_hand=6) for _ in range(3)]
    driver = DriverFactory()
    for product in products:
        inventory.stock_adjust(code=product.code, delta=-3, reason="sale")
    connection.close()
    barrier = threading.Barrier(4)
    claimed: list[list[int]] = []

    def claim(n):
        try:
            barrier.wait()
            claimed.append([row.pk for row in services._outbox_claim(driver_id=driver.pk, token=f"t{n}")])
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [pk for rows in claimed for pk in rows]
    assert sorted(every) == sorted(AlertOutbox.objects.values_list("pk", flat=True))
    assert len(every) == 3


def test_a_worker_process_killed_mid_send_loses_no_alert(fake_telegram, settings):
    """SIGKILL a real `celery worker -Q alerts` while its sendMessage is in flight; a new worker and the
    sweep deliver the alert once the dead worker's claim has lapsed (at least once towards Telegram)."""
    from notifications.tests.fake_telegram import slow
    from orders.tests.worker import Worker, wait_for

    settings.ALERT_SWEEP_GRACE_SECONDS = 0
    env = {"TELEGRAM_API_BASE": fake_telegram.base, "TELEGRAM_BOT_TOKEN": fake_telegram.token,
           "TELEGRAM_TIMEOUT": "10", "TELEGRAM_RETRY_BUDGET": "10", "ALERT_CLAIM_SECONDS": "2",
           "TELEGRAM_RATE_CHAT_SECONDS": "0.001"}
    fake_telegram.script("sendMessage", slow(5))  # the first send hangs until the worker is dead
    queues_purge()
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    first = Worker(queues="alerts", concurrency=1, env=env)
    try:
        inventory.stock_adjust(code=product.code, delta=-3, reason="sale")
        assert len(fake_telegram.wait_for("sendMessage", 1, timeout=30, delivered=False)) == 1
        first.kill()
    finally:
        first.stop()
    row = AlertOutbox.objects.get()
    assert row.state != OutboxState.SENT and row.claim_token  # claimed by the dead worker, never finished

    def swept_and_sent() -> int:
        # What beat does every few seconds: it queues the row once the dead worker's claim has lapsed.
        services.alert_outbox_sweep()
        return wait_rows(OutboxState.SENT, 1, timeout=0.5)

    second = Worker(queues="alerts", concurrency=1, env=env)
    try:
        wait_for(swept_and_sent, timeout=30, worker=second)
    finally:
        second.stop()

    calls = fake_telegram.calls_to("sendMessage")
    assert [c.payload["chat_id"] for c in calls] == [driver.chat_id, driver.chat_id]
    assert AlertOutbox.objects.get().state == OutboxState.SENT


def test_a_later_alert_is_not_sent_while_an_earlier_one_to_the_chat_is_in_flight(fake_telegram):
    import threading

    from notifications.tests.fake_telegram import slow

    first, second = ProductFactory(on_hand=6, name="Arroz"), ProductFactory(on_hand=6, name="Feijão")
    driver = DriverFactory()
    fake_telegram.script("sendMessage", slow(0.5))
    inventory.stock_adjust(code=first.code, delta=-3, reason="sale")
    connection.close()

    def deliver():
        try:
            services.alert_deliver(driver_id=driver.pk)
        finally:
            connection.close()

    in_flight = threading.Thread(target=deliver)
    in_flight.start()
    assert len(fake_telegram.wait_for("sendMessage", 1, delivered=False)) == 1
    inventory.stock_adjust(code=second.code, delta=-3, reason="sale")
    services.alert_deliver(driver_id=driver.pk)  # another worker, while the first message is on its way
    in_flight.join()
    services.alert_deliver(driver_id=driver.pk)  # what the first worker queued when it was done

    earlier, later = fake_telegram.calls_to("sendMessage")
    assert "Arroz" in earlier.payload["text"] and "Feijão" in later.payload["text"]
    assert later.at - earlier.at >= 0.5  # only once the earlier one was answered
    assert AlertOutbox.objects.filter(state=OutboxState.SENT).count() == 2


def test_five_commands_within_one_second_get_five_replies_in_order(fake_telegram, settings):
    """Five commands from one chat posted to the webhook within a second, taken side by side by a real
    `celery worker -Q alerts --concurrency=2` (as in the Procfile) at Telegram's real per-chat limit:
    every command is answered, in the order sent, one reply per chat slot."""
    from rest_framework.test import APIClient

    from orders.tests.worker import Worker, wait_for

    settings.TELEGRAM_WEBHOOK_SECRET = "s3cret"
    env = {"TELEGRAM_API_BASE": fake_telegram.base, "TELEGRAM_BOT_TOKEN": fake_telegram.token,
           "TELEGRAM_RATE_CHAT_SECONDS": "1.0"}
    names = ["Arroz", "Feijão", "Café", "Leite", "Sal"]
    for index, name in enumerate(names):
        ProductFactory(code=f"P{index}", name=name, on_hand=20)
    DriverFactory(chat_id=777)
    queues_purge()
    for index in range(5):
        update = {"update_id": 900 + index, "message": {"message_id": index + 1, "text": f"/estoque P{index}",
                                                        "chat": {"id": 777, "type": "private"}}}
        response = APIClient().post("/telegram/webhook/", update, format="json",
                                    HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN="s3cret")
        assert response.status_code == 200
    # All five wait together before any worker runs: far faster than the chat's one reply a second.
    assert TelegramUpdate.objects.filter(chat_id=777, replied_at__isnull=True).count() == 5
    assert fake_telegram.calls_to("sendMessage") == []

    worker = Worker(queues="alerts", concurrency=2, env=env)
    try:
        wait_for(lambda: len(fake_telegram.delivered("sendMessage")) >= 5, timeout=40, worker=worker)
        time.sleep(1.2)  # nothing more comes
    finally:
        worker.stop()

    replies = fake_telegram.calls_to("sendMessage")
    assert [next(n for n in names if n in r.payload["text"]) for r in replies] == names
    assert all(r.status == 200 for r in replies)
    gaps = [later.at - earlier.at for earlier, later in zip(replies, replies[1:], strict=False)]
    assert min(gaps) >= 0.95  # Telegram's one message a second per chat


def test_the_daily_digest_job_is_scheduled_at_reorder_digest_hour_store_time(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["reorder-digest"]

    assert entry["task"] == "notifications.tasks.reorder_digest_task" in celery_app.tasks
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({settings.REORDER_DIGEST_HOUR},
                                                                  {settings.REORDER_DIGEST_MINUTE})
    assert settings.REORDER_DIGEST_HOUR == 7 and settings.CELERY_TIMEZONE == settings.TIME_ZONE == "America/Sao_Paulo"


def test_the_digest_job_run_by_a_worker_reaches_every_buyer_in_order_and_a_rerun_sends_nothing(fake_telegram):
    for n in range(120):
        open_suggestion(code=f"JOB-{n:03d}", name=f"Produto com um nome bem comprido {n} " + "v" * 40)
    buyers = [BuyerFactory(), BuyerFactory()]
    DriverFactory()
    queues_purge()
    connection.close()

    with running_worker("celery", "alerts"):  # the job runs on the default queue, its deliveries on alerts
        reorder_digest_task.delay()
        wait_rows(OutboxState.SENT, 1)  # the job's rows are committed together, before the first send
        rows = AlertOutbox.objects.filter(kind=AlertKind.REORDER_DIGEST)
        total = rows.count()
        assert total >= 4  # at least two parts for each buyer
        assert wait_rows(OutboxState.SENT, total) == total

    calls = fake_telegram.delivered("sendMessage")
    for buyer in buyers:
        own = list(rows.filter(driver=buyer).order_by("part").values_list("text", flat=True))
        assert [c.payload["text"] for c in calls if c.payload["chat_id"] == buyer.chat_id] == own
    assert {c.payload["chat_id"] for c in calls} == {b.chat_id for b in buyers}

    reorder_digest_task.apply()  # beat's entry again the same day (or a duplicate delivery of the task)

    assert rows.count() == total
    assert not AlertOutbox.objects.exclude(state=OutboxState.SENT).exists()
