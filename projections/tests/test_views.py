"""Tests for the projections API: reads, ruptures, daily rows, stats, recompute, planned movements and errors."""
from datetime import timedelta

import pytest

from inventory.tests.factories import ProductFactory, UnifiedCodeFactory
from projections import services
from projections.models import PlannedMovement, PlannedStatus, ProjectionSummary
from projections.tests.factories import PlannedMovementFactory

pytestmark = pytest.mark.django_db


def today():
    return services.projection_today()


def planned(product, *, days: int, quantity: int, direction: str = "out"):
    PlannedMovementFactory(product=product, date=today() + timedelta(days=days), quantity=quantity,
                           direction=direction)


def test_detail_has_summary_and_daily_rows_through_an_alias(reader):
    product = ProductFactory(code="P001", name="Produto Exemplo", on_hand=1500)
    UnifiedCodeFactory(code="P001-OLD", product=product)
    planned(product, days=0, quantity=500)
    planned(product, days=1, quantity=300)
    planned(product, days=1, quantity=200, direction="in")

    response = reader.get("/api/v1/projections/p001-old")

    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["requested_code"], body["start_balance"], body["min_balance_7d"]) == (
        "P001", "P001-OLD", 1500, 900)
    assert body["daily"][:2] == [
        {"date": today().isoformat(), "inbound": 0, "outbound": 500, "balance": 1000, "late": False},
        {"date": (today() + timedelta(days=1)).isoformat(), "inbound": 200, "outbound": 300, "balance": 900,
         "late": False},
    ]
    assert len(body["daily"]) == 28
    assert body["computed_at"] and body["stale"] is False


def test_late_movement_counts_today_and_is_flagged(reader):
    product = ProductFactory(on_hand=10)
    planned(product, days=-3, quantity=4)

    body = reader.get(f"/api/v1/projections/{product.code}").json()

    assert body["late_movements"] == 1
    assert body["daily"][0] == {"date": today().isoformat(), "inbound": 0, "outbound": 4, "balance": 6, "late": True}


def test_daily_gives_the_chart_rows_and_threshold_and_computes_past_the_horizon(reader):
    product = ProductFactory(on_hand=10, low_stock_threshold=3)
    planned(product, days=60, quantity=4)

    short = reader.get(f"/api/v1/projections/{product.code}/daily?days=7").json()
    long = reader.get(f"/api/v1/projections/{product.code}/daily?days=90").json()

    assert (short["threshold"], len(short["days"]), short["stale"]) == (3, 7, False)
    assert set(short["days"][0]) >= {"date", "inbound", "outbound", "balance"}
    assert len(long["days"]) == 90
    assert (long["days"][59]["balance"], long["days"][60]["balance"]) == (10, 6)
    assert ProjectionSummary.objects.get(product=product).horizon_days == 28


