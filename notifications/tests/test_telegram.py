"""Tests for the Bot API client: error classification, escaping, the shared Redis rate limits, the token kept secret."""
import logging

import pytest

from inventory import services as inventory
from inventory.tests.factories import ProductFactory
from notifications import services, telegram
from notifications.bot import bot_update_handle
from notifications.models import AlertOutbox, Driver
from notifications.tests.factories import DriverFactory
from notifications.telegram import RateLimiter, TelegramClient
from notifications.tests import fake_telegram as tg


def test_escape_and_plain_text():
    assert telegram.escape('<a href="x">&</a>') == "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
    assert telegram.html_to_plain("<b>Leite &amp; Café</b>") == "Leite & Café"
    assert len(telegram.text_clip("x" * 5000)) == 4096


@pytest.mark.parametrize("reply, error", [
    (tg.server_error(), telegram.TelegramUnavailable),
    (tg.too_many(3), telegram.TelegramRateLimited),
    (tg.forbidden(), telegram.TelegramUnreachable),
    (tg.chat_not_found(), telegram.TelegramUnreachable),
    (tg.parse_error(), telegram.TelegramParseError),
    (tg.not_modified(), telegram.TelegramNotModified),
    (tg.migrated(-1001), telegram.TelegramMigrated),
])
def test_one_call_raises_the_typed_error(fake_telegram, reply, error):
    fake_telegram.script("sendMessage", reply)

    with pytest.raises(error):
        TelegramClient().call("sendMessage", {"chat_id": 1, "text": "x"})

    assert len(fake_telegram.calls) == 1


def test_unreachable_api_is_a_retryable_error(settings):
    settings.TELEGRAM_BOT_TOKEN = "1:X"
    client = TelegramClient(base="http://127.0.0.1:9", timeout=0.5)

    with pytest.raises(telegram.TelegramUnavailable) as caught:
        client.call("getMe")
    assert caught.value.retryable


def test_group_chats_get_twenty_messages_a_minute(fake_telegram, settings):
    settings.TELEGRAM_RATE_GROUP_PER_MINUTE = 20
    limiter = RateLimiter()

    assert limiter.acquire_wait(chat_id=-500, is_group=True) == 0
    assert limiter.acquire_wait(chat_id=-500, is_group=True) > 2.5  # 60 s / 20, minus the per-chat second


def test_global_limit_is_shared_by_every_chat(fake_telegram, settings):
    settings.TELEGRAM_RATE_GLOBAL_PER_SECOND = 3
    limiter = RateLimiter()

    waits = [limiter.acquire_wait(chat_id=chat, is_group=False) for chat in (1, 2, 3, 4)]

    assert waits[:3] == [0, 0, 0] and waits[3] > 0


def test_a_429_blocks_the_chat_for_everyone(fake_telegram):
    limiter = RateLimiter()
    limiter.block(chat_id=77, seconds=5)

    assert limiter.acquire_wait(chat_id=77, is_group=False) > 4
    assert limiter.acquire_wait(chat_id=78, is_group=False) == 0


TOKEN = "7406231985:AAH-distinctive_Secret_t0ken"


@pytest.mark.django_db
def test_the_bot_token_appears_nowhere_after_failures(fake_telegram, settings, caplog, client, staff_user):
    caplog.set_level(logging.DEBUG)
    fake_telegram.token = settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_TIMEOUT = 0.2
    settings.TELEGRAM_RETRY_BUDGET = 1.0
    refused, timed_out, unavailable, refused_400, blocked = drivers = [DriverFactory() for _ in range(5)]
    product = ProductFactory(on_hand=6)
    inventory.stock_adjust(code=product.code, delta=-2, reason="test")

    settings.TELEGRAM_API_BASE = "http://127.0.0.1:9"  # nothing listens: connection refused
    services.alert_deliver(driver_id=refused.pk)
    bot_update_handle(update={"update_id": 1, "message": {"message_id": 1, "text": "/ajuda", "chat": {"id": 1}}})
    settings.TELEGRAM_API_BASE = fake_telegram.base
    fake_telegram.script("sendMessage", *[tg.slow(0.5)] * 4)
    services.alert_deliver(driver_id=timed_out.pk)
    fake_telegram.script("sendMessage", *[tg.server_error()] * 4)
    services.alert_deliver(driver_id=unavailable.pk)
    fake_telegram.script("sendMessage", tg.Reply(400, {"ok": False, "description": "Bad Request: wrong"}))
    services.alert_deliver(driver_id=refused_400.pk)
    fake_telegram.script("sendMessage", tg.forbidden())
    services.alert_deliver(driver_id=blocked.pk)

    errors = dict(AlertOutbox.objects.values_list("driver_id", "last_error"))
    assert all(errors[d.pk] for d in drivers)  # every failure was recorded...
    assert "ConnectionError" in errors[refused.pk] and "<token>" in errors[refused.pk]
    stored = [*errors.values(), *Driver.objects.values_list("unreachable_reason", flat=True)]
    assert not [e for e in stored if TOKEN in e]  # ...without the token
    assert caplog.records and TOKEN not in caplog.text
    assert not [r for r in caplog.records if TOKEN in r.getMessage()]
    client.force_login(staff_user)
    pages = [client.get("/admin/notifications/alertoutbox/"), client.get("/metrics")] + [
        client.get(f"/admin/notifications/alertoutbox/{pk}/change/")
        for pk in AlertOutbox.objects.values_list("pk", flat=True)]
    assert {p.status_code for p in pages} == {200}
    assert not [p for p in pages if TOKEN in p.content.decode()]


@pytest.mark.django_db
def test_the_migration_cleans_tokens_stored_by_earlier_versions():
    import importlib

    from django.db import connection

    migration = importlib.import_module("notifications.migrations.0002_outage_retries_copies_update_sweep")
    product = ProductFactory(on_hand=6)
    DriverFactory()
    inventory.stock_adjust(code=product.code, delta=-2, reason="test")
    leaked = (f"ConnectionError: HTTPSConnectionPool(host='api.telegram.org', port=443): Max retries exceeded "
              f"with url: /bot{TOKEN}/sendMessage")
    AlertOutbox.objects.update(last_error=leaked)

    with connection.cursor() as cursor:
        cursor.execute(migration.Migration.operations[0].sql)

    assert AlertOutbox.objects.get().last_error == leaked.replace(TOKEN, "<token>")
