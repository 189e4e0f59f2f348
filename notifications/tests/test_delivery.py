"""Tests for alert delivery against the fake Telegram Bot API: retries, rate limits, edits, digests, refusals."""
import time
from datetime import time as dtime

import pytest
from django.utils import timezone

from core.tests.metrics import gave_up
from inventory import services as inventory
from inventory.tests.factories import ProductFactory
from notifications import services
from notifications.models import AlertOutbox, Driver, MessageLevel, OutboxState
from notifications.tests import fake_telegram as tg
from notifications.tests.factories import DriverFactory

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


def test_low_then_out_edits_the_message_then_restock_resolves_it(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    deliver(driver)
    message_id = fake_telegram.calls_to("sendMessage")[0].payload and AlertOutbox.objects.get().message_id

    adjust(product, -4)
    deliver(driver)
    adjust(product, +10)
    deliver(driver)

    assert len(fake_telegram.calls_to("sendMessage")) == 1
    edits = fake_telegram.calls_to("editMessageText")
    assert [e.payload["message_id"] for e in edits] == [message_id, message_id]
    assert "Sem estoque" in edits[0].payload["text"]
    assert "De volta ao estoque" in edits[1].payload["text"] and "reply_markup" not in edits[1].payload
    row = AlertOutbox.objects.get()
    assert (row.level, row.state, row.delivered_revision) == (MessageLevel.RESOLVED, OutboxState.SENT, 3)


def test_message_not_modified_counts_as_success(fake_telegram):
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    deliver(driver)
    fake_telegram.script("editMessageText", tg.not_modified())

    adjust(product, -4)
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


def test_four_failures_are_dead_after_three_retries_and_other_alerts_still_go_out(fake_telegram):
    product = ProductFactory(on_hand=6)
    failing = DriverFactory()
    healthy = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", *[tg.server_error()] * 4)

    deliver(failing)
    deliver(failing)  # dead rows are not picked up again
    deliver(healthy)

    calls = fake_telegram.calls_to("sendMessage")
    assert [c.status for c in calls if c.payload["chat_id"] == failing.chat_id] == [500, 500, 500, 500]
    assert [c.status for c in calls if c.payload["chat_id"] == healthy.chat_id] == [200]
    assert AlertOutbox.objects.get(driver=failing).state == OutboxState.DEAD
    assert AlertOutbox.objects.get(driver=healthy).state == OutboxState.SENT


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


def test_a_change_to_one_product_of_a_digest_edits_the_whole_digest(fake_telegram):
    from django.db import transaction

    first, second = ProductFactory(on_hand=6, name="Arroz"), ProductFactory(on_hand=6, name="Feijão")
    driver = DriverFactory()
    with transaction.atomic():
        inventory.stock_apply(changes=[inventory.StockChange(product_id=p.pk, on_hand=-2, kind="adjustment")
                                       for p in (first, second)])
    deliver(driver)

    adjust(first, -4)
    deliver(driver)

    [edit] = fake_telegram.calls_to("editMessageText")
    assert edit.payload["message_id"] == AlertOutbox.objects.get(product=second).message_id
    assert "Sem estoque</b>: <b>Arroz" in edit.payload["text"] and "Feijão" in edit.payload["text"]


def test_a_slow_answer_times_out_and_the_retry_delivers(fake_telegram, settings):
    settings.TELEGRAM_TIMEOUT = 0.3
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    adjust(product, -2)
    fake_telegram.script("sendMessage", tg.slow(1.0))

    deliver(driver)

    assert len(fake_telegram.calls_to("sendMessage")) == 2
    row = AlertOutbox.objects.get()
    assert (row.state, row.attempts) == (OutboxState.SENT, 0)
