"""Tests for the bot's texts: when an alert's stock change happened, in the store's time zone."""
from datetime import UTC, date, datetime

from notifications import texts
from notifications.texts import AlertLine, alert_render, changed_when, digest_render

# 17:32 UTC is 14:32 in São Paulo (TIME_ZONE, UTC-3).
CHANGED = datetime(2026, 12, 4, 17, 32, tzinfo=UTC)


def test_a_change_today_shows_the_store_local_time():
    assert changed_when("pt-br", CHANGED, today=date(2026, 12, 4)) == "às 14:32"
    assert changed_when("en", CHANGED, today=date(2026, 12, 4)) == "at 14:32"


def test_a_change_on_another_day_shows_its_local_date_too():
    late_evening = datetime(2026, 12, 4, 2, 50, tzinfo=UTC)  # 23:50 of 3 December in São Paulo

    assert changed_when("pt-br", late_evening, today=date(2026, 12, 4)) == "em 03/12 às 23:50"
    assert changed_when("en", late_evening, today=date(2026, 12, 4)) == "on 03/12 at 23:50"


def test_an_alert_and_every_digest_line_carry_their_own_change_time():
    out = AlertLine(1, "ARZ", "Arroz", "out", 0, changed_at=CHANGED)
    low = AlertLine(2, "FJ", "Feijão", "low", 3, changed_at=datetime(2026, 12, 4, 18, 5, tzinfo=UTC))

    single = alert_render("pt-br", out)
    digest = digest_render("en", [out, low])

    assert single.startswith("⛔ <b>Sem estoque</b> ")
    assert texts.changed_when("pt-br", CHANGED) in single.splitlines()[0]
    assert changed_when("en", CHANGED) in digest.split("\n• ")[1]
    assert changed_when("en", low.changed_at) in digest.split("\n• ")[2]
