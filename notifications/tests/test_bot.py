"""Tests for the bot's commands and buttons (drivers' and buyers'), answered through the fake Telegram Bot API, and its
queue of each chat's commands."""
from datetime import timedelta

import pytest

from inventory.tests.factories import ProductFactory, UnifiedCodeFactory
from notifications import services
from notifications.bot import bot_chat_serve, bot_update_handle
from notifications.models import AlertOutbox, Driver, DriverMute, Role, TelegramUpdate
from notifications.tests.factories import BuyerFactory, DriverFactory, open_suggestion
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


@pytest.mark.parametrize("term, name", [("cafe", "Café torrado 500g"), ("feijao", "Feijão carioca 1kg"),
                                        ("pao", "Pão francês"), ("agua", "Água mineral 1,5L")])
def test_estoque_finds_a_name_typed_without_its_accents(fake_telegram, term, name):
    DriverFactory(chat_id=CHAT)
    ProductFactory(name=name, on_hand=7)
    ProductFactory(name="Detergente neutro", on_hand=3)

    say(f"/estoque {term}")

    reply = last_reply(fake_telegram)
    assert name in reply and "Disponível: 7" in reply


def test_estoque_searches_the_whole_catalogue(fake_telegram):
    """The look-up once compared the term with the first 5,000 active names only."""
    from inventory.models import Product, Stock

    DriverFactory(chat_id=CHAT)
    Product.objects.bulk_create(
        Product(code=f"BULK-{n:05d}", name=f"Sabonete lote {n}", category="higiene") for n in range(6000))
    from inventory.selectors import location_default_id

    Stock.objects.bulk_create(Stock(product=p, location_id=location_default_id(), on_hand=10)
                              for p in Product.objects.all())
    ProductFactory(code="ZZ-QUEIJO", name="Queijo parmesão ralado 50g", on_hand=4)  # after the first 5,000

    say("/estoque queijo parmezao")

    reply = last_reply(fake_telegram)
    assert "Queijo parmesão ralado 50g" in reply and "Disponível: 4" in reply


def test_estoque_with_several_matches_lists_them_with_stock_and_never_says_not_found(fake_telegram):
    DriverFactory(chat_id=CHAT)
    ProductFactory(code="ARR-1", name="Arroz branco 5kg", on_hand=12)
    ProductFactory(code="ARR-2", name="Arroz integral 1kg", on_hand=0)

    say("/estoque arroz")

    reply = last_reply(fake_telegram)
    assert "Nenhum produto" not in reply
    assert "Arroz branco 5kg (ARR-1): 12" in reply and "Arroz integral 1kg (ARR-2): 0" in reply


def test_estoque_says_not_found_only_when_nothing_is_close(fake_telegram):
    DriverFactory(chat_id=CHAT)
    ProductFactory(name="Arroz branco 5kg", on_hand=12)

    say("/estoque parafuso")

    assert last_reply(fake_telegram) == "Nenhum produto encontrado para “parafuso”."


def test_estoque_for_a_product_at_zero_offers_its_substitutes(fake_telegram):
    DriverFactory(chat_id=CHAT)
    ProductFactory(code="SAL-1", name="Sal refinado 1kg", category="mercearia", on_hand=0)
    ProductFactory(code="SAL-2", name="Sal grosso 1kg", category="mercearia", on_hand=20)
    ProductFactory(code="LEITE", name="Leite condensado", category="mercearia", on_hand=90)

    say("/estoque SAL-1")

    reply = last_reply(fake_telegram)
    assert "Disponível: 0" in reply and "Substitutos: Sal grosso 1kg (SAL-2)" in reply and "Leite" not in reply


def test_estoque_for_a_product_in_stock_offers_no_substitutes(fake_telegram):
    DriverFactory(chat_id=CHAT)
    ProductFactory(code="SAL-1", name="Sal refinado 1kg", category="mercearia", on_hand=3)
    ProductFactory(code="SAL-2", name="Sal grosso 1kg", category="mercearia", on_hand=20)

    say("/estoque SAL-1")

    assert "Substitutos" not in last_reply(fake_telegram)


