"""Tests for the driver bot's commands and buttons, answered through the fake Telegram Bot API."""
import pytest

from inventory.tests.factories import ProductFactory, UnifiedCodeFactory
from notifications import services
from notifications.bot import bot_update_handle
from notifications.models import Driver, DriverMute
from notifications.tests.factories import DriverFactory
from notifications.tests.fake_telegram import forbidden, server_error, too_many

pytestmark = pytest.mark.django_db

CHAT = 8080


def say(text, chat_id=CHAT, chat_type="private"):
    bot_update_handle(update={"update_id": 1, "message": {
        "message_id": 5, "text": text, "chat": {"id": chat_id, "type": chat_type}, "from": {"id": chat_id}}})


def last_reply(fake):
    return fake.calls_to("sendMessage")[-1].payload["text"]


def test_start_with_token_links_the_chat(fake_telegram):
    driver = DriverFactory(chat_id=None, name="Ana")
    token = services.driver_link_create(driver=driver).split("start=")[1]

    say(f"/start {token}")

    assert Driver.objects.get(pk=driver.pk).chat_id == CHAT
    assert "Ana" in last_reply(fake_telegram)


def test_start_with_a_bad_token_links_nothing(fake_telegram):
    DriverFactory(chat_id=None)

    say("/start not-a-token")

    assert not Driver.objects.filter(chat_id=CHAT).exists()
    assert "inválido" in last_reply(fake_telegram)


def test_unlinked_chat_is_told_to_link_first(fake_telegram):
    ProductFactory(code="ARROZ", on_hand=3)

    say("/estoque ARROZ")

    assert "não está vinculado" in last_reply(fake_telegram)


def test_estoque_resolves_a_unified_code(fake_telegram):
    DriverFactory(chat_id=CHAT)
    alias = UnifiedCodeFactory(code="OLD-77", product=ProductFactory(code="NEW-77", name="Azeite", on_hand=12))

    say(f"/estoque {alias.code.lower()}")

    reply = last_reply(fake_telegram)
    assert "Azeite" in reply and "NEW-77" in reply and "Disponível: 12" in reply


def test_estoque_finds_a_misspelled_name(fake_telegram):
    DriverFactory(chat_id=CHAT)
    ProductFactory(name="Chocolate amargo", on_hand=4)
    ProductFactory(name="Feijão preto", on_hand=9)

    say("/estoque chocolat amrgo")

    assert "Chocolate amargo" in last_reply(fake_telegram)


def test_english_alias_and_language(fake_telegram):
    DriverFactory(chat_id=CHAT, language="en")
    ProductFactory(code="MILK", name="Milk", on_hand=2)

    say("/stock MILK")

    assert "Available: 2" in last_reply(fake_telegram)


def test_baixo_lists_products_below_threshold_in_my_categories(fake_telegram):
    DriverFactory(chat_id=CHAT, subscription="categories", categories=["bebidas"])
    ProductFactory(name="Suco", category="bebidas", on_hand=2)
    ProductFactory(name="Água", category="bebidas", on_hand=40)
    ProductFactory(name="Detergente", category="limpeza", on_hand=1)

    say("/baixo")

    reply = last_reply(fake_telegram)
    assert "Suco" in reply and "Água" not in reply and "Detergente" not in reply


def test_silenciar_mutes_a_product_for_that_driver(fake_telegram):
    driver = DriverFactory(chat_id=CHAT)
    product = ProductFactory(code="PAO", on_hand=9)

    say("/silenciar PAO 2")

    assert DriverMute.objects.get(driver=driver, product=product)
    assert "silenciados" in last_reply(fake_telegram)


def test_silenciar_with_bad_hours_explains_usage(fake_telegram):
    DriverFactory(chat_id=CHAT)
    ProductFactory(code="PAO", on_hand=9)

    say("/silenciar PAO muitas")

    assert DriverMute.objects.count() == 0
    assert "/silenciar" in last_reply(fake_telegram)


def test_ruptura_lists_projected_stockouts_within_seven_days(fake_telegram):
    from datetime import timedelta

    from django.utils import timezone

    from projections.models import ProjectionSummary

    DriverFactory(chat_id=CHAT)
    soon, later = ProductFactory(name="Farinha", on_hand=3), ProductFactory(name="Sal", on_hand=3)
    today = timezone.localdate()
    ProjectionSummary.objects.create(product=soon, as_of=today, stockout_date=today + timedelta(days=2))
    ProjectionSummary.objects.create(product=later, as_of=today, stockout_date=today + timedelta(days=30))

    say("/ruptura")

    reply = last_reply(fake_telegram)
    assert "Farinha" in reply and f"{today + timedelta(days=2):%d/%m}" in reply and "Sal" not in reply


def test_every_button_press_is_answered(fake_telegram):
    driver = DriverFactory(chat_id=CHAT)
    product = ProductFactory(name="Ovos", on_hand=3)
    base = {"id": "cb1", "message": {"message_id": 9, "chat": {"id": CHAT}}}

    bot_update_handle(update={"update_id": 2, "callback_query": {**base, "data": f"s:{product.pk}"}})
    bot_update_handle(update={"update_id": 3, "callback_query": {**base, "data": f"m:{product.pk}:1"}})
    bot_update_handle(update={"update_id": 4, "callback_query": {**base, "data": "garbage"}})

    assert len(fake_telegram.calls_to("answerCallbackQuery")) == 3
    assert "Ovos" in last_reply(fake_telegram)
    assert DriverMute.objects.filter(driver=driver, product=product).exists()


def test_replies_escape_names(fake_telegram):
    DriverFactory(chat_id=CHAT)
    ProductFactory(code="X1", name="<b>Promo</b> & cia", on_hand=3)

    say("/estoque X1")

    assert "&lt;b&gt;Promo&lt;/b&gt; &amp; cia" in last_reply(fake_telegram)


def test_a_reply_that_meets_a_server_error_is_sent_again(fake_telegram):
    DriverFactory(chat_id=CHAT)
    ProductFactory(code="FEIJAO", name="Feijão", on_hand=9)
    fake_telegram.script("sendMessage", server_error())

    say("/estoque FEIJAO")

    calls = fake_telegram.calls_to("sendMessage")
    assert [c.status for c in calls] == [500, 200]
    assert "Feijão" in calls[-1].payload["text"]


def test_a_reply_told_to_wait_waits_exactly_retry_after_then_goes(fake_telegram):
    import time

    DriverFactory(chat_id=CHAT)
    fake_telegram.script("sendMessage", too_many(1))

    started = time.monotonic()
    say("/ajuda")

    calls = fake_telegram.calls_to("sendMessage")
    assert [c.status for c in calls] == [429, 200]
    assert time.monotonic() - started >= 1.0
    assert "/estoque" in calls[-1].payload["text"]


def test_a_reply_to_a_driver_who_blocked_the_bot_is_not_retried(fake_telegram):
    DriverFactory(chat_id=CHAT)
    fake_telegram.script("sendMessage", forbidden())

    say("/ajuda")

    assert [c.status for c in fake_telegram.calls_to("sendMessage")] == [403]
