"""Tests for alert states and the outbox rows written with stock changes, recipients by role, and the buyers' daily
reorder digest (no network involved)."""
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
    Role,
    Subscription,
    TelegramUpdate,
)
from notifications.services import AlertTransition, level_for
from notifications.tests.factories import BuyerFactory, DriverFactory, open_suggestion

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
    stock = product.stocks.select_related("product", "location").get()
    stock.on_hand = 0
    with transaction.atomic():
        result = services.alert_states_evaluate(stocks=[stock])
    assert result == [AlertTransition(product.pk, product.code, "ok", "out", 0, stock.location_id, "PRINCIPAL")]


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
    stock = product.stocks.select_related("product", "location").get()
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


# --- roles: who gets stock alerts, who gets the reorder digest ------------------------------------------------------

def test_a_buyer_only_recipient_gets_no_stock_alert():
    product = ProductFactory(on_hand=6)
    driver, both = DriverFactory(), DriverFactory(role=Role.BOTH)
    buyer = BuyerFactory()

    adjust(product, -2)

    assert set(AlertOutbox.objects.values_list("driver_id", flat=True)) == {driver.pk, both.pk}
    assert not AlertOutbox.objects.filter(driver=buyer).exists()


def test_a_buyer_only_recipient_gets_no_projected_stockout_alert():
    product = ProductFactory(on_hand=50)
    driver = DriverFactory()
    BuyerFactory()

    services.alert_projected_stockout(product_id=product.pk, stockout_date=date(2030, 1, 5))

    assert list(AlertOutbox.objects.values_list("driver_id", "kind")) == [(driver.pk, AlertKind.PROJECTED)]


def digest_rows(**filters):
    return AlertOutbox.objects.filter(kind=AlertKind.REORDER_DIGEST, **filters).order_by("driver_id", "part")


def test_the_digest_goes_to_every_reachable_buyer_and_to_no_driver(django_capture_on_commit_callbacks):
    DAY = date(2026, 3, 10)
    open_suggestion(code="ARZ-5", name="Arroz", quantity=96, stockout=DAY + timedelta(days=2))
    buyer, both = BuyerFactory(), DriverFactory(role=Role.BOTH)
    driver = DriverFactory()
    BuyerFactory(active=False)
    BuyerFactory(chat_id=None)
    assert not digest_rows().exists()

    with django_capture_on_commit_callbacks() as callbacks:
        written = services.reorder_digest_write(day=DAY)

    assert written == {buyer.pk: 1, both.pk: 1}
    rows = list(digest_rows())
    assert [(r.driver_id, r.chat_id, r.digest_date, r.part, r.state, r.product_id, r.level) for r in rows] == [
        (buyer.pk, buyer.chat_id, DAY, 0, OutboxState.PENDING, None, MessageLevel.REORDER),
        (both.pk, both.chat_id, DAY, 0, OutboxState.PENDING, None, MessageLevel.REORDER),
    ]
    assert "<b>Arroz</b> (ARZ-5) — pedir 96 un. (8 emb. de 12) · ruptura 12/03" in rows[0].text
    assert not AlertOutbox.objects.filter(driver=driver).exists()
    assert len(callbacks) == 1  # delivery queued after commit


def test_the_digest_follows_each_buyers_locations():
    from inventory.models import Location
    from inventory.selectors import location_default_id
    from inventory.tests.factories import LocationFactory

    DAY = date(2026, 3, 10)
    open_suggestion(code="ARZ-6", name="Arroz")
    default, store_b = Location.objects.get(pk=location_default_id()), LocationFactory(name="Loja Bairro")
    of_default, of_b, of_both = BuyerFactory(), BuyerFactory(), BuyerFactory()
    of_b.locations.set([store_b])
    of_both.locations.set([store_b, default])

    written = services.reorder_digest_write(day=DAY)

    assert written == {of_default.pk: 1, of_both.pk: 1}
    texts = dict(digest_rows().values_list("driver_id", "text"))
    assert "(ARZ-6)" in texts[of_default.pk] and "📍" not in texts[of_default.pk]
    [line] = [line for line in texts[of_both.pk].splitlines() if "(ARZ-6)" in line]
    assert line.startswith("1. <b>Arroz</b> (ARZ-6) — pedir 24 un. (2 emb. de 12)")
    assert line.endswith(f" · 📍 {default.name}")


