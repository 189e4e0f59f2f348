"""Tests for alert delivery against the fake Telegram Bot API: retries, rate limits, edits, digests, refusals, and the
buyers' reorder digest."""
import time
from datetime import date, timedelta
from datetime import time as dtime

import pytest
from django.db.models import F
from django.utils import timezone

from core.tests.metrics import gave_up
from inventory import services as inventory
from inventory.tests.factories import ProductFactory
from notifications import services, texts
from notifications.models import AlertKind, AlertOutbox, Driver, MessageLevel, OutboxState, Role
from notifications.tests import fake_telegram as tg
from notifications.tests.factories import BuyerFactory, DriverFactory, open_suggestion

pytestmark = pytest.mark.django_db


def adjust(product, delta):
    return inventory.stock_adjust(code=product.code, delta=delta, reason="test")


def deliver(driver):
    return services.alert_deliver(driver_id=driver.pk)


def test_one_crossing_sends_exactly_one_message(fake_telegram):
    product = ProductFactory(on_hand=6, name="Leite")
    driver = DriverFactory()
    adjust(product, -3)

    deliver(driver)
    deliver(driver)

    [call] = fake_telegram.calls_to("sendMessage")
    assert call.payload["chat_id"] == driver.chat_id
    assert "Leite" in call.payload["text"] and call.payload["parse_mode"] == "HTML"
    buttons = call.payload["reply_markup"]["inline_keyboard"][0]
    assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)
    row = AlertOutbox.objects.get()
    assert (row.state, row.message_id, row.delivered_revision) == (OutboxState.SENT, 1001, 1)


def test_names_are_html_escaped(fake_telegram):
    product = ProductFactory(on_hand=6, name="Arroz <tipo 1> & Feijão", code="A&B")
    driver = DriverFactory()
    adjust(product, -6)

    deliver(driver)

    text = fake_telegram.calls_to("sendMessage")[0].payload["text"]
    assert "Arroz &lt;tipo 1&gt; &amp; Feijão" in text
    assert "<tipo" not in text and "A&amp;B" in text


