"""Tests for reorder suggestions: the formula, one open suggestion per product, ordering, dismissing, the API."""
import math
from datetime import date, timedelta
from statistics import NormalDist

import pytest
from core.errors import Conflict
from inventory.models import Product, Stock
from inventory.tests.factories import ProductFactory
from inventory.tests.test_concurrency import run_in_threads
from projections import services
from projections.models import (
    DemandEstimate,
    Direction,
    Firmness,
    PlannedKind,
    PlannedMovement,
    ReorderState,
    ReorderSuggestion,
    SupplyTerms,
)
from projections.tests.factories import PlannedMovementFactory, sales_history

TODAY = date(2026, 3, 10)
Z95 = NormalDist().inv_cdf(0.95)


def stocked(*, available: int, today: date = TODAY, demand: list[int] | None = None, lead: int = 5, pack: int = 12,
            min_order: int = 0, max_order: int | None = None):
    """A product with supply terms that sold ten a day (or ``demand``) until yesterday, ``available`` now."""
    product = ProductFactory()
    sales_history(product, today=today, demand=demand or [10] * 84, opening=10_000)
    Stock.objects.filter(product=product).update(on_hand=available)
    SupplyTerms.objects.create(product=product, lead_time_days=lead, pack_size=pack, min_order=min_order,
                               max_order=max_order)
    return product


def suggest(product, today: date | None = TODAY) -> ReorderSuggestion | None:
    services.projection_recompute(product_ids=[product.pk], today=today)
    return ReorderSuggestion.objects.filter(product=product, state=ReorderState.OPEN).first()


@pytest.mark.django_db
def test_the_suggestion_covers_lead_time_and_review_rounded_up_to_packs():
    product = stocked(available=35)  # cover 5 + 7 days at 10 a day = 120; 85 short; 8 packs of 12
    assert not ReorderSuggestion.objects.exists()

    suggestion = suggest(product)

    assert (suggestion.demand, suggestion.safety_stock, suggestion.available) == (120.0, 0.0, 35)
    assert (suggestion.cover_days, suggestion.arrival_date) == (12, TODAY + timedelta(days=5))
    assert suggestion.quantity == 96


@pytest.mark.django_db
def test_firm_inbound_in_the_cover_period_is_subtracted_and_tentative_is_not():
    product = stocked(available=35)
    PlannedMovementFactory(product=product, date=TODAY + timedelta(days=3), direction="in", quantity=20)
    PlannedMovementFactory(product=product, date=TODAY + timedelta(days=4), direction="in", quantity=50,
                           firmness=Firmness.TENTATIVE)
    PlannedMovementFactory(product=product, date=TODAY + timedelta(days=12), direction="in", quantity=500)

    suggestion = suggest(product)

    assert suggestion.firm_inbound == 20
    assert suggestion.quantity == 72  # 120 - 35 - 20 = 65 → 6 packs


@pytest.mark.django_db
def test_safety_stock_grows_with_the_demand_error():
    product = stocked(available=35, demand=[6, 14] * 42)

    suggestion = suggest(product)

    mae = DemandEstimate.objects.get(product=product).mae
    assert mae > 1
    assert suggestion.safety_stock == pytest.approx(Z95 * 1.25 * mae * math.sqrt(12), abs=0.01)
    need = suggestion.demand + suggestion.safety_stock - 35
    assert suggestion.quantity == math.ceil(need / 12) * 12


@pytest.mark.django_db
@pytest.mark.parametrize(("min_order", "max_order", "quantity"), [(200, None, 204), (0, 60, 60), (0, 70, 60)])
def test_minimum_and_maximum_orders_bound_the_quantity_in_whole_packs(min_order, max_order, quantity):
    product = stocked(available=35, min_order=min_order, max_order=max_order)

    assert suggest(product).quantity == quantity


@pytest.mark.django_db
def test_a_recompute_updates_the_open_suggestion_instead_of_adding_one():
    product = stocked(available=35)
    first = suggest(product)
    Stock.objects.filter(product=product).update(on_hand=11)

    second = suggest(product, today=TODAY + timedelta(days=1))

    assert second.pk == first.pk
    assert (first.available, second.available) == (35, 11)
    assert second.quantity == math.ceil((second.demand - 11) / 12) * 12 > first.quantity
    assert ReorderSuggestion.objects.filter(product=product).count() == 1


@pytest.mark.django_db
def test_the_open_suggestion_goes_when_nothing_is_needed_any_more():
    product = stocked(available=35)
    assert suggest(product) is not None
    Stock.objects.filter(product=product).update(on_hand=500)

    assert suggest(product, today=TODAY + timedelta(days=1)) is None
    assert not ReorderSuggestion.objects.filter(product=product).exists()


