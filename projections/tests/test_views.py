"""Tests for the projections API: reads, ruptures, daily rows, stats, recompute, planned movements and errors."""
from datetime import timedelta

import pytest
from django.db.models import F

from inventory.models import Product, Stock
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory
from projections import selectors, services
from projections.selectors import summaries, summary_is_stale
from projections.models import PlannedMovement, PlannedStatus, ProjectionSummary
from projections.serializers import PlannedMovementKeySerializer, PlannedMovementLineSerializer
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
        {"date": today().isoformat(), "inbound": 0, "outbound": 500, "balance": 1000, "late": False,
         "expected_outbound": 0.0, "balance_at_pace": 1000.0},
        {"date": (today() + timedelta(days=1)).isoformat(), "inbound": 200, "outbound": 300, "balance": 900,
         "late": False, "expected_outbound": 0.0, "balance_at_pace": 900.0},
    ]
    assert len(body["daily"]) == 28
    assert body["computed_at"] and body["stale"] is False


def test_late_movement_counts_today_and_is_flagged(reader):
    product = ProductFactory(on_hand=10)
    planned(product, days=-3, quantity=4)

    body = reader.get(f"/api/v1/projections/{product.code}").json()

    assert body["late_movements"] == 1
    assert body["daily"][0] == {"date": today().isoformat(), "inbound": 0, "outbound": 4, "balance": 6, "late": True,
                                "expected_outbound": 0.0, "balance_at_pace": 6.0}


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