def test_a_second_run_the_same_day_writes_nothing_and_the_next_day_writes_again():
    DAY = date(2026, 3, 10)
    open_suggestion()
    buyer = BuyerFactory()
    services.reorder_digest_write(day=DAY)
    first = list(digest_rows().values_list("pk", "text"))
    open_suggestion(code="NEW-1")  # a suggestion that opened since changes nothing today

    again = services.reorder_digest_write(day=DAY)

    assert again == {}
    assert list(digest_rows().values_list("pk", "text")) == first
    assert services.reorder_digest_write(day=DAY + timedelta(days=1)) == {buyer.pk: 1}
    assert "NEW-1" in digest_rows(digest_date=DAY + timedelta(days=1)).get().text


def test_no_open_suggestion_means_no_digest():
    BuyerFactory()
    suggestion = open_suggestion()
    suggestion.state = "dismissed"
    suggestion.save()

    assert services.reorder_digest_write(day=date(2026, 3, 10)) == {}
    assert not digest_rows().exists()


def test_a_buyer_gets_only_what_they_follow_and_nothing_when_that_is_nothing():
    open_suggestion(code="BEB-1", category="bebidas")
    open_suggestion(code="MER-1", category="mercearia")
    drinks = BuyerFactory(subscription=Subscription.CATEGORIES, categories=["bebidas"])
    BuyerFactory(subscription=Subscription.CATEGORIES, categories=["limpeza"])

    assert services.reorder_digest_write(day=date(2026, 3, 10)) == {drinks.pk: 1}
    text = digest_rows().get().text
    assert "BEB-1" in text and "MER-1" not in text


def test_a_long_digest_is_written_as_parts_within_telegrams_limit_in_the_buyers_language():
    for n in range(120):
        open_suggestion(code=f"LONG-{n:03d}", name=f"Produto com um nome bem comprido {n} " + "z" * 40)
    buyer = BuyerFactory(language="en")

    written = services.reorder_digest_write(day=date(2026, 3, 10))

    rows = list(digest_rows())
    assert written == {buyer.pk: len(rows)} and len(rows) >= 2
    assert [r.part for r in rows] == list(range(len(rows)))
    assert all(len(r.text) <= 4096 for r in rows)
    assert rows[0].text.startswith("🛒 <b>Reorder suggestions</b> — 10/03 (1/")
    assert rows[-1].text.endswith("<b>Total:</b> 120 products · 2,880 units · 240 packs")
    assert sum(r.text.count("LONG-") for r in rows) == 120


def test_the_same_day_digest_cannot_be_written_twice_even_behind_the_service():
    from django.db import IntegrityError

    buyer = BuyerFactory()
    row = dict(driver=buyer, kind=AlertKind.REORDER_DIGEST, level=MessageLevel.REORDER, episode=0,
               digest_date=date(2026, 3, 10), part=0, text="x")
    AlertOutbox.objects.create(**row)

    with pytest.raises(IntegrityError), transaction.atomic():
        AlertOutbox.objects.create(**row)
    assert digest_rows().count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_of_the_days_digest_write_it_once():
    from inventory.tests.test_concurrency import run_in_threads

    for n in range(3):
        open_suggestion(code=f"CON-{n}")
    buyers = [BuyerFactory() for _ in range(3)]

    errors = run_in_threads(6, lambda _: services.reorder_digest_write(day=date(2026, 3, 10)))

    assert errors == []
    assert sorted(digest_rows().values_list("driver_id", flat=True)) == sorted(b.pk for b in buyers)
