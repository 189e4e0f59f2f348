"""Tests for alert states and the outbox rows written with stock changes (no network involved)."""
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.utils import timezone

from inventory import services as inventory
from inventory.tests.factories import ProductFactory
from notifications import services
from notifications.models import (
    AlertKind,
    AlertOutbox,
    AlertState,
    Level,
    MessageLevel,
    OutboxState,
    Subscription,
    TelegramUpdate,
)
from notifications.services import AlertTransition, level_for
from notifications.tests.factories import DriverFactory

pytestmark = pytest.mark.django_db


def adjust(product, delta):
    return inventory.stock_adjust(code=product.code, delta=delta, reason="test")


def test_level_rules_with_hysteresis():
    assert level_for(available=0, threshold=5, previous=Level.OK, margin=2) == Level.OUT
    assert level_for(available=4, threshold=5, previous=Level.OK, margin=2) == Level.LOW
    assert level_for(available=5, threshold=5, previous=Level.OK, margin=2) == Level.OK
    assert level_for(available=6, threshold=5, previous=Level.LOW, margin=2) == Level.LOW
    assert level_for(available=7, threshold=5, previous=Level.LOW, margin=2) == Level.OK


def test_one_crossing_writes_one_outbox_row_per_driver():
    product = ProductFactory(on_hand=6)
    driver = DriverFactory()
    assert AlertOutbox.objects.count() == 0

    adjust(product, -2)

    row = AlertOutbox.objects.get()
    assert (row.product_id, row.driver_id, row.kind, row.level, row.available, row.state, row.episode) == (
        product.pk, driver.pk, AlertKind.STOCK, MessageLevel.LOW, 4, OutboxState.PENDING, 1)
    assert AlertState.objects.get(product=product).level == Level.LOW


def test_transition_dataclass_describes_the_crossing():
    product = ProductFactory(on_hand=10)
    stock = product.stock
    stock.on_hand = 0
    with transaction.atomic():
        result = services.alert_states_evaluate(stocks=[stock])
    assert result == [AlertTransition(product.pk, product.code, "ok", "out", 0)]


def test_fifty_oscillations_around_threshold_make_one_alert():
    product = ProductFactory(on_hand=5)
    DriverFactory()

    for _ in range(50):
        adjust(product, -1)
        adjust(product, +1)

    row = AlertOutbox.objects.get()
    assert (row.level, row.revision, row.episode) == (MessageLevel.LOW, 1, 1)


def test_low_then_out_updates_the_same_row_marked_to_ring():
    product = ProductFactory(on_hand=6)
    DriverFactory()
    adjust(product, -2)
    AlertOutbox.objects.update(state=OutboxState.SENT, message_id=77, delivered_revision=1)
    assert AlertOutbox.objects.get().ring is False

    adjust(product, -4)

    row = AlertOutbox.objects.get()
    assert (row.level, row.revision, row.delivered_revision, row.state, row.message_id, row.ring) == (
        MessageLevel.OUT, 2, 1, OutboxState.PENDING, 77, True)


def test_each_level_change_records_when_the_stock_changed():
    product = ProductFactory(on_hand=6)
    DriverFactory()
    before = timezone.now()
    adjust(product, -2)
    low_at = AlertOutbox.objects.get().changed_at

    adjust(product, -4)

    out_at = AlertOutbox.objects.get().changed_at
    assert before <= low_at < out_at <= timezone.now()


def test_restock_past_margin_resolves_and_next_crossing_opens_a_new_episode():
    product = ProductFactory(on_hand=6)
    DriverFactory()
    adjust(product, -6)
    adjust(product, +7)  # threshold 5 + margin 2

    row = AlertOutbox.objects.get()
    assert (row.level, row.revision) == (MessageLevel.RESOLVED, 2)
    assert AlertState.objects.get(product=product).level == Level.OK

    adjust(product, -3)

    assert AlertOutbox.objects.count() == 2
    assert AlertOutbox.objects.order_by("-id").first().episode == 2


def test_no_crossing_costs_one_query(django_assert_num_queries):
    product = ProductFactory(on_hand=50)
    stock = product.stock
    stock.on_hand = 40
    with transaction.atomic(), django_assert_num_queries(1):
        assert services.alert_states_evaluate(stocks=[stock]) == []


def test_subscriptions_and_mutes_choose_the_recipients():
    product = ProductFactory(on_hand=6, category="bebidas")
    other = ProductFactory(on_hand=6, category="limpeza")
    everyone = DriverFactory()
    drinks = DriverFactory(subscription=Subscription.CATEGORIES, categories=["Bebidas"])
    chosen = DriverFactory(subscription=Subscription.PRODUCTS)
    chosen.products.add(other)
    muted = DriverFactory()
    services.driver_mute(driver=muted, product=product, hours=1)
    DriverFactory(active=False)
    DriverFactory(unreachable=True)
    DriverFactory(chat_id=None)

    adjust(product, -2)
    adjust(other, -2)

    got = set(AlertOutbox.objects.values_list("product_id", "driver_id"))
    assert got == {(product.pk, everyone.pk), (product.pk, drinks.pk), (other.pk, everyone.pk),
                   (other.pk, chosen.pk), (other.pk, muted.pk)}


