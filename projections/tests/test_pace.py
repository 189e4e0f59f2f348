"""Tests for the projection blended with expected demand: expected outbound, stockout day at pace, ruptures basis."""
from datetime import date, timedelta

import pytest

from inventory.models import Stock
from inventory.tests.factories import ProductFactory
from notifications.models import AlertState
from projections import services
from projections.models import ProjectionSummary
from projections.tests.factories import PlannedMovementFactory, sales_history

TODAY = date(2026, 3, 10)
HISTORY = [10] * 84  # ten a day, every day, for the window and the backtest


def selling(*, available: int, today: date = TODAY, **fields):
    """A product that sold ten a day until yesterday and has ``available`` units now."""
    product = ProductFactory(**fields)
    sales_history(product, today=today, demand=HISTORY, opening=10_000)
    Stock.objects.filter(product=product).update(on_hand=available)
    return product


@pytest.mark.django_db
def test_expected_demand_gives_a_stockout_day_at_pace_and_leaves_the_planned_one_alone():
    product = selling(available=35)

    services.projection_recompute(product_ids=[product.pk], today=TODAY)

    summary = ProjectionSummary.objects.get(product=product)
    assert (summary.stockout_date, summary.days_of_cover, summary.daily_outbound[:4]) == (None, None, [0] * 4)
    assert summary.daily_balance[:4] == [35] * 4
    assert summary.demand_rate == pytest.approx(10.0)
    assert summary.daily_expected_outbound[:4] == [10.0] * 4
    assert summary.daily_balance_at_pace[:4] == [25.0, 15.0, 5.0, -5.0]
    assert (summary.stockout_date_at_pace, summary.days_of_cover_at_pace) == (TODAY + timedelta(days=3), 3)


@pytest.mark.django_db
def test_planned_outbound_is_part_of_the_expected_demand_not_added_to_it():
    product = selling(available=100)
    PlannedMovementFactory(product=product, date=TODAY, quantity=4)
    PlannedMovementFactory(product=product, date=TODAY + timedelta(days=1), quantity=15)

    services.projection_recompute(product_ids=[product.pk], today=TODAY)

    summary = ProjectionSummary.objects.get(product=product)
    assert summary.daily_outbound[:3] == [4, 15, 0]
    assert summary.daily_expected_outbound[:3] == [6.0, 0.0, 10.0]
    assert summary.daily_balance_at_pace[:3] == [90.0, 75.0, 65.0]


@pytest.mark.django_db
def test_the_projected_stockout_alert_follows_the_pace(django_capture_on_commit_callbacks):
    product = selling(available=35)
    assert not AlertState.objects.filter(product=product, projected_stockout__isnull=False).exists()

    with django_capture_on_commit_callbacks(execute=True):
        transitions = services.projection_recompute(product_ids=[product.pk], today=TODAY)

    assert [(t.at_risk, t.stockout_date) for t in transitions] == [(True, TODAY + timedelta(days=3))]
    assert AlertState.objects.get(product=product).projected_stockout == TODAY + timedelta(days=3)


@pytest.mark.django_db
def test_today_counts_only_the_part_of_the_day_still_ahead():
    today = services.projection_today()
    product = selling(available=1_000, today=today)

    services.projection_recompute(product_ids=[product.pk])

    expected = ProjectionSummary.objects.get(product=product).daily_expected_outbound
    assert 0.0 <= expected[0] <= 10.0
    assert expected[1:3] == [10.0, 10.0]


@pytest.mark.django_db
def test_ruptures_by_pace_list_what_the_planned_basis_does_not(reader):
    today = services.projection_today()
    product = selling(available=25, today=today)
    services.projection_recompute(product_ids=[product.pk])

    planned = reader.get("/api/v1/projections/ruptures?days=7").json()
    pace = reader.get("/api/v1/projections/ruptures?days=7&basis=pace").json()
    detail = reader.get(f"/api/v1/projections/{product.code}").json()

    assert (planned["basis"], [r["code"] for r in planned["results"]]) == ("planned", [])
    assert (pace["basis"], [r["code"] for r in pace["results"]]) == ("pace", [product.code])
    assert detail["stockout_date"] is None
    assert detail["stockout_date_at_pace"] in {(today + timedelta(days=n)).isoformat() for n in (2, 3)}
    assert detail["daily"][1]["expected_outbound"] == 10.0


@pytest.mark.django_db
def test_ruptures_refuse_an_unknown_basis(reader):
    response = reader.get("/api/v1/projections/ruptures?basis=hope")

    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid"
    assert "basis" in body["details"]