def test_free_text_gets_the_estoque_answer_of_the_best_match(fake_telegram):
    DriverFactory(chat_id=CHAT)
    ProductFactory(code="ARR-1", name="Arroz agulhinha 5kg", on_hand=12)
    ProductFactory(name="Feijão preto", on_hand=9)

    say("tem arroz?")

    assert last_reply(fake_telegram) == "<b>Arroz agulhinha 5kg</b> (ARR-1)\nEm estoque: 12 · Reservado: 0 · Disponível: 12"


@pytest.mark.parametrize("text, term", [("tem arroz?", "arroz"), ("Quanto de café temos?", "café"),
                                        ("tem pão de queijo??", "pão queijo"), ("is there any milk?", "milk"),
                                        ("7891000100103", "7891000100103"), ("ainda tem SKU-00012?", "SKU-00012")])
def test_free_text_keeps_the_product_words(text, term):
    from notifications.bot import free_text_term

    assert free_text_term(text) == term


def test_free_text_without_a_product_word_explains_what_to_send(fake_telegram):
    DriverFactory(chat_id=CHAT)

    say("oi, tem?")

    assert "nome ou o código" in last_reply(fake_telegram)


def test_free_text_from_an_unlinked_chat_is_told_to_link_first(fake_telegram):
    ProductFactory(name="Arroz", on_hand=3)

    say("tem arroz?")

    assert "não está vinculado" in last_reply(fake_telegram)


def test_free_text_in_a_group_is_left_to_the_people_there(fake_telegram):
    DriverFactory(chat_id=-100123, is_group=True)
    ProductFactory(name="Arroz", on_hand=3)

    say("alguém viu o arroz?", chat_id=-100123, chat_type="supergroup")

    assert fake_telegram.calls_to("sendMessage") == []


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


def test_ruptura_lists_what_is_out_now_before_projected_stockouts(fake_telegram):
    from datetime import timedelta

    from django.utils import timezone

    from projections.models import ProjectionSummary

    DriverFactory(chat_id=CHAT)
    out_b, out_a = ProductFactory(name="Óleo de soja", on_hand=0), ProductFactory(name="Farinha de trigo", on_hand=0)
    soon = ProductFactory(name="Açúcar cristal", on_hand=3)
    today = timezone.localdate()
    ProjectionSummary.objects.create(product=soon, as_of=today, stockout_date=today + timedelta(days=2))

    say("/ruptura")

    lines = last_reply(fake_telegram).split("\n")
    assert lines[0] == "<b>Sem estoque agora</b> (2):"
    assert lines[1].startswith("• Farinha de trigo") and lines[2].startswith("• Óleo de soja")
    assert lines[3].startswith("<b>Rupturas previstas</b>") and lines[4].startswith("• Açúcar cristal")


def test_ruptura_with_only_products_at_zero_does_not_say_none(fake_telegram):
    DriverFactory(chat_id=CHAT)
    for n in range(9):
        ProductFactory(name=f"Item zerado {n}", on_hand=0)

    say("/ruptura")

    reply = last_reply(fake_telegram)
    assert "Nenhuma ruptura" not in reply and "(9)" in reply and reply.count("• Item zerado") == 9


def test_ruptura_keeps_to_the_drivers_categories(fake_telegram):
    DriverFactory(chat_id=CHAT, subscription="categories", categories=["bebidas"])
    ProductFactory(name="Suco de uva", category="bebidas", on_hand=0)
    ProductFactory(name="Detergente", category="limpeza", on_hand=0)

    say("/ruptura")

    reply = last_reply(fake_telegram)
    assert "Suco de uva" in reply and "Detergente" not in reply


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


def record(update_id, text, chat_id=CHAT):
    services.telegram_update_record(update={"update_id": update_id, "message": {
        "message_id": update_id, "text": text, "chat": {"id": chat_id, "type": "private"}}})