def test_projected_stockout_is_its_own_kind_and_resolves():
    product = ProductFactory(on_hand=50)
    DriverFactory()

    assert services.alert_projected_stockout(product_id=product.pk, stockout_date=date(2030, 1, 5))
    row = AlertOutbox.objects.get()
    assert (row.kind, row.level, row.stockout_date) == (AlertKind.PROJECTED, MessageLevel.PROJECTED, date(2030, 1, 5))
    assert not services.alert_projected_stockout(product_id=product.pk, stockout_date=date(2030, 1, 5))

    assert services.alert_projected_stockout(product_id=product.pk, stockout_date=None)
    row.refresh_from_db()
    assert (row.level, row.revision) == (MessageLevel.RESOLVED, 2)


def test_projected_stockout_is_not_sent_when_already_low():
    product = ProductFactory(on_hand=6)
    DriverFactory()
    adjust(product, -3)

    services.alert_projected_stockout(product_id=product.pk, stockout_date=date(2030, 1, 5))

    assert list(AlertOutbox.objects.values_list("kind", flat=True)) == [AlertKind.STOCK]
    assert AlertState.objects.get(product=product).projected_stockout == date(2030, 1, 5)


def test_link_token_links_a_chat_once():
    driver = DriverFactory(chat_id=None)
    link = services.driver_link_create(driver=driver)
    token = link.split("start=")[1]
    assert link.startswith("https://t.me/")

    assert services.driver_link_redeem(token=token, chat_id=4242).pk == driver.pk
    assert services.driver_link_redeem(token=token, chat_id=9999) is None

    driver.refresh_from_db()
    assert (driver.chat_id, driver.link_token_hash) == (4242, "")


def test_resend_makes_a_dead_row_pending_again():
    product = ProductFactory(on_hand=6)
    DriverFactory()
    adjust(product, -2)
    AlertOutbox.objects.update(state=OutboxState.DEAD, attempts=4, last_error="boom")

    services.outbox_resend(ids=list(AlertOutbox.objects.values_list("pk", flat=True)))

    row = AlertOutbox.objects.get()
    assert (row.state, row.attempts, row.last_error, row.message_id) == (OutboxState.PENDING, 0, "", None)


def test_crossings_publish_alert_events_to_the_dashboard_after_commit(django_capture_on_commit_callbacks):
    from core.realtime import realtime_publish

    product = ProductFactory(on_hand=6, name="Manteiga", category="laticinios")

    with django_capture_on_commit_callbacks() as callbacks:
        adjust(product, -6)
    with django_capture_on_commit_callbacks() as later:
        adjust(product, +10)

    def alert_events(captured):
        return [e for cb in captured if getattr(cb, "func", None) is realtime_publish
                for e in cb.args[0] if e["type"].startswith("alert.")]

    [raised] = alert_events(callbacks)
    assert {k: raised[k] for k in ("type", "code", "name", "level", "available", "category")} == {
        "type": "alert.raised", "code": product.code, "name": "Manteiga", "level": "out", "available": 0,
        "category": "laticinios"}
    [resolved] = alert_events(later)
    assert (resolved["type"], resolved["level"], resolved["available"]) == ("alert.resolved", "resolved", 10)


def test_inactive_products_raise_no_alerts():
    product = ProductFactory(on_hand=6, active=False)
    DriverFactory()

    adjust(product, -6)

    assert AlertOutbox.objects.count() == 0
    assert not AlertState.objects.filter(product=product).exists()


def test_the_updates_sweep_takes_stored_updates_never_processed_oldest_first(settings):
    settings.ALERT_SWEEP_GRACE_SECONDS = 3
    for update_id in (12, 11, 13, 14):
        services.telegram_update_record(update={"update_id": update_id})
    TelegramUpdate.objects.exclude(update_id=14).update(received_at=timezone.now() - timedelta(seconds=10))
    services.telegram_update_claim(update_id=13)  # processed by its own task

    queued = services.telegram_updates_sweep()

    assert queued == [11, 12]  # 13 was processed; 14 is younger than the grace, its task may still come


def test_the_updates_sweep_takes_a_queued_reply_nobody_is_sending(settings):
    settings.ALERT_SWEEP_GRACE_SECONDS = 3
    chat = {"id": 4242, "type": "private"}
    for update_id in (21, 22, 23):
        services.telegram_update_record(update={"update_id": update_id, "message": {"text": "/ajuda", "chat": chat}})
    TelegramUpdate.objects.update(received_at=timezone.now() - timedelta(seconds=10))
    replied = {"chat_id": 4242, "text": "ok"}
    for update_id in (21, 22):
        services.telegram_update_answer(update_id=update_id, answer=lambda update: SimpleNamespace(reply=replied))
    services.telegram_reply_done(update_id=21)
    assert services.telegram_updates_sweep() == [22, 23]  # 22's reply waits for a task that was lost

    services.telegram_reply_claim(update_id=22)  # a worker is sending it now

    assert services.telegram_updates_sweep() == [23]
