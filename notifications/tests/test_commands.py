"""Tests for the management commands telegram_setup and telegram_poll against the fake Bot API."""
import pytest
from django.core.management import CommandError, call_command

from notifications.models import TelegramUpdate
from notifications.tests import fake_telegram as tg
from notifications.tests.factories import DriverFactory

pytestmark = pytest.mark.django_db


def test_setup_sets_webhook_with_secret_and_commands(fake_telegram, settings):
    settings.TELEGRAM_WEBHOOK_SECRET = "abc"

    call_command("telegram_setup", url="https://example.invalid/telegram/webhook/")

    [hook] = fake_telegram.calls_to("setWebhook")
    assert hook.payload["secret_token"] == "abc"
    assert hook.payload["url"].endswith("/telegram/webhook/")
    commands = fake_telegram.calls_to("setMyCommands")
    assert {c.payload.get("language_code") for c in commands} == {None, "pt", "en"}


def test_setup_refuses_without_secret(fake_telegram, settings):
    settings.TELEGRAM_WEBHOOK_SECRET = ""

    with pytest.raises(CommandError):
        call_command("telegram_setup", url="https://example.invalid/telegram/webhook/")
    assert fake_telegram.calls == []


def test_poll_once_answers_new_updates(fake_telegram):
    DriverFactory(chat_id=31)
    fake_telegram.script("getUpdates", tg.ok([
        {"update_id": 10, "message": {"message_id": 1, "text": "/ajuda", "chat": {"id": 31, "type": "private"}}},
    ]))

    call_command("telegram_poll", once=True, timeout=0)

    assert fake_telegram.calls_to("deleteWebhook")
    assert len(fake_telegram.calls_to("sendMessage")) == 1
    assert TelegramUpdate.objects.get().processed_at is not None