def test_commands_faster_than_the_chat_limit_wait_their_turn_in_the_order_sent(fake_telegram, settings):
    import time

    settings.TELEGRAM_RATE_CHAT_SECONDS = 0.4
    DriverFactory(chat_id=CHAT)
    ProductFactory(code="ARROZ", name="Arroz", on_hand=9)
    ProductFactory(code="CAFE", name="Café", on_hand=4)
    record(11, "/estoque ARROZ")
    record(12, "/estoque CAFE")
    record(13, "/ajuda")

    bot_chat_serve(update_id=13)  # the last command's task runs first: the chat is served from its oldest

    assert [c.payload["text"].split("\n")[0] for c in fake_telegram.calls_to("sendMessage")] == [
        "<b>Arroz</b> (ARROZ)"]
    waiting = TelegramUpdate.objects.get(update_id=12)
    assert waiting.processed_at is not None and waiting.replied_at is None and "Café" in waiting.reply["text"]
    assert TelegramUpdate.objects.get(update_id=13).processed_at is None  # behind it, not yet worked out

    for _ in range(2):
        time.sleep(0.4)  # the chat's slot is free again: what the task queued for this moment does
        bot_chat_serve(update_id=12)

    replies = fake_telegram.calls_to("sendMessage")
    assert ["Arroz" in replies[0].payload["text"], "Café" in replies[1].payload["text"],
            "/estoque" in replies[2].payload["text"]] == [True, True, True]
    assert not TelegramUpdate.objects.filter(replied_at__isnull=True).exists()


def test_a_reply_telegram_tells_to_wait_longer_than_the_budget_keeps_its_place(fake_telegram):
    DriverFactory(chat_id=CHAT)
    record(21, "/ajuda")
    record(22, "/baixo")
    fake_telegram.script("sendMessage", too_many(5))

    bot_chat_serve(update_id=21)

    assert [c.status for c in fake_telegram.calls_to("sendMessage")] == [429]
    first = TelegramUpdate.objects.get(update_id=21)
    assert first.replied_at is None and first.claimed_until is None and "/estoque" in first.reply["text"]
    assert TelegramUpdate.objects.get(update_id=22).processed_at is None


def test_a_button_press_is_acknowledged_at_once_and_its_reply_queued(fake_telegram):
    DriverFactory(chat_id=CHAT)
    product = ProductFactory(name="Ovos", on_hand=3)
    services.telegram_update_record(update={"update_id": 31, "callback_query": {
        "id": "cb9", "data": f"s:{product.pk}", "message": {"message_id": 9, "chat": {"id": CHAT}}}})

    bot_chat_serve(update_id=31)

    [ack] = fake_telegram.calls_to("answerCallbackQuery")
    assert ack.payload["callback_query_id"] == "cb9"
    assert "Ovos" in last_reply(fake_telegram)
    assert TelegramUpdate.objects.get(update_id=31).chat_id == CHAT


def test_an_update_the_bot_cannot_read_does_not_hold_up_the_chats_later_commands(fake_telegram, caplog):
    DriverFactory(chat_id=CHAT)
    services.telegram_update_record(update={"update_id": 41, "message": {"text": 5, "chat": {"id": CHAT}}})
    record(42, "/ajuda")

    bot_chat_serve(update_id=41)

    assert "/estoque" in last_reply(fake_telegram)
    dropped = TelegramUpdate.objects.get(update_id=41)
    assert dropped.processed_at is not None and dropped.reply is None
    assert "bot update could not be answered" in caplog.text


# --- buyers: /compras, and the commands of drivers --------------------------------------------------------------