def test_running_out_rings_with_a_new_message_that_replies_to_the_low_one(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    deliver(driver)
    low_message = AlertOutbox.objects.get().message_id

    adjust(product, -4)  # LOW → OUT
    deliver(driver)

    low, out = fake_telegram.calls_to("sendMessage")
    assert out.payload["reply_parameters"] == {"message_id": low_message, "allow_sending_without_reply": True}
    assert out.payload["disable_notification"] is False and "Sem estoque" in out.payload["text"]
    assert fake_telegram.calls_to("editMessageText") == []  # the LOW message is left as it was
    row = AlertOutbox.objects.get()
    assert (row.level, row.state, row.ring) == (MessageLevel.OUT, OutboxState.SENT, False)
    assert row.message_id == 1002  # later edits go to the OUT message


def ran_out_after_low(**product_fields):
    """A product whose LOW alert went out and then its ringing OUT one. Returns it, the driver and the OUT
    message id."""
    product = ProductFactory(on_hand=6, **product_fields)
    driver = DriverFactory()
    adjust(product, -2)
    deliver(driver)
    adjust(product, -4)
    deliver(driver)
    return product, driver, AlertOutbox.objects.get().message_id


def test_back_in_stock_after_running_out_silently_edits_the_out_message(fake_telegram):
    product, driver, out_message = ran_out_after_low()

    adjust(product, +10)
    deliver(driver)

    assert len(fake_telegram.calls_to("sendMessage")) == 2  # LOW and OUT, nothing new for back in stock
    [edit] = fake_telegram.calls_to("editMessageText")
    assert edit.payload["message_id"] == out_message
    assert "De volta ao estoque" in edit.payload["text"] and "reply_markup" not in edit.payload
    row = AlertOutbox.objects.get()
    assert (row.level, row.state, row.delivered_revision) == (MessageLevel.RESOLVED, OutboxState.SENT, 3)


def test_going_from_out_back_to_low_is_an_edit_and_running_out_again_rings_again(fake_telegram):
    product, driver, out_message = ran_out_after_low(low_stock_threshold=5)

    adjust(product, +2)  # OUT → LOW
    deliver(driver)
    adjust(product, -2)  # LOW → OUT again
    deliver(driver)

    [edit] = fake_telegram.calls_to("editMessageText")
    assert edit.payload["message_id"] == out_message and "Estoque baixo" in edit.payload["text"]
    rings = [c for c in fake_telegram.calls_to("sendMessage") if "reply_parameters" in c.payload]
    assert [c.payload["reply_parameters"]["message_id"] for c in rings] == [1001, out_message]


def test_running_out_before_the_low_alert_went_out_is_one_ringing_message(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    adjust(product, -4)  # out before anything was delivered

    deliver(driver)

    [call] = fake_telegram.calls_to("sendMessage")
    assert "Sem estoque" in call.payload["text"] and "reply_parameters" not in call.payload
    assert call.payload["disable_notification"] is False
    assert AlertOutbox.objects.get().ring is False


def test_back_in_stock_sent_as_a_new_message_is_silent(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    deliver(driver)
    gone = tg.Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"})
    fake_telegram.script("editMessageText", gone)

    adjust(product, +10)  # LOW → OK, but the driver deleted the LOW message
    deliver(driver)

    low, resolved = fake_telegram.calls_to("sendMessage")
    assert "De volta ao estoque" in resolved.payload["text"]
    assert (low.payload["disable_notification"], resolved.payload["disable_notification"]) == (False, True)


def test_message_not_modified_counts_as_success(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    deliver(driver)
    fake_telegram.script("editMessageText", tg.not_modified())

    adjust(product, +10)
    deliver(driver)

    assert AlertOutbox.objects.get().state == OutboxState.SENT
    assert len(fake_telegram.calls_to("editMessageText")) == 1


def test_two_server_errors_then_success_is_delivered(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", tg.server_error(), tg.server_error(), tg.ok())

    deliver(driver)

    assert [c.status for c in fake_telegram.calls_to("sendMessage")] == [500, 500, 200]
    assert AlertOutbox.objects.get().state == OutboxState.SENT


def due_now(**filters):
    """Move the rows' retry time to now, as if their backoff had passed."""
    AlertOutbox.objects.filter(**filters).update(next_attempt_at=timezone.now())


def failed_in_outage(fake, *, errors: int = 4) -> Driver:
    """A driver whose one alert met ``errors`` 5xx answers in a row: the first delivery's four requests fail."""
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    fake.script("sendMessage", *[tg.server_error()] * errors)
    deliver(driver)
    return driver


def test_four_server_errors_leave_the_alert_to_a_later_try_and_other_alerts_still_go_out(fake_telegram):
    product = ProductFactory(on_hand=6)
    failing = DriverFactory()
    healthy = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", *[tg.server_error()] * 4)

    deliver(failing)
    deliver(failing)  # not due yet: nobody calls the chat before its backoff ends
    deliver(healthy)

    calls = fake_telegram.calls_to("sendMessage")
    assert [c.status for c in calls if c.payload["chat_id"] == failing.chat_id] == [500, 500, 500, 500]
    assert [c.status for c in calls if c.payload["chat_id"] == healthy.chat_id] == [200]
    row = AlertOutbox.objects.get(driver=failing)
    assert (row.state, row.attempts) == (OutboxState.FAILED, 4)
    assert row.next_attempt_at > timezone.now() and row.failing_since is not None
    assert AlertOutbox.objects.get(driver=healthy).state == OutboxState.SENT


def test_an_alert_that_failed_is_delivered_when_its_backoff_ends_and_telegram_is_back(fake_telegram):
    driver = failed_in_outage(fake_telegram)
    assert AlertOutbox.objects.get().state == OutboxState.FAILED

    due_now()
    deliver(driver)

    assert [c.status for c in fake_telegram.calls_to("sendMessage")] == [500, 500, 500, 500, 200]
    row = AlertOutbox.objects.get()
    assert (row.state, row.attempts, row.failing_since, row.next_attempt_at) == (OutboxState.SENT, 0, None, None)


def test_a_failing_alert_is_tried_once_per_pass_with_a_growing_backoff(fake_telegram, settings):
    settings.ALERT_RETRY_BASE_SECONDS = 10
    settings.ALERT_RETRY_MAX_SECONDS = 1000
    driver = failed_in_outage(fake_telegram, errors=5)
    first_wait = (AlertOutbox.objects.get().next_attempt_at - timezone.now()).total_seconds()

    due_now()
    deliver(driver)

    row = AlertOutbox.objects.get()
    second_wait = (row.next_attempt_at - timezone.now()).total_seconds()
    assert len(fake_telegram.calls_to("sendMessage")) == 5 and row.attempts == 5
    assert 40 - 1 <= first_wait <= 80  # 4 failures: 10 s · 2³, jittered into its upper half
    assert 80 - 1 <= second_wait <= 160  # one more: twice that


def test_retry_delay_doubles_with_jitter_up_to_its_cap(settings):
    settings.ALERT_RETRY_BASE_SECONDS = 2
    settings.ALERT_RETRY_MAX_SECONDS = 180

    delays = {n: [services.retry_delay(attempts=n) for _ in range(200)] for n in (1, 3, 10, 500)}

    assert all(1 <= d <= 2 for d in delays[1]) and all(4 <= d <= 8 for d in delays[3])
    assert all(90 <= d <= 180 for d in delays[10] + delays[500])
    assert len(set(delays[10])) > 100  # jittered: the chats of one outage do not all come back together


def test_an_alert_failing_longer_than_give_up_after_is_dead(fake_telegram, settings,
                                                           django_capture_on_commit_callbacks):
    settings.ALERT_GIVE_UP_AFTER = 600
    driver = failed_in_outage(fake_telegram, errors=5)
    row = AlertOutbox.objects.get()
    assert row.state == OutboxState.FAILED
    AlertOutbox.objects.update(failing_since=row.failing_since - timezone.timedelta(seconds=601))
    due_now()
    before = gave_up("alerts")

    with django_capture_on_commit_callbacks(execute=True):
        deliver(driver)

    row.refresh_from_db()
    assert (row.state, row.attempts) == (OutboxState.DEAD, 5)
    assert gave_up("alerts") == before + 1


def test_an_alert_that_joined_the_wait_later_gets_its_own_time_before_it_is_given_up(fake_telegram, settings):
    settings.ALERT_GIVE_UP_AFTER = 600
    driver = failed_in_outage(fake_telegram)
    earlier = AlertOutbox.objects.get()
    AlertOutbox.objects.update(failing_since=earlier.failing_since - timezone.timedelta(seconds=601))
    adjust(ProductFactory(on_hand=6), -2)
    deliver(driver)  # joins the earlier alert's wait
    due_now()
    fake_telegram.script("sendMessage", tg.server_error())

    deliver(driver)

    later = AlertOutbox.objects.exclude(pk=earlier.pk).get()
    earlier.refresh_from_db()
    assert (earlier.state, later.state) == (OutboxState.DEAD, OutboxState.FAILED)
    assert timezone.now() - later.failing_since < timezone.timedelta(seconds=60)


def test_the_last_retry_falls_on_the_give_up_time(fake_telegram, settings):
    settings.ALERT_GIVE_UP_AFTER = 30
    settings.ALERT_RETRY_BASE_SECONDS = 3600

    failed_in_outage(fake_telegram)

    row = AlertOutbox.objects.get()
    assert row.state == OutboxState.FAILED
    assert row.next_attempt_at - row.failing_since <= timezone.timedelta(seconds=30)


def test_an_alert_delivered_after_an_outage_shows_when_stock_ran_out_not_when_it_went_out(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    fake_telegram.outage = "5xx"
    adjust(product, -6)
    deliver(driver)
    # The outage lasted 47 minutes: the stock ran out that long before Telegram took the message.
    AlertOutbox.objects.update(changed_at=F("changed_at") - timedelta(minutes=47))
    ran_out_at = AlertOutbox.objects.get().changed_at
    fake_telegram.come_back()
    due_now()

    deliver(driver)

    [call] = fake_telegram.delivered("sendMessage")
    assert texts.changed_when("pt-br", ran_out_at) in call.payload["text"]
    assert texts.changed_when("pt-br", timezone.now()) not in call.payload["text"]


def test_a_400_is_final_without_retry(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", tg.Reply(400, {"ok": False, "error_code": 400,
                                                       "description": "Bad Request: message text is empty"}))

    deliver(driver)
    due_now()
    deliver(driver)

    assert len(fake_telegram.calls_to("sendMessage")) == 1
    assert AlertOutbox.objects.get().state == OutboxState.DEAD


def test_a_later_alert_waits_behind_an_earlier_one_that_is_backing_off(fake_telegram):
    earlier, later = ProductFactory(on_hand=6, name="Arroz"), ProductFactory(on_hand=6, name="Feijão")
    driver = DriverFactory()
    adjust(earlier, -2)
    fake_telegram.script("sendMessage", *[tg.server_error()] * 4)
    deliver(driver)
    waiting = AlertOutbox.objects.get(product=earlier)

    adjust(later, -2)
    deliver(driver)  # Telegram answers again, but the earlier alert's turn has not come

    assert fake_telegram.delivered("sendMessage") == []
    assert AlertOutbox.objects.get(product=later).next_attempt_at == waiting.next_attempt_at
    due_now()
    deliver(driver)
    [message] = fake_telegram.delivered("sendMessage")
    assert "Arroz" in message.payload["text"] and "Feijão" in message.payload["text"]  # together, as a digest
    assert set(AlertOutbox.objects.values_list("state", flat=True)) == {OutboxState.SENT}


def test_429_means_no_call_to_that_chat_before_retry_after(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", tg.too_many(1))

    deliver(driver)

    first, second = fake_telegram.calls_to("sendMessage")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0
    assert AlertOutbox.objects.get().state == OutboxState.SENT


def test_429_longer_than_the_budget_reschedules_instead_of_waiting(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", tg.too_many(30))

    result = deliver(driver)
    deliver(driver)  # not due yet: nobody calls the chat

    assert len(fake_telegram.calls_to("sendMessage")) == 1
    row = AlertOutbox.objects.get()
    assert row.state == OutboxState.FAILED and row.next_attempt_at > timezone.now()
    assert result.retry_in == 30


def test_403_marks_the_driver_unreachable_without_retry(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", tg.forbidden())

    deliver(driver)

    assert len(fake_telegram.calls_to("sendMessage")) == 1
    driver.refresh_from_db()
    assert driver.unreachable and "blocked" in driver.unreachable_reason
    assert AlertOutbox.objects.get().state == OutboxState.DEAD


def test_a_message_given_up_is_counted_once_committed(fake_telegram, django_capture_on_commit_callbacks):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", tg.forbidden())
    before = gave_up("alerts")

    with django_capture_on_commit_callbacks(execute=True):
        deliver(driver)

    assert AlertOutbox.objects.get().state == OutboxState.DEAD
    assert gave_up("alerts") == before + 1


def test_chat_not_found_marks_the_driver_unreachable(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", tg.chat_not_found())

    deliver(driver)

    assert len(fake_telegram.calls_to("sendMessage")) == 1
    assert Driver.objects.get(pk=driver.pk).unreachable


def test_parse_error_is_retried_once_as_plain_text(fake_telegram):
    product = ProductFactory(on_hand=6, name="Café")
    driver = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", tg.parse_error())

    deliver(driver)

    first, second = fake_telegram.calls_to("sendMessage")
    assert first.payload["parse_mode"] == "HTML" and "parse_mode" not in second.payload
    assert "<b>" not in second.payload["text"] and "Café" in second.payload["text"]
    assert AlertOutbox.objects.get().state == OutboxState.SENT


def test_migrated_group_gets_the_new_chat_id_and_the_alert(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory(chat_id=-100, is_group=True)
    adjust(product, -2)
    fake_telegram.script("sendMessage", tg.migrated(-1009999))

    deliver(driver)

    first, second = fake_telegram.calls_to("sendMessage")
    assert (first.payload["chat_id"], second.payload["chat_id"]) == (-100, -1009999)
    assert Driver.objects.get(pk=driver.pk).chat_id == -1009999
    assert AlertOutbox.objects.get().state == OutboxState.SENT


def test_many_products_crossing_at_once_become_one_digest(fake_telegram):
    products = [ProductFactory(on_hand=6, name=f"Produto {'x' * 60} {i}") for i in range(120)]
    driver = DriverFactory()
    inventory_changes = [inventory.StockChange(product_id=p.pk, on_hand=-6, kind="adjustment") for p in products]
    from django.db import transaction

    with transaction.atomic():
        inventory.stock_apply(changes=inventory_changes)

    deliver(driver)

    [call] = fake_telegram.calls_to("sendMessage")
    text = call.payload["text"]
    assert len(text) <= 4096
    assert "120 alertas" in text and "mais" in text.splitlines()[-1]
    assert AlertOutbox.objects.filter(state=OutboxState.SENT, message_id__isnull=False).count() == 120


def test_quiet_hours_send_silently(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory(quiet_start=dtime(0, 0), quiet_end=dtime(23, 59, 59))
    adjust(product, -2)

    deliver(driver)

    assert fake_telegram.calls_to("sendMessage")[0].payload["disable_notification"] is True


def test_without_token_alerts_are_recorded_and_delivery_skipped(fake_telegram, settings, caplog):
    settings.TELEGRAM_BOT_TOKEN = ""
    services._no_token_logged = False
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)

    deliver(driver)
    deliver(driver)

    assert fake_telegram.calls == []
    assert AlertOutbox.objects.get().state == OutboxState.PENDING
    assert [r.getMessage() for r in caplog.records if "TELEGRAM_BOT_TOKEN" in r.getMessage()] == [
        "TELEGRAM_BOT_TOKEN is not set: alerts are recorded and shown, Telegram delivery is skipped"]


def test_substitutes_are_suggested_from_the_category(fake_telegram):
    product = ProductFactory(on_hand=6, category="laticinios", name="Iogurte natural")
    ProductFactory(on_hand=30, category="laticinios", name="Iogurte grego")
    ProductFactory(on_hand=0, category="laticinios", name="Iogurte Queijo")
    ProductFactory(on_hand=30, category="limpeza", name="Iogurte Sabão")
    driver = DriverFactory()
    adjust(product, -6)

    deliver(driver)

    text = fake_telegram.calls_to("sendMessage")[0].payload["text"]
    assert "Substitutos: Iogurte grego" in text and "Queijo" not in text and "Sabão" not in text


def test_per_chat_rate_limit_spaces_messages_to_one_chat(fake_telegram, settings):
    settings.TELEGRAM_RATE_CHAT_SECONDS = 0.5
    first, second = ProductFactory(on_hand=6), ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(first, -2)
    deliver(driver)
    adjust(second, -2)
    result = deliver(driver)
    assert fake_telegram.calls_to("sendMessage")[1:] == [] and result.retry_in > 0  # the slot is not free yet
    time.sleep(result.retry_in)
    deliver(driver)

    a, b = fake_telegram.calls_to("sendMessage")
    assert b.at - a.at >= 0.45  # the limiter's clock is Redis', the fake's is ours: allow ms of skew


def test_substitutes_chosen_by_staff_come_first(fake_telegram):
    from notifications.models import Substitute

    product = ProductFactory(on_hand=6, category="laticinios")
    ProductFactory(on_hand=50, category="laticinios", name="Iogurte")
    chosen = ProductFactory(on_hand=9, category="padaria", name="Pão de queijo")
    Substitute.objects.create(product=product, substitute=chosen)
    driver = DriverFactory()
    adjust(product, -6)

    deliver(driver)

    text = fake_telegram.calls_to("sendMessage")[0].payload["text"]
    assert "Substitutos: Pão de queijo" in text and "Iogurte" not in text


def test_a_digest_offers_substitutes_for_the_products_that_are_out(fake_telegram):
    from django.db import transaction

    salt = ProductFactory(on_hand=6, name="Sal refinado", category="mercearia")
    oil = ProductFactory(on_hand=9, name="Óleo de soja", category="mercearia")
    ProductFactory(on_hand=40, name="Sal grosso", category="mercearia")
    ProductFactory(on_hand=40, name="Óleo de milho", category="mercearia")
    driver = DriverFactory()
    with transaction.atomic():
        inventory.stock_apply(changes=[inventory.StockChange(product_id=salt.pk, on_hand=-6, kind="adjustment"),
                                       inventory.StockChange(product_id=oil.pk, on_hand=-5, kind="adjustment")])

    deliver(driver)

    text = fake_telegram.calls_to("sendMessage")[0].payload["text"]
    out_line, low_line = text.split("\n• ")[1:]
    assert "Sal refinado" in out_line and "Substitutos: Sal grosso" in out_line
    assert "Óleo de soja" in low_line and "Substitutos" not in low_line


def digest_of_two_sent():
    """Arroz and Feijão run low in one transaction and go out as one digest. Returns them and the driver."""
    from django.db import transaction

    first, second = ProductFactory(on_hand=6, name="Arroz"), ProductFactory(on_hand=6, name="Feijão")
    driver = DriverFactory()
    with transaction.atomic():
        inventory.stock_apply(changes=[inventory.StockChange(product_id=p.pk, on_hand=-2, kind="adjustment")
                                       for p in (first, second)])
    deliver(driver)
    return first, second, driver


def test_a_change_to_one_product_of_a_digest_edits_the_whole_digest(fake_telegram):
    first, second, driver = digest_of_two_sent()

    adjust(first, +10)
    deliver(driver)

    [edit] = fake_telegram.calls_to("editMessageText")
    assert edit.payload["message_id"] == AlertOutbox.objects.get(product=second).message_id
    assert "De volta ao estoque</b>: <b>Arroz" in edit.payload["text"] and "Feijão" in edit.payload["text"]


def test_one_product_of_a_digest_running_out_rings_with_a_reply_to_the_digest(fake_telegram):
    first, second, driver = digest_of_two_sent()
    digest = AlertOutbox.objects.get(product=second).message_id

    adjust(first, -4)
    deliver(driver)

    ring = fake_telegram.calls_to("sendMessage")[-1]
    assert ring.payload["reply_parameters"]["message_id"] == digest
    assert "Sem estoque" in ring.payload["text"] and "Arroz" in ring.payload["text"]
    assert "Feijão" not in ring.payload["text"] and fake_telegram.calls_to("editMessageText") == []


def wait_until(predicate, timeout: float = 5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not predicate():
        time.sleep(0.05)
    return predicate()


def sent_twice_after_a_timeout(fake, settings):
    """An alert whose first sendMessage Telegram accepts (message 1001) but answers after our timeout; the
    retry is message 1002. Returns (product, driver) once the late answer has been recorded."""
    settings.TELEGRAM_TIMEOUT = 0.3
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    fake.script("sendMessage", tg.slow(1.0))
    deliver(driver)
    assert wait_until(lambda: AlertOutbox.objects.get().copy_message_ids == [1001])
    return product, driver


# Transactional: the late answer is recorded over the request thread's own connection.
@pytest.mark.django_db(transaction=True)
def test_a_copy_telegram_accepted_after_our_timeout_is_edited_too(fake_telegram, settings):
    product, driver = sent_twice_after_a_timeout(fake_telegram, settings)
    row = AlertOutbox.objects.get()
    assert [c.status for c in fake_telegram.calls_to("sendMessage")] == [200, 200]  # the retry made a second copy
    assert (row.state, row.attempts, row.message_id) == (OutboxState.SENT, 0, 1002)

    adjust(product, +10)  # back in stock
    deliver(driver)

    edits = fake_telegram.calls_to("editMessageText")
    assert sorted(e.payload["message_id"] for e in edits) == [1001, 1002]
    assert all("De volta ao estoque" in e.payload["text"] for e in edits)
    assert AlertOutbox.objects.get().state == OutboxState.SENT


@pytest.mark.django_db(transaction=True)
def test_running_out_after_a_late_copy_rings_once_and_later_edits_skip_the_old_copies(fake_telegram, settings):
    product, driver = sent_twice_after_a_timeout(fake_telegram, settings)

    adjust(product, -4)  # LOW → OUT
    deliver(driver)
    adjust(product, +10)
    deliver(driver)

    ring = fake_telegram.calls_to("sendMessage")[-1]
    assert ring.payload["reply_parameters"]["message_id"] == 1002
    [edit] = fake_telegram.calls_to("editMessageText")
    assert edit.payload["message_id"] == 1003 and "De volta ao estoque" in edit.payload["text"]
    row = AlertOutbox.objects.get()
    assert (row.message_id, row.copy_message_ids) == (1003, [])


@pytest.mark.django_db(transaction=True)
def test_a_copy_the_driver_deleted_is_forgotten_and_the_edit_still_counts(fake_telegram, settings):
    product, driver = sent_twice_after_a_timeout(fake_telegram, settings)
    gone = tg.Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"})
    fake_telegram.script("editMessageText", tg.ok({"message_id": 1002}), gone)

    adjust(product, +10)
    deliver(driver)

    row = AlertOutbox.objects.get()
    assert (row.state, row.message_id, row.copy_message_ids) == (OutboxState.SENT, 1002, [])
    assert len(fake_telegram.calls_to("sendMessage")) == 2  # no third copy


# --- the buyers' reorder digest ------------------------------------------------------------------------------------

DIGEST_DAY = date(2026, 3, 10)


def long_digest_for(buyer, count: int = 120) -> list[AlertOutbox]:
    for n in range(count):
        open_suggestion(code=f"DG-{n:03d}", name=f"Produto com um nome bem comprido {n} " + "w" * 40)
    services.reorder_digest_write(day=DIGEST_DAY)
    return list(AlertOutbox.objects.filter(driver=buyer, kind=AlertKind.REORDER_DIGEST).order_by("part"))


def deliver_until_done(driver, passes: int = 20) -> None:
    """Delivery passes until nothing of the driver is due: one digest part goes out per pass (per chat slot)."""
    for _ in range(passes):
        deliver(driver)
        due = AlertOutbox.objects.filter(driver=driver, state__in=[OutboxState.PENDING, OutboxState.FAILED])
        if not due.exists():
            return


def test_the_digest_parts_go_out_in_order_each_as_its_own_message(fake_telegram):
    buyer = BuyerFactory()
    rows = long_digest_for(buyer)
    assert len(rows) >= 2 and fake_telegram.calls == []

    deliver_until_done(buyer)

    calls = fake_telegram.calls_to("sendMessage")
    assert [c.payload["text"] for c in calls] == [r.text for r in rows]
    assert all(c.payload["chat_id"] == buyer.chat_id and c.payload["parse_mode"] == "HTML" for c in calls)
    assert all(len(c.payload["text"]) <= 4096 and "reply_markup" not in c.payload for c in calls)
    sent = list(AlertOutbox.objects.filter(pk__in=[r.pk for r in rows]).order_by("part"))
    assert [r.state for r in sent] == [OutboxState.SENT] * len(rows)
    assert len({r.message_id for r in sent}) == len(rows)


def test_a_second_run_of_the_days_digest_sends_nothing_twice(fake_telegram):
    open_suggestion(code="ONCE-1")
    buyer = BuyerFactory()
    services.reorder_digest_write(day=DIGEST_DAY)
    deliver_until_done(buyer)
    assert len(fake_telegram.calls_to("sendMessage")) == 1

    services.reorder_digest_write(day=DIGEST_DAY)
    deliver_until_done(buyer)

    assert len(fake_telegram.calls_to("sendMessage")) == 1


def test_a_digest_part_that_meets_an_outage_keeps_the_later_parts_behind_it(fake_telegram):
    buyer = BuyerFactory()
    rows = long_digest_for(buyer)
    fake_telegram.script("sendMessage", *[tg.server_error()] * 4)

    deliver_until_done(buyer, passes=3)

    assert [c.status for c in fake_telegram.calls_to("sendMessage")] == [500] * 4
    states = dict(AlertOutbox.objects.filter(driver=buyer).values_list("part", "state"))
    assert states[0] == OutboxState.FAILED and all(states[p] == OutboxState.PENDING for p in states if p)
    due_now(driver=buyer)

    deliver_until_done(buyer)

    delivered = [c.payload["text"] for c in fake_telegram.delivered("sendMessage")]
    assert delivered == [r.text for r in rows]
    assert set(AlertOutbox.objects.filter(driver=buyer).values_list("state", flat=True)) == {OutboxState.SENT}


def test_a_recipient_who_is_driver_and_buyer_gets_the_alert_and_the_digest_apart(fake_telegram):
    both = DriverFactory(role=Role.BOTH)
    open_suggestion(code="BOTH-1", name="Café")
    services.reorder_digest_write(day=DIGEST_DAY)
    adjust(ProductFactory(on_hand=6, name="Leite"), -3)

    deliver_until_done(both)

    alert, digest = fake_telegram.calls_to("sendMessage")
    assert "Leite" in alert.payload["text"] and "Café" not in alert.payload["text"]
    assert "Café" in digest.payload["text"] and "Leite" not in digest.payload["text"]
    assert set(AlertOutbox.objects.values_list("state", flat=True)) == {OutboxState.SENT}


def test_the_digest_to_a_buyer_in_quiet_hours_is_silent(fake_telegram):
    open_suggestion()
    buyer = BuyerFactory(quiet_start=dtime(0, 0), quiet_end=dtime(23, 59, 59))
    services.reorder_digest_write(day=DIGEST_DAY)

    deliver(buyer)

    [call] = fake_telegram.calls_to("sendMessage")
    assert call.payload["disable_notification"] is True


def test_a_digest_resent_by_staff_goes_out_again_as_a_new_message(fake_telegram):
    open_suggestion()
    buyer = BuyerFactory()
    services.reorder_digest_write(day=DIGEST_DAY)
    deliver(buyer)
    row = AlertOutbox.objects.get(driver=buyer)

    services.outbox_resend(ids=[row.pk])
    deliver(buyer)

    first, again = fake_telegram.calls_to("sendMessage")
    assert first.payload["text"] == again.payload["text"] == row.text
    assert fake_telegram.calls_to("editMessageText") == []