@pytest.mark.parametrize("days", ["0", "91", "x"])
def test_daily_rejects_bad_days(reader, days):
    product = ProductFactory()

    response = reader.get(f"/api/v1/projections/{product.code}/daily?days={days}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_unknown_code_is_a_404_in_the_error_shape(reader):
    response = reader.get("/api/v1/projections/NOPE")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_code"


def test_query_many_codes_lists_unknown_ones(reader):
    a, b = ProductFactory(on_hand=5), ProductFactory(on_hand=6)

    response = reader.post("/api/v1/projections/query", {"codes": [a.code, "NOPE", b.code.lower()]}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert [(i["code"], i["start_balance"]) for i in body["items"]] == [(a.code, 5), (b.code, 6)]
    assert body["unknown"] == ["NOPE"]
    assert "computed_at" in body and body["stale"] is False


@pytest.mark.parametrize("payload", [{}, {"codes": []}, {"codes": "A"}, {"codes": ["A"] * 501}])
def test_query_rejects_bad_input(reader, payload):
    response = reader.post("/api/v1/projections/query", payload, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_ruptures_lists_soonest_first_within_the_window(reader):
    later, sooner, far, safe = (ProductFactory(on_hand=5) for _ in range(4))
    planned(later, days=5, quantity=6)
    planned(sooner, days=2, quantity=6)
    planned(far, days=20, quantity=6)
    services.projection_rebuild_all()

    week = reader.get("/api/v1/projections/ruptures?days=7").json()
    month = reader.get("/api/v1/projections/ruptures?days=28").json()

    assert [r["code"] for r in week["results"]] == [sooner.code, later.code]
    assert [r["code"] for r in month["results"]] == [sooner.code, later.code, far.code]
    assert all("computed_at" in r and "stale" in r for r in week["results"])
    assert (week["next_offset"], week["stale"]) == (None, False)


def test_ruptures_pages_by_limit_and_offset(reader):
    products = ProductFactory.create_batch(3, on_hand=1)
    for product in products:
        planned(product, days=1, quantity=2)
    services.projection_rebuild_all()

    first = reader.get("/api/v1/projections/ruptures?limit=2").json()
    rest = reader.get(f"/api/v1/projections/ruptures?limit=2&offset={first['next_offset']}").json()

    assert [r["code"] for r in first["results"] + rest["results"]] == [p.code for p in products]
    assert (first["next_offset"], rest["next_offset"]) == (2, None)


@pytest.mark.parametrize("query", ["days=0", "days=91", "limit=0", "limit=501", "offset=-1", "days=x"])
def test_ruptures_rejects_bad_parameters(reader, query):
    response = reader.get(f"/api/v1/projections/ruptures?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_stats_count_products_risk_and_stale_rows(reader):
    at_risk, fine, never = (ProductFactory(on_hand=5) for _ in range(3))
    planned(at_risk, days=1, quantity=9)
    services.projection_recompute(product_ids=[at_risk.pk, fine.pk])

    body = reader.get("/api/v1/projections/stats").json()

    assert (body["products"], body["at_risk_7d"], body["stale_rows"], body["stale"]) == (3, 1, 1, True)
    assert body["oldest_computed_at"] and body["computed_at"]


def test_recalculate_refreshes_a_stale_summary(reader):
    product = ProductFactory(on_hand=5)
    services.projection_recompute(product_ids=[product.pk])
    planned(product, days=1, quantity=2)

    response = reader.post(f"/api/v1/projections/{product.code}/recalculate")

    assert response.status_code == 200
    assert response.json()["min_balance_7d"] == 3


def test_reads_need_a_token(client):
    assert client.get("/api/v1/projections/stats").status_code in (401, 403)


def test_bulk_upserts_and_cancels_by_source_reference(manager):
    product = ProductFactory(on_hand=10)
    UnifiedCodeFactory(code="ALT-1", product=product)
    PlannedMovementFactory(product=product, source="erp", source_ref="old-1")
    payload = {
        "upsert": [{"source": "erp", "source_ref": "po-1", "code": "alt-1", "date": today().isoformat(),
                    "direction": "in", "quantity": 30, "kind": "purchase", "firmness": "tentative"}],
        "cancel": [{"source": "erp", "source_ref": "old-1"}],
    }

    response = manager.post("/api/v1/planned-movements/bulk", payload, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["cancelled"] == 1
    assert [(r["code"], r["quantity"], r["firmness"]) for r in body["upserted"]] == [(product.code, 30, "tentative")]
    assert PlannedMovement.objects.get(source_ref="old-1").status == PlannedStatus.CANCELLED


def test_bulk_reports_unknown_codes_with_their_line(manager):
    payload = {"upsert": [{"source_ref": "x", "code": "NOPE", "date": today().isoformat(), "direction": "out",
                           "quantity": 1, "kind": "order"}]}

    response = manager.post("/api/v1/planned-movements/bulk", payload, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["details"]["lines"] == [
        {"index": 0, "source_ref": "x", "errors": {"code": "unknown code"}}]
    assert PlannedMovement.objects.count() == 0


@pytest.mark.parametrize("line", [
    {"quantity": 0}, {"quantity": "lots"}, {"date": "tomorrow"}, {"direction": "up"}, {"kind": "gift"},
])
def test_bulk_rejects_bad_lines(manager, line):
    base = {"source_ref": "x", "code": "A", "date": today().isoformat(), "direction": "out", "quantity": 1,
            "kind": "order"}

    response = manager.post("/api/v1/planned-movements/bulk", {"upsert": [{**base, **line}]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_planned_movements_need_the_manage_scope(reader):
    assert reader.get("/api/v1/planned-movements").status_code == 403
    assert reader.post("/api/v1/planned-movements/bulk", {"cancel": []}, format="json").status_code == 403


def test_list_filters_and_detail_flags_late(manager):
    product = ProductFactory()
    late = PlannedMovementFactory(product=product, date=today() - timedelta(days=1))
    PlannedMovementFactory(product=product, date=today() + timedelta(days=3), status=PlannedStatus.CANCELLED)

    listed = manager.get(f"/api/v1/planned-movements?code={product.code}&status=open").json()
    detail = manager.get(f"/api/v1/planned-movements/{late.pk}").json()
    missing = manager.get("/api/v1/planned-movements/999999")

    assert [r["id"] for r in listed["results"]] == [late.pk]
    assert detail["late"] is True
    assert missing.status_code == 404