def test_compras_answers_a_buyer_with_the_open_suggestions_most_urgent_first_and_the_total(fake_telegram):
    from django.utils import timezone

    today = timezone.localdate()
    BuyerFactory(chat_id=CHAT)
    open_suggestion(code="LATER", name="Feijão", quantity=48, stockout=today + timedelta(days=5))
    open_suggestion(code="SOON", name="Arroz", quantity=96, stockout=today + timedelta(days=1))

    say("/compras")

    reply = last_reply(fake_telegram).splitlines()
    assert reply[0] == f"🛒 <b>Sugestões de compra</b> — {today:%d/%m}"
    assert reply[1].startswith("1. <b>Arroz</b> (SOON) — pedir 96 un. (8 emb. de 12) · ruptura")
    assert reply[2].startswith("2. <b>Feijão</b> (LATER) — pedir 48 un. (4 emb. de 12)")
    assert reply[-1] == "<b>Total:</b> 2 produtos · 144 unidades · 12 embalagens"


def test_compras_answers_the_same_text_as_the_days_digest(fake_telegram):
    from django.utils import timezone

    buyer = BuyerFactory(chat_id=CHAT, language="en")
    open_suggestion(code="SAME-1")
    services.reorder_digest_write(day=timezone.localdate())

    say("/reorder")

    assert last_reply(fake_telegram) == AlertOutbox.objects.get(driver=buyer).text


def test_compras_with_nothing_open_says_so(fake_telegram):
    BuyerFactory(chat_id=CHAT)

    say("/compras")

    assert last_reply(fake_telegram) == "Nenhuma sugestão de compra aberta."


def test_compras_keeps_to_what_the_buyer_follows(fake_telegram):
    BuyerFactory(chat_id=CHAT, subscription="categories", categories=["bebidas"])
    open_suggestion(code="SUCO", category="bebidas")
    open_suggestion(code="ARROZ", category="mercearia")

    say("/compras")

    reply = last_reply(fake_telegram)
    assert "SUCO" in reply and "ARROZ" not in reply


def test_compras_with_a_long_list_fits_one_message_and_says_how_many_more(fake_telegram):
    BuyerFactory(chat_id=CHAT)
    for n in range(150):
        open_suggestion(code=f"L-{n:03d}", name=f"Produto com um nome bem comprido {n} " + "q" * 40)

    say("/compras")

    [call] = fake_telegram.calls_to("sendMessage")
    reply = call.payload["text"]
    shown = reply.count("(L-")
    assert len(reply) <= 4096 and 0 < shown < 150
    assert f"… e mais {150 - shown} produtos" in reply
    assert reply.endswith("<b>Total:</b> 150 produtos · 3.600 unidades · 300 embalagens")


def test_compras_is_for_buyers_only(fake_telegram):
    DriverFactory(chat_id=CHAT)
    open_suggestion(code="NOPE")

    say("/compras")

    reply = last_reply(fake_telegram)
    assert "compradores" in reply and "NOPE" not in reply


def test_help_lists_compras(fake_telegram):
    BuyerFactory(chat_id=CHAT)

    say("/ajuda")

    assert "/compras — sugestões de compra abertas" in last_reply(fake_telegram)


def test_a_buyer_only_chat_cannot_mute_stock_alerts_it_does_not_get(fake_telegram):
    buyer = BuyerFactory(chat_id=CHAT)
    product = ProductFactory(code="PAO", on_hand=9)
    base = {"id": "cb1", "message": {"message_id": 9, "chat": {"id": CHAT}}}

    say("/silenciar PAO 2")
    bot_update_handle(update={"update_id": 2, "callback_query": {**base, "data": f"m:{product.pk}:1"}})

    assert not DriverMute.objects.filter(driver=buyer).exists()
    assert "entregadores" in last_reply(fake_telegram)


def test_a_buyer_can_still_ask_about_stock(fake_telegram):
    BuyerFactory(chat_id=CHAT)
    ProductFactory(code="ARZ", name="Arroz", on_hand=7)

    say("/estoque ARZ")

    assert "Disponível: 7" in last_reply(fake_telegram)


