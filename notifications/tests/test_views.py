"""Tests for the Telegram webhook: secret header, duplicate update ids and the hand-off to Celery."""
import time

import pytest
from rest_framework.test import APIClient

from notifications.models import TelegramUpdate
from notifications.tests.factories import DriverFactory

URL = "/telegram/webhook/"
SECRET = "s3cret-token_ABC"


@pytest.fixture
def webhook_secret(settings):
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    return SECRET


def post(update, secret=SECRET):
    headers = {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": secret} if secret is not None else {}
    return APIClient().post(URL, update, format="json", **headers)


def update(update_id, text="/ajuda", chat_id=777):
    chat = {"id": chat_id, "type": "private"}
    return {"update_id": update_id, "message": {"message_id": 1, "text": text, "chat": chat}}


@pytest.mark.django_db
@pytest.mark.parametrize("secret", ["wrong", "", None])
def test_wrong_or_missing_secret_is_403_and_nothing_is_recorded(webhook_secret, secret):
    response = post(update(1), secret=secret)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert TelegramUpdate.objects.count() == 0


@pytest.mark.django_db
def test_webhook_without_configured_secret_refuses_everything(settings):
    settings.TELEGRAM_WEBHOOK_SECRET = ""

    assert post(update(1), secret="").status_code == 403
    assert TelegramUpdate.objects.count() == 0


@pytest.mark.django_db
def test_update_without_update_id_is_400(webhook_secret):
    response = post({"message": {}})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.django_db
def test_malformed_json_is_400(webhook_secret):
    response = APIClient().generic("POST", URL, "{not json", content_type="application/json",
                                   HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=SECRET)

    assert response.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("body", ['{"update_id": 9, "message": {"text": "a\\u0000", "chat": {"id": 1}}}',
                                  '{"update_id": 9, "message": {"date": 1e400}}'])
def test_an_update_that_can_never_be_read_is_acknowledged_and_dropped(webhook_secret, body):
    # Answered 400, Telegram would deliver it again and again; nothing could ever store it.
    response = APIClient().generic("POST", URL, body, content_type="application/json",
                                   HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=SECRET)

    assert response.status_code == 200 and response.json() == {"ok": True}
    assert TelegramUpdate.objects.count() == 0


@pytest.mark.django_db
def test_an_unreadable_update_from_a_sender_without_the_secret_is_still_refused(webhook_secret):
    response = APIClient().generic("POST", URL, '{"update_id": 9, "message": {"text": "a\\u0000"}}',
                                   content_type="application/json", HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN="wrong")

    assert response.status_code == 403
    assert TelegramUpdate.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_duplicate_update_id_is_processed_once(webhook_secret, fake_telegram, celery_worker):
    DriverFactory(chat_id=777)

    first = post(update(42, "/ajuda"))
    second = post(update(42, "/ajuda"))

    assert (first.status_code, second.status_code) == (200, 200)
    fake_telegram.wait_for("sendMessage", 1)
    time.sleep(0.5)
    assert len(fake_telegram.calls_to("sendMessage")) == 1
    assert TelegramUpdate.objects.get().processed_at is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_command_sent_while_the_broker_is_down_is_answered_after_recovery(webhook_secret, fake_telegram, settings):
    from core.enqueue import broker_circuit
    from notifications.tasks import telegram_updates_sweep_task
    from notifications.tests.conftest import running_worker
    from notifications.tests.throwaway_redis import ThrowawayRedis, celery_broker

    settings.ALERT_SWEEP_GRACE_SECONDS = 0
    DriverFactory(chat_id=777)
    broker = ThrowawayRedis()
    try:
        with celery_broker(broker.url):
            broker.start()
            broker.stop()  # Redis goes down

            response = post(update(51, "/ajuda"))
            assert response.status_code == 200  # acknowledged: it is stored in PostgreSQL
            assert TelegramUpdate.objects.get().processed_at is None
            assert fake_telegram.calls == []

            broker.start()  # Redis is back
            while broker_circuit.is_down():  # sends are tried again once the circuit's probe time has passed
                time.sleep(0.05)
            with running_worker("alerts"):
                telegram_updates_sweep_task.delay()  # what beat sends every few seconds
                calls = fake_telegram.wait_for("sendMessage", 1)
                time.sleep(0.3)
    finally:
        broker.remove()

    assert [c.payload["chat_id"] for c in calls] == [777]
    assert len(fake_telegram.calls_to("sendMessage")) == 1
    assert TelegramUpdate.objects.get().processed_at is not None
