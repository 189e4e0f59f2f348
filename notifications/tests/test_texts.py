"""Tests for the bot's texts: when an alert's stock change happened, in the store's time zone; the buyers' reorder
digest and how it is split."""
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


# --- the buyers' reorder digest ------------------------------------------------------------------------------------

DAY = date(2026, 3, 10)


def reorder_line(n: int, **fields) -> texts.ReorderLine:
    values = dict(product_id=n, code=f"C-{n:04d}", name=f"Produto {n}", category="mercearia", quantity=24,
                  pack_size=12, stockout_date=date(2026, 3, 12))
    values.update(fields)
    return texts.ReorderLine(**values)


def test_the_reorder_digest_lists_code_name_quantity_packs_and_stockout_day_with_a_total():
    lines = [
        reorder_line(1, code="ARZ-5", name="Arroz <tipo 1>", quantity=96, pack_size=12, stockout_date=DAY),
        reorder_line(2, code="FJ-1", name="Feijão", quantity=1200, pack_size=24, stockout_date=date(2026, 3, 14)),
        reorder_line(3, code="SAL", name="Sal", quantity=10, pack_size=None, stockout_date=None),
    ]

    [message] = texts.reorder_digest_render("pt-br", lines, day=DAY)

    assert message.splitlines() == [
        "🛒 <b>Sugestões de compra</b> — 10/03",
        "1. <b>Arroz &lt;tipo 1&gt;</b> (ARZ-5) — pedir 96 un. (8 emb. de 12) · ruptura hoje",
        "2. <b>Feijão</b> (FJ-1) — pedir 1.200 un. (50 emb. de 24) · ruptura 14/03",
        "3. <b>Sal</b> (SAL) — pedir 10 un. · sem ruptura prevista",
        "",
        "<b>Total:</b> 3 produtos · 1.306 unidades · 58 embalagens",
    ]


def test_the_reorder_digest_in_english():
    [message] = texts.reorder_digest_render("en", [reorder_line(1, quantity=1200, pack_size=24)], day=DAY)

    assert "order 1,200 units (50 packs of 24) · stockout 12/03" in message
    assert message.endswith("<b>Total:</b> 1 product · 1,200 units · 50 packs")


def test_no_suggestions_make_no_message():
    assert texts.reorder_digest_render("pt-br", [], day=DAY) == []


def test_a_long_reorder_digest_is_split_within_telegrams_limit_keeping_every_line_once_in_order():
    lines = [reorder_line(n, name=f"Produto de nome bem comprido número {n} " + "x" * 40) for n in range(1, 151)]

    parts = texts.reorder_digest_render("pt-br", lines, day=DAY)

    assert len(parts) >= 3
    assert all(len(part) <= texts.TEXT_LIMIT for part in parts)
    assert [part.splitlines()[0] for part in parts] == [
        f"🛒 <b>Sugestões de compra</b> — 10/03 ({n}/{len(parts)})" for n in range(1, len(parts) + 1)]
    listed = [line for part in parts for line in part.splitlines()[1:] if line[:1].isdigit()]
    assert [line.split(".", 1)[0] for line in listed] == [str(n) for n in range(1, 151)]
    assert ["Total:" in part for part in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].endswith("<b>Total:</b> 150 produtos · 3.600 unidades · 300 embalagens")


def test_a_reorder_digest_kept_to_one_message_says_how_many_more_and_still_totals_everything():
    lines = [reorder_line(n, name="Produto " + "y" * 80) for n in range(1, 151)]

    [message] = texts.reorder_digest_render("pt-br", lines, day=DAY, max_parts=1)

    shown = [line for line in message.splitlines()[1:] if line[:1].isdigit()]
    assert len(message) <= texts.TEXT_LIMIT and 0 < len(shown) < 150
    assert f"… e mais {150 - len(shown)} produtos" in message
    assert message.endswith("<b>Total:</b> 150 produtos · 3.600 unidades · 300 embalagens")