@pytest.mark.parametrize("role,expected", [
    (Role.DRIVER, "vai receber os alertas de estoque."),
    (Role.BUYER, "vai receber o resumo diário das sugestões de compra."),
    (Role.BOTH, "vai receber os alertas de estoque e o resumo diário das sugestões de compra."),
])
def test_linking_tells_the_chat_what_it_will_receive(fake_telegram, role, expected):
    driver = DriverFactory(chat_id=None, name="Ana", role=role)
    token = services.driver_link_create(driver=driver).split("start=")[1]

    say(f"/start {token}")

    assert expected in last_reply(fake_telegram)


# --- locations: answers for the recipient's locations ---------------------------------------------------------

@pytest.fixture
def store_b():
    from inventory.tests.factories import LocationFactory

    return LocationFactory(code="LOJA-B", name="Loja Bairro")


def default_location():
    from inventory.models import Location
    from inventory.selectors import location_default_id

    return Location.objects.get(pk=location_default_id())


def test_estoque_of_a_driver_of_one_store_answers_for_that_store(fake_telegram, store_b):
    from inventory.tests.factories import stock_at_location

    DriverFactory(chat_id=CHAT).locations.set([store_b])
    stock_at_location(ProductFactory(code="OLEO-1", name="Óleo", on_hand=40), store_b, on_hand=3)

    say("/estoque OLEO-1")

    reply = last_reply(fake_telegram)
    assert "Disponível: 3" in reply and "📍 Loja Bairro" in reply and "40" not in reply


def test_estoque_of_a_driver_of_two_locations_answers_one_line_per_location(fake_telegram, store_b):
    from inventory.tests.factories import stock_at_location

    DriverFactory(chat_id=CHAT).locations.set([store_b, default_location()])
    stock_at_location(ProductFactory(code="OLEO-2", name="Óleo", on_hand=40), store_b, on_hand=3)

    say("/estoque OLEO-2")

    lines = last_reply(fake_telegram).split("\n")
    assert lines[0] == "<b>Óleo</b> (OLEO-2)"
    assert lines[1] == f"📍 {default_location().name}: em estoque 40 · reservado 0 · disponível 40"
    assert lines[2] == "📍 Loja Bairro: em estoque 3 · reservado 0 · disponível 3"


def test_estoque_matches_count_what_the_drivers_locations_have(fake_telegram, store_b):
    from inventory.tests.factories import stock_at_location

    DriverFactory(chat_id=CHAT).locations.set([store_b])
    white = ProductFactory(name="Arroz branco 1kg", on_hand=50)
    stock_at_location(white, store_b, on_hand=4)
    brown = ProductFactory(name="Arroz integral 1kg", on_hand=50)

    say("/estoque arroz")

    # Exact lines: the default location's 50 shows nowhere (a bare "50" check also matched codes like SKU-00750).
    lines = last_reply(fake_telegram).split("\n")
    assert f"• Arroz branco 1kg ({white.code}): 4" in lines
    assert f"• Arroz integral 1kg ({brown.code}): 0" in lines
    assert not any(line.endswith(": 50") for line in lines)


def test_the_stock_button_answers_for_the_drivers_locations(fake_telegram, store_b):
    from inventory.tests.factories import stock_at_location

    DriverFactory(chat_id=CHAT).locations.set([store_b])
    product = ProductFactory(name="Café", on_hand=40)
    stock_at_location(product, store_b, on_hand=2)

    bot_update_handle(update={"update_id": 2, "callback_query": {
        "id": "q1", "data": f"s:{product.pk}", "message": {"message_id": 9, "chat": {"id": CHAT, "type": "private"}}}})

    assert "Disponível: 2" in last_reply(fake_telegram)