@pytest.mark.django_db
def test_an_inactive_product_loses_its_open_suggestion():
    product = stocked(available=35)
    assert suggest(product) is not None
    Product.objects.filter(pk=product.pk).update(active=False)

    assert suggest(product) is None
    assert not ReorderSuggestion.objects.filter(product=product).exists()


@pytest.mark.django_db
def test_products_without_supply_terms_get_no_suggestion():
    product = ProductFactory()
    sales_history(product, today=TODAY, demand=[10] * 84, opening=10_000)
    Stock.objects.filter(product=product).update(on_hand=5)

    assert suggest(product) is None


@pytest.mark.django_db
def test_ordering_creates_exactly_one_firm_purchase_and_closes_the_suggestion():
    today = services.projection_today()
    product = stocked(available=35, today=today)
    suggestion = suggest(product, today=None)
    assert not PlannedMovement.objects.filter(product=product).exists()

    ordered = services.reorder_suggestion_order(suggestion_id=suggestion.pk, actor="user:ana")
    with pytest.raises(Conflict):
        services.reorder_suggestion_order(suggestion_id=suggestion.pk, actor="user:ana")

    movement = PlannedMovement.objects.get(product=product)
    assert (movement.direction, movement.kind, movement.firmness) == (Direction.IN, PlannedKind.PURCHASE, Firmness.FIRM)
    assert (movement.quantity, movement.date) == (suggestion.quantity, today + timedelta(days=5))
    assert (movement.source, movement.source_ref) == ("reorder", f"suggestion-{suggestion.pk}")
    assert (ordered.state, ordered.planned_movement_id, ordered.decided_by) == (ReorderState.ORDERED, movement.pk,
                                                                                "user:ana")


@pytest.mark.django_db
def test_the_ordered_purchase_counts_so_no_new_suggestion_follows():
    today = services.projection_today()
    product = stocked(available=35, today=today)
    suggestion = suggest(product, today=None)

    services.reorder_suggestion_order(suggestion_id=suggestion.pk)

    assert suggest(product, today=None) is None
    assert list(ReorderSuggestion.objects.filter(product=product).values_list("state", flat=True)) == ["ordered"]


@pytest.mark.django_db
def test_a_dismissed_product_gets_no_suggestion_until_the_next_day():
    today = services.projection_today()
    product = stocked(available=35, today=today)
    suggestion = suggest(product, today=None)

    services.reorder_suggestion_dismiss(suggestion_id=suggestion.pk, actor="user:ana")

    assert suggest(product, today=None) is None
    assert suggest(product, today=today + timedelta(days=1)) is not None
    assert ReorderSuggestion.objects.get(pk=suggestion.pk).state == ReorderState.DISMISSED


@pytest.mark.django_db(transaction=True)
def test_concurrent_recomputes_never_produce_two_open_suggestions():
    product = stocked(available=35)

    def recompute_often(_index):
        for n in range(5):
            Stock.objects.filter(product=product).update(on_hand=30 + n)
            services.projection_recompute(product_ids=[product.pk], today=TODAY)

    errors = run_in_threads(4, recompute_often)

    assert errors == []
    assert ReorderSuggestion.objects.filter(product=product, state=ReorderState.OPEN).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_orders_of_one_suggestion_create_one_purchase():
    product = stocked(available=35, today=services.projection_today())
    suggestion = suggest(product, today=None)
    refused = []

    def order(_index):
        try:
            services.reorder_suggestion_order(suggestion_id=suggestion.pk)
        except Conflict:
            refused.append(True)

    errors = run_in_threads(4, order)

    assert errors == []
    assert len(refused) == 3
    assert PlannedMovement.objects.filter(product=product, source="reorder").count() == 1


@pytest.mark.django_db
def test_a_new_or_changed_suggestion_writes_one_reorder_suggested_webhook():
    from webhooks.models import WebhookDelivery
    from webhooks.tests.factories import endpoint_make

    endpoint_make(event_types=["reorder.suggested"])
    product = stocked(available=35)
    assert not WebhookDelivery.objects.exists()

    suggestion = suggest(product)
    suggest(product)  # the same quantity again: nothing new to tell
    Stock.objects.filter(product=product).update(on_hand=5)
    changed = suggest(product)

    sent = list(WebhookDelivery.objects.order_by("id"))
    assert [d.event_type for d in sent] == ["reorder.suggested", "reorder.suggested"]
    assert [d.payload["data"]["quantity"] for d in sent] == [suggestion.quantity, changed.quantity]
    assert sent[0].payload["data"]["code"] == product.code
    assert sent[0].payload["data"]["arrival_date"] == (TODAY + timedelta(days=5)).isoformat()
