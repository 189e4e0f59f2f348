"""Tests for projection services: planned-movement upserts and cancels, dirty-marking, dedupe and risk events."""
import asyncio
import json
from datetime import timedelta

import pytest
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.errors import ValidationFailed
from core.groups import GROUP_ALL
from inventory.models import Stock
from inventory.selectors import location_default_id
from inventory.services import stock_adjust, stock_receive
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory
from projections import services
from projections.models import PlannedMovement, PlannedStatus, ProjectionSummary
from projections.selectors import summaries, summary_is_stale


def line(product_code: str, ref: str, *, days: int = 1, direction: str = "out", quantity: int = 5, **extra):
    return services.PlannedMovementInput(
        source_ref=ref, code=product_code, date=services.projection_today() + timedelta(days=days),
        direction=direction, quantity=quantity, kind="order", **extra)


@pytest.mark.django_db
def test_upsert_through_a_unified_code_stores_the_canonical_product():
    alias = UnifiedCodeFactory(code="OLD-7", product=ProductFactory(code="NEW-7"))
    assert PlannedMovement.objects.count() == 0

    services.planned_movements_upsert(items=[line("old-7", "po-1", source="erp")])

    movement = PlannedMovement.objects.get()
    assert (movement.product_id, movement.source, movement.source_ref) == (alias.product_id, "erp", "po-1")


@pytest.mark.django_db
def test_upsert_with_the_same_source_reference_updates_and_bumps_both_products():
    first, second = ProductFactory(), ProductFactory()
    services.planned_movements_upsert(items=[line(first.code, "po-2", quantity=5)])
    versions = {s.product_id: s.plan_version for s in ProjectionSummary.objects.all()}

    services.planned_movements_upsert(items=[line(second.code, "po-2", quantity=9)])

    movement = PlannedMovement.objects.get()
    assert (movement.product_id, movement.quantity) == (second.pk, 9)
    after = {s.product_id: s.plan_version for s in ProjectionSummary.objects.all()}
    assert after[first.pk] == versions[first.pk] + 1
    assert after[second.pk] == 1


@pytest.mark.django_db
def test_every_bad_line_is_reported_at_once_and_nothing_is_written():
    product = ProductFactory()

    with pytest.raises(ValidationFailed) as caught:
        services.planned_movements_upsert(items=[
            line(product.code, "ok-1"),
            line("NOPE", "bad-1"),
            line(product.code, "bad-2", quantity=0, direction="sideways"),
        ])

    lines = caught.value.details["lines"]
    assert [(entry["index"], sorted(entry["errors"])) for entry in lines] == [
        (1, ["code"]), (2, ["direction", "quantity"])]
    assert PlannedMovement.objects.count() == 0


@pytest.mark.django_db
def test_a_bulk_call_looks_up_the_codes_of_all_its_lines_at_once():
    product = ProductFactory()
    items = [line(f"NOPE-{n}", f"bad-{n}") for n in range(20)] + [line(product.code, "ok-1", quantity=0)]

    with CaptureQueriesContext(connection) as captured, pytest.raises(ValidationFailed) as caught:
        services.planned_movements_apply(items=items, cancel=[("erp", None)])

    lookups = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(lookups) == 2  # products by code, then unified codes for the ones not found
    assert [(e["list"], e["index"]) for e in caught.value.details["lines"]] == (
        [("upsert", n) for n in range(21)] + [("cancel", 0)])
    assert PlannedMovement.objects.count() == 0


@pytest.mark.django_db
def test_cancel_by_source_reference_takes_the_movement_out_of_the_projection():
    product = ProductFactory(on_hand=10)
    services.planned_movements_upsert(items=[line(product.code, "so-1", quantity=4, days=0, source="shop")])
    services.projection_recompute(product_ids=[product.pk])
    assert ProjectionSummary.objects.get(product=product).daily_balance[0] == 6

    cancelled = services.planned_movements_cancel(keys=[("shop", "so-1"), ("shop", "unknown")])
    services.projection_recompute(product_ids=[product.pk])

    assert cancelled == 1
    assert PlannedMovement.objects.get().status == PlannedStatus.CANCELLED
    assert ProjectionSummary.objects.get(product=product).daily_balance[0] == 10


@pytest.mark.django_db
def test_a_stock_change_makes_the_summary_stale_without_touching_it():
    product = ProductFactory(on_hand=10)
    services.projection_recompute(product_ids=[product.pk])
    summary = summaries().get(product=product)
    assert not summary_is_stale(summary)

    stock_receive(code=product.code, quantity=1)

    summary = summaries().get(product=product)
    assert summary.start_balance == 10
    assert summary_is_stale(summary)


@pytest.mark.django_db(transaction=True)
def test_stock_change_recomputes_after_commit_when_inline(settings):
    settings.PROJECTION_INLINE_MAX_PRODUCTS = 5
    product = ProductFactory(on_hand=10)
    assert not ProjectionSummary.objects.filter(product=product).exists()

    stock_receive(code=product.code, quantity=3)

    summary = summaries().get(product=product)
    assert summary.start_balance == 13
    assert not summary_is_stale(summary)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_schedules_nothing(settings):
    settings.PROJECTION_INLINE_MAX_PRODUCTS = 5
    product = ProductFactory(on_hand=10)

    with transaction.atomic():
        stock_receive(code=product.code, quantity=3)
        transaction.set_rollback(True)

    assert not ProjectionSummary.objects.filter(product=product).exists()