def test_baixo_of_a_driver_of_two_locations_names_where_each_product_is_low(fake_telegram, store_b):
    from inventory.tests.factories import stock_at_location

    DriverFactory(chat_id=CHAT).locations.set([store_b, default_location()])
    stock_at_location(ProductFactory(name="Suco", on_hand=40), store_b, on_hand=2)
    ProductFactory(name="Água", on_hand=1)

    say("/baixo")

    lines = last_reply(fake_telegram).split("\n")
    assert lines[0] == "<b>Abaixo do limite</b> (2):"
    assert lines[1].startswith("• Água (") and lines[1].endswith(f"📍 {default_location().name}")
    assert lines[2].startswith("• Suco (") and lines[2].endswith("📍 Loja Bairro")


def test_baixo_of_a_driver_of_another_store_ignores_the_default_location(fake_telegram, store_b):
    from inventory.tests.factories import stock_at_location

    DriverFactory(chat_id=CHAT).locations.set([store_b])
    stock_at_location(ProductFactory(name="Suco", on_hand=1), store_b, on_hand=30)

    say("/baixo")

    assert "Nenhum produto abaixo do limite" in last_reply(fake_telegram)


def test_ruptura_of_a_driver_of_another_store_lists_what_is_out_there(fake_telegram, store_b):
    from inventory.tests.factories import stock_at_location

    DriverFactory(chat_id=CHAT).locations.set([store_b])
    stock_at_location(ProductFactory(name="Farinha", on_hand=30), store_b, on_hand=0)
    ProductFactory(name="Óleo", on_hand=0)

    say("/ruptura")

    lines = last_reply(fake_telegram).split("\n")
    assert lines[0] == "<b>Sem estoque agora</b> (1):"
    assert lines[1].startswith("• Farinha") and len(lines) == 2


def test_compras_of_a_buyer_of_two_locations_names_each_lines_location(fake_telegram, store_b):
    BuyerFactory(chat_id=CHAT).locations.set([store_b, default_location()])
    open_suggestion(code="ARROZ", name="Arroz", quantity=24)

    say("/compras")

    reply = last_reply(fake_telegram).splitlines()
    assert reply[1].startswith("1. <b>Arroz</b> (ARROZ) — pedir 24 un. (2 emb. de 12)")
    assert reply[1].endswith(f" · 📍 {default_location().name}")


def test_compras_of_a_buyer_of_another_store_leaves_out_the_default_locations_suggestions(fake_telegram, store_b):
    BuyerFactory(chat_id=CHAT).locations.set([store_b])
    open_suggestion(code="ARROZ", name="Arroz", quantity=24)

    say("/compras")

    assert last_reply(fake_telegram) == "Nenhuma sugestão de compra aberta."


def test_ruptura_lists_projected_stockouts_at_each_of_the_drivers_locations(fake_telegram, store_b):
    from datetime import timedelta

    from django.utils import timezone

    from inventory.tests.factories import LocationFactory, stock_at_location
    from projections.models import ProjectionSummary

    elsewhere = LocationFactory(code="LOJA-C", name="Loja C")
    DriverFactory(chat_id=CHAT).locations.set([store_b, default_location()])
    flour, salt = ProductFactory(name="Farinha", on_hand=3), ProductFactory(name="Sal", on_hand=3)
    for product in (flour, salt):
        stock_at_location(product, store_b, on_hand=3)
        stock_at_location(product, elsewhere, on_hand=3)
    today = timezone.localdate()
    ProjectionSummary.objects.create(product=flour, location=store_b, as_of=today, stockout_date=today + timedelta(days=1))
    ProjectionSummary.objects.create(product=salt, location=default_location(), as_of=today,
                                     stockout_date=today + timedelta(days=3))
    ProjectionSummary.objects.create(product=salt, location=elsewhere, as_of=today, stockout_date=today)

    say("/ruptura")

    lines = last_reply(fake_telegram).split("\n")
    assert lines[0].startswith("<b>Rupturas previstas</b>")
    assert lines[1].startswith("• Farinha") and lines[1].endswith(f"{today + timedelta(days=1):%d/%m} · 📍 {store_b.name}")
    assert lines[2].startswith("• Sal") and lines[2].endswith(f"📍 {default_location().name}")
    assert len(lines) == 3  # LOJA-C is not the driver's
