"""Tests for the Bot API client: error classification, escaping and the shared Redis rate limits."""
import pytest

from notifications import telegram
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