@pytest.mark.django_db
def test_pending_claim_deduplicates_until_released():
    services.projection_pending_release(product_ids=[901, 902])

    first = services.projection_pending_claim(product_ids=[901, 902])
    second = services.projection_pending_claim(product_ids=[901, 902])
    services.projection_pending_release(product_ids=[901])
    third = services.projection_pending_claim(product_ids=[901, 902])

    assert (first, second, third) == ([901, 902], [], [901])
    services.projection_pending_release(product_ids=[901, 902])


@pytest.mark.django_db
def test_recompute_reports_entering_and_leaving_the_risk_window():
    product = ProductFactory(on_hand=10)
    services.projection_recompute(product_ids=[product.pk])
    services.planned_movements_upsert(items=[line(product.code, "big", days=3, quantity=12)])

    entered = services.projection_recompute(product_ids=[product.pk])
    again = services.projection_recompute(product_ids=[product.pk])
    stock_receive(code=product.code, quantity=5)
    left = services.projection_recompute(product_ids=[product.pk])

    stockout = services.projection_today() + timedelta(days=3)
    assert entered == [services.RiskTransition(product_id=product.pk, at_risk=True, stockout_date=stockout,
                                                location_id=location_default_id())]
    assert again == []
    assert left == [services.RiskTransition(product_id=product.pk, at_risk=False, stockout_date=None,
                                             location_id=location_default_id())]


@pytest.mark.django_db
def test_stockout_beyond_the_risk_window_is_not_a_risk():
    product = ProductFactory(on_hand=10)
    services.planned_movements_upsert(items=[line(product.code, "far", days=9, quantity=12)])

    transitions = services.projection_recompute(product_ids=[product.pk])

    summary = ProjectionSummary.objects.get(product=product)
    assert summary.stockout_date == services.projection_today() + timedelta(days=9)
    assert summary.days_of_cover == 9
    assert transitions == []


@pytest.mark.django_db(transaction=True)
def test_entering_the_risk_window_publishes_an_event_to_the_stream(settings):
    settings.PROJECTION_INLINE_MAX_PRODUCTS = 5
    product = ProductFactory(code="RISK-1", name="Feijão", on_hand=4)
    layer = get_channel_layer()

    def plan_a_big_order():
        try:
            services.planned_movements_upsert(items=[line(product.code, "o-9", days=2, quantity=10)])
        finally:
            connection.close()

    async def listen():
        channel = await layer.new_channel()
        await layer.group_add(GROUP_ALL, channel)
        await asyncio.get_running_loop().run_in_executor(None, plan_a_big_order)
        try:
            while True:
                message = await asyncio.wait_for(layer.receive(channel), timeout=5)
                for _, text in message["items"]:
                    event = json.loads(text)
                    if event["type"].startswith("projection."):
                        return event
        finally:
            await layer.group_discard(GROUP_ALL, channel)

    event = asyncio.run(listen())

    stockout = (services.projection_today() + timedelta(days=2)).isoformat()
    assert {k: event[k] for k in ("type", "code", "name", "stockout_date")} == {
        "type": "projection.risk_entered", "code": "RISK-1", "name": "Feijão", "stockout_date": stockout}


@pytest.mark.django_db
def test_negative_available_is_a_stockout_today():
    product = ProductFactory(on_hand=2)
    stock_adjust(code=product.code, delta=-2, reason="broken")
    Stock.objects.filter(product=product).update(reserved=1)

    services.projection_recompute(product_ids=[product.pk])

    summary = ProjectionSummary.objects.get(product=product)
    assert (summary.start_balance, summary.stockout_date, summary.days_of_cover) == (
        -1, services.projection_today(), 0)


@pytest.mark.django_db
def test_a_stockout_day_moving_inside_the_window_is_reported_as_moved():
    product = ProductFactory(on_hand=10)
    services.planned_movements_upsert(items=[line(product.code, "o-1", days=4, quantity=12)])
    services.projection_recompute(product_ids=[product.pk])
    services.planned_movements_upsert(items=[line(product.code, "o-2", days=2, quantity=11)])

    moved = services.projection_recompute(product_ids=[product.pk])

    assert moved == [services.RiskTransition(product_id=product.pk, at_risk=True,
                                             stockout_date=services.projection_today() + timedelta(days=2),
                                             moved=True, location_id=location_default_id())]


@pytest.mark.django_db
def test_a_transition_queued_before_locations_is_read_at_the_default_location():
    stockout = services.projection_today()

    transition = services.RiskTransition.from_json([7, True, stockout.isoformat(), False])

    assert transition == services.RiskTransition(product_id=7, at_risk=True, stockout_date=stockout,
                                                 location_id=location_default_id())


@pytest.mark.django_db
def test_many_transitions_go_through_the_task_and_open_projected_alerts():
    from notifications.models import AlertState
    from projections.tasks import projection_transitions_task

    products = ProductFactory.create_batch(3, on_hand=1)
    stockout = services.projection_today() + timedelta(days=1)
    items = [services.RiskTransition(product_id=p.pk, at_risk=True, stockout_date=stockout,
                                     location_id=location_default_id()).as_json() for p in products]
    assert not AlertState.objects.filter(product__in=products).exists()

    assert projection_transitions_task(items) == 3

    states = AlertState.objects.filter(product__in=products)
    assert sorted(s.projected_stockout for s in states) == [stockout] * 3


@pytest.mark.django_db
def test_the_stock_hook_runs_no_query_while_the_row_lock_is_held(django_assert_num_queries):
    product = ProductFactory(on_hand=1)

    with transaction.atomic():
        with django_assert_num_queries(0):
            services.projection_mark_dirty(product_ids=[product.pk, product.pk])
