"""Tests for the notifications reads: the substitutes offered for a product that is low or out, recipients by role,
the reorder digest's lines."""
from datetime import date, timedelta

import pytest

from inventory.tests.factories import ProductFactory
from notifications.models import Role, Subscription, Substitute
from notifications.selectors import (
    buyers_reachable,
    drivers_reachable,
    reorder_digest_lines,
    reorder_digest_lines_for,
    substitutes_for,
)
from notifications.tests.factories import BuyerFactory, DriverFactory, open_suggestion
from projections.models import ReorderState, ReorderSuggestion

pytestmark = pytest.mark.django_db


def names(product):
    return [name for _, name in substitutes_for(product=product)]


def test_automatic_substitutes_share_the_products_first_word_whatever_else_is_in_the_category():
    """The issue's case: 'Sal refinado' was offered condensed milk, biscuits and rice by stock alone."""
    salt = ProductFactory(name="Sal refinado 1kg", category="mercearia", on_hand=0)
    ProductFactory(name="Leite condensado", category="mercearia", on_hand=900)
    ProductFactory(name="Biscoito recheado", category="mercearia", on_hand=800)
    ProductFactory(name="Arroz tipo 1", category="mercearia", on_hand=700)
    ProductFactory(name="Sal grosso 1kg", category="mercearia", on_hand=20)

    assert names(salt) == ["Sal grosso 1kg"]


def test_automatic_substitutes_come_from_the_same_category_only():
    onion = ProductFactory(name="Cebola", category="hortifruti", on_hand=0)
    ProductFactory(name="Banana prata", category="hortifruti", on_hand=90)
    ProductFactory(name="Cebola em conserva", category="mercearia", on_hand=90)
    ProductFactory(name="Cebola roxa", category="hortifruti", on_hand=10)

    assert names(onion) == ["Cebola roxa"]


def test_automatic_substitutes_ignore_accents_and_case_in_the_shared_word():
    beans = ProductFactory(name="Feijão carioca", category="mercearia", on_hand=0)
    ProductFactory(name="FEIJAO preto", category="mercearia", on_hand=30)

    assert names(beans) == ["FEIJAO preto"]


def test_automatic_substitutes_rank_by_name_similarity_then_by_available_stock():
    milk = ProductFactory(name="Leite integral 1L", category="laticinios", on_hand=0)
    ProductFactory(name="Leite em pó integral 400g", category="laticinios", on_hand=500)
    ProductFactory(name="Leite semidesnatado 1L", category="laticinios", on_hand=40)
    ProductFactory(name="Leite desnatado 1L", category="laticinios", on_hand=60)
    ProductFactory(name="Leite integral 1L zero lactose", category="laticinios", on_hand=10)

    # The closest name first though it has the least stock; "integral" keeps the powdered milk ahead too.
    assert names(milk) == ["Leite integral 1L zero lactose", "Leite em pó integral 400g", "Leite desnatado 1L"]


def test_equally_similar_names_go_by_available_stock():
    rice = ProductFactory(name="Arroz A", category="mercearia", on_hand=0)
    ProductFactory(name="Arroz B", category="mercearia", on_hand=30)
    ProductFactory(name="Arroz C", category="mercearia", on_hand=90)

    assert names(rice) == ["Arroz C", "Arroz B"]


def test_a_product_that_is_itself_low_or_out_is_never_an_automatic_substitute():
    rice = ProductFactory(name="Arroz branco", category="mercearia", on_hand=0)
    ProductFactory(name="Arroz parboilizado", category="mercearia", on_hand=0)
    ProductFactory(name="Arroz integral", category="mercearia", on_hand=3, low_stock_threshold=5)
    ProductFactory(name="Arroz arbóreo", category="mercearia", on_hand=8, low_stock_threshold=5)

    assert names(rice) == ["Arroz arbóreo"]


def test_a_substitutes_own_threshold_decides_whether_it_is_low():
    """Once the product's threshold was used: a candidate above it but below its own was offered."""
    rice = ProductFactory(name="Arroz branco", category="mercearia", on_hand=0, low_stock_threshold=1)
    ProductFactory(name="Arroz integral", category="mercearia", on_hand=5, low_stock_threshold=10)

    assert names(rice) == []


def test_staff_chosen_substitutes_win_over_automatic_ones():
    rice = ProductFactory(name="Arroz branco", category="mercearia", on_hand=0)
    ProductFactory(name="Arroz integral", category="mercearia", on_hand=90)
    chosen = ProductFactory(name="Macarrão espaguete", category="massas", on_hand=4)
    Substitute.objects.create(product=rice, substitute=chosen)

    assert names(rice) == ["Macarrão espaguete"]


# --- recipients by role and the reorder digest's lines --------------------------------------------------------------

def test_stock_alerts_reach_drivers_and_the_digest_reaches_buyers():
    driver, buyer, both = DriverFactory(), BuyerFactory(), DriverFactory(role=Role.BOTH)
    BuyerFactory(active=False)
    BuyerFactory(chat_id=None)
    BuyerFactory(unreachable=True)

    assert set(drivers_reachable()) == {driver, both}
    assert list(buyers_reachable()) == [buyer, both]


def test_digest_lines_are_the_open_suggestions_most_urgent_first():
    day = date(2026, 3, 10)
    later = open_suggestion(code="LATER", stockout=day + timedelta(days=6), quantity=12)
    none = open_suggestion(code="NONE", stockout=None, quantity=500)
    soon_small = open_suggestion(code="SOON-S", stockout=day + timedelta(days=2), quantity=12)
    soon_big = open_suggestion(code="SOON-B", stockout=day + timedelta(days=2), quantity=48, pack_size=None)
    decided = open_suggestion(code="DONE", stockout=day)
    ReorderSuggestion.objects.filter(pk=decided.pk).update(state=ReorderState.DISMISSED)

    lines = reorder_digest_lines()

    assert [line.code for line in lines] == ["SOON-B", "SOON-S", "LATER", "NONE"]
    big = lines[0]
    assert (big.product_id, big.quantity, big.pack_size, big.stockout_date) == (
        soon_big.product_id, 48, None, day + timedelta(days=2))
    assert (lines[1].quantity, lines[1].pack_size, lines[1].packs) == (12, 12, 1)
    assert (lines[2].product_id, lines[2].stockout_date) == (later.product_id, day + timedelta(days=6))
    assert (lines[3].product_id, lines[3].stockout_date) == (none.product_id, None)
    assert lines[1].product_id == soon_small.product_id


def test_digest_lines_are_read_in_one_query(django_assert_num_queries):
    for n in range(5):
        open_suggestion(stockout=date(2026, 3, 10) + timedelta(days=n))

    with django_assert_num_queries(1):
        assert len(reorder_digest_lines()) == 5


def test_a_buyer_reads_the_lines_of_what_they_follow():
    open_suggestion(code="BEB-1", category="bebidas")
    open_suggestion(code="MER-1", category="mercearia")
    chosen = open_suggestion(code="MER-2", category="mercearia")
    everything = BuyerFactory()
    drinks = BuyerFactory(subscription=Subscription.CATEGORIES, categories=["Bebidas "])
    one = BuyerFactory(subscription=Subscription.PRODUCTS)
    one.products.add(chosen.product)
    lines = reorder_digest_lines()

    assert {line.code for line in reorder_digest_lines_for(everything, lines)} == {"BEB-1", "MER-1", "MER-2"}
    assert [line.code for line in reorder_digest_lines_for(drinks, lines)] == ["BEB-1"]
    assert [line.code for line in reorder_digest_lines_for(one, lines)] == ["MER-2"]