def test_detail_is_one_query_for_a_code_an_alias_or_an_unknown_code(reader, django_assert_num_queries):
    product = ProductFactory(code="P001", on_hand=5)
    UnifiedCodeFactory(code="P001-OLD", product=product)
    services.projection_recompute(product_ids=[product.pk])

    # One query for the token (not cached in tests), one for the product, its stock and its summary.
    for code, status in [("P001", 200), ("p001-old", 200), ("NOPE", 404)]:
        with django_assert_num_queries(2):
            response = reader.get(f"/api/v1/projections/{code}", HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == status

    assert response.json() == {"error": {"code": "unknown_code", "message": "No product has the code NOPE.",
                                         "details": {"code": "NOPE"}}}


def test_detail_has_every_field_of_the_summary(reader):
    product = ProductFactory(code="P002", name="Outro", on_hand=3, low_stock_threshold=2)
    planned(product, days=-1, quantity=1)
    planned(product, days=2, quantity=5)
    services.projection_recompute(product_ids=[product.pk])
    summary = ProjectionSummary.objects.get(product=product)

    body = reader.get("/api/v1/projections/P002").json()

    daily = body.pop("daily")
    assert body == {
        "code": "P002", "name": "Outro", "start_balance": 3, "threshold": 2,
        "min_balance_7d": -3, "min_balance_7d_date": (today() + timedelta(days=2)).isoformat(),
        "stockout_date": (today() + timedelta(days=2)).isoformat(),
        "below_threshold_date": (today() + timedelta(days=2)).isoformat(),
        "days_of_cover": 2, "demand_rate": 0.0, "stockout_date_at_pace": (today() + timedelta(days=2)).isoformat(),
        "days_of_cover_at_pace": 2, "at_risk_7d": True, "late_movements": 1, "as_of": today().isoformat(),
        "horizon_days": 28, "source_version": summary.source_version,
        "computed_at": summary.computed_at.isoformat(), "stale": False,
    }
    assert daily[:3] == [
        {"date": today().isoformat(), "inbound": 0, "outbound": 1, "balance": 2, "late": True,
         "expected_outbound": 0.0, "balance_at_pace": 2.0},
        {"date": (today() + timedelta(days=1)).isoformat(), "inbound": 0, "outbound": 0, "balance": 2, "late": False,
         "expected_outbound": 0.0, "balance_at_pace": 2.0},
        {"date": (today() + timedelta(days=2)).isoformat(), "inbound": 0, "outbound": 5, "balance": -3,
         "late": False, "expected_outbound": 0.0, "balance_at_pace": -3.0},
    ]


@pytest.mark.parametrize("change", ["stock_version", "plan_version", "threshold", "new_day"])
def test_detail_says_stale_when_an_input_changed_since_the_recompute(reader, change):
    product = ProductFactory(on_hand=5)
    services.projection_recompute(product_ids=[product.pk])
    assert reader.get(f"/api/v1/projections/{product.code}").json()["stale"] is False
    if change == "stock_version":
        Stock.objects.filter(product=product).update(version=F("version") + 1)
    elif change == "plan_version":
        ProjectionSummary.objects.filter(product=product).update(plan_version=F("plan_version") + 1)
    elif change == "threshold":
        Product.objects.filter(pk=product.pk).update(low_stock_threshold=F("low_stock_threshold") + 1)
    else:
        ProjectionSummary.objects.filter(product=product).update(as_of=today() - timedelta(days=1))

    body = reader.get(f"/api/v1/projections/{product.code}").json()
    daily = reader.get(f"/api/v1/projections/{product.code}/daily?days=7").json()

    assert (body["stale"], daily["stale"]) == (True, True)
    assert body["stale"] is summary_is_stale(summaries().get(
        product=product))


def test_query_many_codes_lists_unknown_ones(reader):
    a, b = ProductFactory(on_hand=5), ProductFactory(on_hand=6)

    response = reader.post("/api/v1/projections/query", {"codes": [a.code, "NOPE", b.code.lower()]}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert [(i["code"], i["start_balance"]) for i in body["items"]] == [(a.code, 5), (b.code, 6)]
    assert body["unknown"] == ["NOPE"]
    assert "computed_at" in body and body["stale"] is False


def test_query_answers_in_asked_order_with_aliases_in_one_query(reader, django_assert_num_queries):
    a, b = ProductFactory(on_hand=5), ProductFactory(on_hand=6)
    UnifiedCodeFactory(code="OLD-B", product=b)
    services.projection_recompute(product_ids=[a.pk, b.pk])

    with django_assert_num_queries(2):
        body = reader.post("/api/v1/projections/query", {"codes": ["old-b", "NOPE", a.code, a.code.lower()]},
                           format="json").json()

    assert [(i["code"], i.get("requested_code")) for i in body["items"]] == [(b.code, "OLD-B"), (a.code, None)]
    assert (body["unknown"], body["stale"]) == (["NOPE"], False)


def test_query_computes_products_never_computed(reader):
    product = ProductFactory(on_hand=4)
    ProjectionSummary.objects.filter(product=product).delete()

    body = reader.post("/api/v1/projections/query", {"codes": [product.code]}, format="json").json()

    assert [(i["code"], i["start_balance"], i["stale"]) for i in body["items"]] == [(product.code, 4, False)]


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


def test_ruptures_page_is_the_bot_list_in_one_query(reader, django_assert_num_queries):
    products = ProductFactory.create_batch(4, on_hand=1)
    for n, product in enumerate(products):
        planned(product, days=3 - n % 2, quantity=2)
    Product.objects.filter(pk=products[0].pk).update(active=False)
    services.projection_rebuild_all()

    with django_assert_num_queries(2):
        body = reader.get("/api/v1/projections/ruptures?days=7").json()

    expected = [s.product.code for s in selectors.projection_out_now()]
    expected += [s.product.code for s in selectors.projection_ruptures(days=7)]
    assert [r["code"] for r in body["results"]] == expected
    assert products[0].code not in expected and len(expected) == 3


def test_ruptures_list_what_is_out_now_first_then_projected_stockouts(reader):
    projected = ProductFactory(code="SOON", on_hand=1)
    planned(projected, days=2, quantity=5)
    out_b, out_a = ProductFactory(code="OUT-B", name="Óleo", on_hand=0), ProductFactory(code="OUT-A", name="Farinha")
    ProductFactory(code="FINE", on_hand=50)
    services.projection_recompute(product_ids=[projected.pk])  # the products out now were never projected

    body = reader.get("/api/v1/projections/ruptures?days=7").json()

    assert [(r["code"], r["out_now"]) for r in body["results"]] == [
        ("OUT-A", True), ("OUT-B", True), ("SOON", False)]
    assert all(r["computed_at"] for r in body["results"]) and body["stale"] is False


def test_ruptures_pages_run_through_the_products_out_now_into_the_projected(reader):
    for code in ("OUT-1", "OUT-2", "OUT-3"):
        ProductFactory(code=code, name=code)
    projected = ProductFactory(code="SOON", on_hand=1)
    planned(projected, days=1, quantity=5)
    services.projection_rebuild_all()

    first = reader.get("/api/v1/projections/ruptures?limit=2").json()
    rest = reader.get(f"/api/v1/projections/ruptures?limit=2&offset={first['next_offset']}").json()

    assert [r["code"] for r in first["results"] + rest["results"]] == ["OUT-1", "OUT-2", "OUT-3", "SOON"]
    assert rest["next_offset"] is None


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

    response = manager.post("/api/v1/planned-movements/bulk", payload, format="json", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response.json()["error"]["details"]["lines"] == [
        {"list": "upsert", "index": 0, "source_ref": "x", "errors": {"code": "unknown code"}}]
    assert PlannedMovement.objects.count() == 0


@pytest.mark.parametrize("line, field", [
    ({"quantity": 0}, "quantity"), ({"quantity": "lots"}, "quantity"), ({"quantity": 2.5}, "quantity"),
    ({"date": "tomorrow"}, "date"), ({"direction": "up"}, "direction"), ({"kind": "gift"}, "kind"),
    ({"code": None}, "code"), ({"source_ref": ""}, "source_ref"), ({"note": "n" * 256}, "note"),
    # A misspelt key is refused, not taken as absent (which would plan at the default location).
    ({"loc": "DARK-1"}, "loc"),
])
def test_bulk_rejects_bad_lines(manager, line, field):
    ProductFactory(code="A")
    base = {"source_ref": "x", "code": "A", "date": today().isoformat(), "direction": "out", "quantity": 1,
            "kind": "order"}

    response = manager.post("/api/v1/planned-movements/bulk", {"upsert": [{**base, **line}]}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert [sorted(e["errors"]) for e in error["details"]["lines"]] == [[field]]
    assert PlannedMovement.objects.count() == 0


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


def test_bulk_reports_the_issue_example_every_bad_line_in_one_answer(manager):
    """Issue #14 item 8: line 1 quantity 0, line 2 an unknown code, line 3 a bad direction."""
    product = ProductFactory(code="P001")
    base = {"source": "erp", "code": product.code, "date": today().isoformat(), "direction": "out",
            "quantity": 5, "kind": "order"}
    payload = {"upsert": [
        {**base, "source_ref": "SO-1", "quantity": 0},
        {**base, "source_ref": "SO-2", "code": "NOPE-404"},
        {**base, "source_ref": "SO-3", "direction": "sideways"},
    ]}

    response = manager.post("/api/v1/planned-movements/bulk", payload, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert [(e["list"], e["index"], e["source_ref"], sorted(e["errors"])) for e in error["details"]["lines"]] == [
        ("upsert", 0, "SO-1", ["quantity"]), ("upsert", 1, "SO-2", ["code"]), ("upsert", 2, "SO-3", ["direction"])]
    assert PlannedMovement.objects.count() == 0


def test_the_keys_a_bulk_line_takes_are_the_fields_the_schema_documents():
    assert services.PLANNED_LINE_FIELDS == set(PlannedMovementLineSerializer().fields)
    assert services.PLANNED_KEY_FIELDS == set(PlannedMovementKeySerializer().fields)


def test_a_cancel_line_with_a_misspelt_source_is_refused_and_cancels_nothing(manager):
    product = ProductFactory()
    PlannedMovementFactory(product=product, source="manual", source_ref="ref-1")
    PlannedMovementFactory(product=product, source="erp", source_ref="ref-1")

    response = manager.post("/api/v1/planned-movements/bulk",
                            {"cancel": [{"sourse": "erp", "source_ref": "ref-1"}]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["details"]["lines"] == [
        {"list": "cancel", "index": 0, "source_ref": "ref-1", "errors": {"sourse": "campo desconhecido"}}]
    assert sorted(PlannedMovement.objects.values_list("source", "status")) == [
        ("erp", PlannedStatus.OPEN), ("manual", PlannedStatus.OPEN)]


def test_bulk_reports_bad_upsert_and_cancel_lines_together(manager):
    product = ProductFactory()
    PlannedMovementFactory(product=product, source="erp", source_ref="old-1")
    payload = {
        "upsert": ["not a line", {"source_ref": "po-1", "code": product.code, "date": today().isoformat(),
                                  "direction": "in", "quantity": 3, "kind": "purchase"}],
        "cancel": [{"source": "erp", "source_ref": "old-1"}, {"source": "erp"}],
    }

    response = manager.post("/api/v1/planned-movements/bulk", payload, format="json")

    assert response.status_code == 400
    lines = response.json()["error"]["details"]["lines"]
    assert [(e["list"], e["index"], sorted(e["errors"])) for e in lines] == [
        ("upsert", 0, ["code", "date", "direction", "kind", "quantity", "source_ref"]),
        ("cancel", 1, ["source_ref"])]
    assert lines[0]["errors"]["code"] == "required"
    assert list(PlannedMovement.objects.values_list("source_ref", "status")) == [("old-1", PlannedStatus.OPEN)]


def test_bulk_reads_whole_numbers_sent_as_text(manager):
    product = ProductFactory()
    payload = {"upsert": [{"source_ref": "po-7", "code": product.code, "date": today().isoformat(),
                           "direction": "in", "quantity": "300", "kind": "purchase"}]}

    response = manager.post("/api/v1/planned-movements/bulk", payload, format="json")

    assert response.status_code == 200
    assert PlannedMovement.objects.get().quantity == 300


def test_bulk_with_upsert_not_a_list_is_refused_in_the_error_shape(manager):
    response = manager.post("/api/v1/planned-movements/bulk", {"upsert": {"source_ref": "x"}}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "upsert" in response.json()["error"]["details"]


def _open_suggestion(*, available: int = 35):
    from projections.models import ReorderSuggestion
    from projections.tests.factories import SupplyTermsFactory, sales_history

    product = ProductFactory()
    sales_history(product, today=today(), demand=[10] * 84, opening=10_000)
    Stock.objects.filter(product=product).update(on_hand=available)
    SupplyTermsFactory(product=product)
    services.projection_recompute(product_ids=[product.pk])
    return ReorderSuggestion.objects.get(product=product)


def test_reorder_suggestions_list_the_open_ones_with_their_product(reader):
    suggestion = _open_suggestion()

    body = reader.get("/api/v1/reorder-suggestions").json()
    ordered = reader.get("/api/v1/reorder-suggestions?state=ordered").json()

    assert [(r["id"], r["code"], r["state"], r["quantity"]) for r in body["results"]] == [
        (suggestion.pk, suggestion.product.code, "open", suggestion.quantity)]
    assert ordered["results"] == []


def test_reorder_suggestions_refuse_an_unknown_state(reader):
    response = reader.get("/api/v1/reorder-suggestions?state=maybe")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_ordering_a_suggestion_through_the_api_answers_it_ordered_then_409(manager):
    suggestion = _open_suggestion()

    first = manager.post(f"/api/v1/reorder-suggestions/{suggestion.pk}/order")
    again = manager.post(f"/api/v1/reorder-suggestions/{suggestion.pk}/order", HTTP_ACCEPT_LANGUAGE="en")

    assert first.status_code == 200
    assert first.json()["state"] == "ordered"
    assert first.json()["decided_by"].startswith("client:")
    movement = PlannedMovement.objects.get(pk=first.json()["planned_movement"])
    assert (movement.quantity, movement.direction) == (suggestion.quantity, "in")
    assert again.status_code == 409
    assert again.json()["error"] == {"code": "conflict", "message": "This suggestion is already ordered.",
                                     "details": {"id": suggestion.pk, "state": "ordered"}}


def test_dismissing_needs_the_manage_scope_and_an_open_suggestion(reader, manager):
    suggestion = _open_suggestion()

    refused = reader.post(f"/api/v1/reorder-suggestions/{suggestion.pk}/dismiss")
    dismissed = manager.post(f"/api/v1/reorder-suggestions/{suggestion.pk}/dismiss")
    missing = manager.post("/api/v1/reorder-suggestions/999999/dismiss")

    assert refused.status_code == 403
    assert (dismissed.status_code, dismissed.json()["state"]) == (200, "dismissed")
    assert PlannedMovement.objects.count() == 0
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


def test_reorder_suggestions_export_as_csv(reader):
    import csv
    import io

    suggestion = _open_suggestion()

    response = reader.get("/api/v1/reorder-suggestions/export")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:5] == ["id", "code", "name", "state", "quantity"]
    assert rows[1][:5] == [str(suggestion.pk), suggestion.product.code, suggestion.product.name, "open",
                           str(suggestion.quantity)]
    assert len(rows) == 2


def test_reorder_suggestions_export_as_xlsx(reader):
    import io

    from openpyxl import load_workbook

    suggestion = _open_suggestion()

    response = reader.get("/api/v1/reorder-suggestions/export?type=xlsx")

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.values)
    assert values[0][:5] == ("id", "code", "name", "state", "quantity")
    assert values[1][:5] == (suggestion.pk, suggestion.product.code, suggestion.product.name, "open",
                             suggestion.quantity)


def test_reorder_export_keeps_a_formula_like_name_as_text(reader):
    suggestion = _open_suggestion()
    Product.objects.filter(pk=suggestion.product_id).update(name='=HYPERLINK("x")')

    body = reader.get("/api/v1/reorder-suggestions/export").content.decode()

    assert "'=HYPERLINK" in body


def test_reorder_export_refuses_an_unknown_type(reader):
    response = reader.get("/api/v1/reorder-suggestions/export?type=pdf")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_reorder_export_answers_404_for_an_unknown_code(reader):
    response = reader.get("/api/v1/reorder-suggestions/export?code=NOPE")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_code"
