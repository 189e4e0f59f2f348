"""Tests for the inventory REST API: reads, lookups, movements, product management and error shapes."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.models import Stock, StockMovement
from inventory.selectors import ledger_months_span, location_default
from inventory.services import stock_record_movement
from inventory.tests.factories import LocationFactory, ProductFactory, UnifiedCodeFactory, stock_at_location

pytestmark = pytest.mark.django_db


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_list_filters_by_category_and_level(reader):
    ProductFactory(code="A-1", category="bebidas", on_hand=50)
    ProductFactory(code="A-2", category="bebidas", on_hand=2)
    ProductFactory(code="B-1", category="limpeza")

    below = reader.get("/api/v1/stock/", {"below_threshold": "true"}).json()
    out = reader.get("/api/v1/stock/", {"out_of_stock": "true"}).json()
    drinks = reader.get("/api/v1/stock/", {"category": "BEBIDAS"}).json()

    assert [r["code"] for r in below["results"]] == ["A-2", "B-1"]
    assert [r["code"] for r in out["results"]] == ["B-1"]
    assert drinks["count"] == 2


def test_list_search_finds_by_alias(reader):
    UnifiedCodeFactory(code="7890001", product=ProductFactory(code="CAFE-1", name="Café"))
    ProductFactory(code="OTHER")

    body = reader.get("/api/v1/stock/", {"search": "78900"}).json()

    assert [r["code"] for r in body["results"]] == ["CAFE-1"]


@pytest.mark.parametrize("term, name", [("cafe", "Café torrado 500g"), ("feijao", "Feijão carioca"),
                                        ("pao", "Pão francês")])
def test_list_search_finds_names_without_their_accents(reader, term, name):
    ProductFactory(code="HIT", name=name)
    ProductFactory(code="MISS", name="Detergente neutro")

    body = reader.get("/api/v1/stock/", {"search": term}).json()

    assert [r["name"] for r in body["results"]] == [name]


def test_list_search_puts_the_best_match_first_then_pages(reader):
    ProductFactory(code="A-1", name="Cafeteira")
    ProductFactory(code="A-2", name="Café torrado e moído 500g")
    ProductFactory(code="A-3", name="Café")

    body = reader.get("/api/v1/stock/", {"search": "cafe", "page_size": 2}).json()

    assert body["count"] == 3 and [r["code"] for r in body["results"]] == ["A-3", "A-2"]


def test_estoque_route_serves_the_same_list(reader):
    ProductFactory(code="A-1", on_hand=3)

    assert reader.get("/estoque").json() == reader.get("/api/v1/stock/").json()


def test_detail_by_alias_reports_asked_and_canonical_code(reader):
    UnifiedCodeFactory(code="OLD-9", product=ProductFactory(code="NEW-9", on_hand=4))

    body = reader.get("/api/v1/stock/old-9/").json()

    assert (body["requested_code"], body["canonical_code"], body["on_hand"], body["available"]) == (
        "OLD-9", "NEW-9", 4, 4)
    assert body["version"] == 1


def test_detail_unknown_code_is_404_in_error_shape(reader):
    assert_error_shape(reader.get("/api/v1/stock/NOPE/"), 404, "unknown_code")


def test_lookup_resolves_aliases_reports_unknown_in_constant_queries(reader, django_assert_max_num_queries):
    products = [ProductFactory(code=f"L-{i}", on_hand=i) for i in range(30)]
    UnifiedCodeFactory(code="ALIAS-L-1", product=products[1])
    codes = [p.code for p in products] + ["alias-l-1", "MISSING"]

    # auth + throttle-free path: client lookup, codes, aliases, stocks.
    with django_assert_max_num_queries(5):
        body = reader.post("/api/v1/stock/lookup", {"codes": codes}, format="json").json()

    assert len(body["items"]) == 31
    assert body["unknown"] == ["MISSING"]
    alias_item = next(i for i in body["items"] if i["requested_code"] == "ALIAS-L-1")
    assert (alias_item["canonical_code"], alias_item["on_hand"]) == ("L-1", 1)


@pytest.mark.parametrize("payload", [{}, {"codes": []}, {"codes": "A"}, {"codes": ["x"] * 501}])
def test_lookup_rejects_bad_bodies(reader, payload):
    assert_error_shape(reader.post("/api/v1/stock/lookup", payload, format="json"), 400, "invalid")


def test_snapshot_has_server_time_versions_and_filters(reader):
    UnifiedCodeFactory(code="S-OLD", product=ProductFactory(code="S-1", on_hand=1))
    ProductFactory(code="S-2", on_hand=2)

    body = reader.get("/api/v1/stock/snapshot", {"codes": "s-old,UNKNOWN"}).json()

    assert body["server_time"]
    assert [(i["code"], i["version"]) for i in body["items"]] == [("S-1", 1)]
    assert body["unknown"] == ["UNKNOWN"]


def test_snapshot_search_is_the_dashboards_search_box(reader):
    ProductFactory(code="A-1", name="Pãozinho de queijo")
    ProductFactory(code="B-1", name="Pão francês")
    ProductFactory(code="C-1", name="Leite")

    body = reader.get("/api/v1/stock/snapshot", {"search": "pao"}).json()

    assert [i["code"] for i in body["items"]] == ["B-1", "A-1"]


def test_snapshot_rejects_a_search_longer_than_a_search_box_sends(reader):
    assert_error_shape(reader.get("/api/v1/stock/snapshot", {"search": "x" * 101}), 400, "invalid")


def test_receipt_through_alias_updates_canonical_and_returns_movement(manager):
    product = ProductFactory(code="R-1", on_hand=1)
    UnifiedCodeFactory(code="R-OLD", product=product)

    response = manager.post("/api/v1/stock/R-OLD/movements",
                            {"kind": "receipt", "quantity": 5, "reason": "truck"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["stock"]["on_hand"], body["movement"]["quantity"], body["movement"]["code"]) == (6, 5, "R-1")
    assert body["movement"]["actor"].startswith("client:")
    assert Stock.objects.get(product=product).on_hand == 6


def test_count_and_adjustment_through_the_api(manager):
    product = ProductFactory(code="C-1", on_hand=10)

    manager.post("/api/v1/stock/C-1/movements", {"kind": "count", "quantity": 7, "reason": "count"}, format="json")
    manager.post("/api/v1/stock/C-1/movements", {"kind": "adjustment", "quantity": -2, "reason": "broken"},
                 format="json")

    assert Stock.objects.get(product=product).on_hand == 5
    ledger = manager.get("/api/v1/stock/C-1/movements").json()["results"]
    assert [(m["kind"], m["quantity"], m["on_hand_after"]) for m in ledger] == [
        ("adjustment", -2, 5), ("count", -3, 7), ("receipt", 10, 10)]


@pytest.mark.parametrize("query", ["", "?location=all"])
def test_the_movements_page_costs_the_same_queries_whatever_its_rows(manager, query):
    product = ProductFactory(code="L-1", on_hand=10)

    def page_queries(rows: int) -> tuple[int, int]:
        while StockMovement.objects.filter(product=product).count() < rows:
            stock_record_movement(code="L-1", kind="receipt", quantity=1)
        with CaptureQueriesContext(connection) as captured:
            listed = manager.get(f"/api/v1/stock/L-1/movements{query}").json()["results"]
        assert {(m["code"], m["location"]) for m in listed} == {("L-1", location_default().code)}
        return len(listed), len(captured.captured_queries)

    ledger_months_span()  # read once per process every few minutes, not per page
    (few, few_queries), (many, many_queries) = page_queries(2), page_queries(30)

    assert (few, many) == (2, 30)
    assert many_queries == few_queries


def test_the_movements_page_counts_from_the_stock_rows_and_pages_through_every_row(manager):
    from reservations.services import reservation_confirm
    from reservations.tests.factories import reservation_make

    product = ProductFactory(code="PAGED-1", on_hand=10)
    store_b = LocationFactory(code="LOJA-B")
    stock_at_location(product, store_b, on_hand=4)
    for quantity in (1, 2, 3):
        stock_record_movement(code="PAGED-1", kind="receipt", quantity=quantity)
    held = reservation_make(lines=[{"code": "PAGED-1", "quantity": 2}])
    counted_before_sale = Stock.objects.get(product=product, location=location_default()).movement_count
    reservation_confirm(reservation_id=held.pk, client=None)  # held: no ledger row; sold: one

    stock = Stock.objects.get(product=product, location=location_default())
    assert (counted_before_sale, stock.movement_count) == (4, 5)
    assert stock.movement_count == StockMovement.objects.filter(product=product, location=location_default()).count()
    pages, url = [], "/api/v1/stock/PAGED-1/movements?page_size=2"
    while url:
        body = manager.get(url).json()
        pages.append(body)
        url = body["next"]
    every = manager.get("/api/v1/stock/PAGED-1/movements?location=all&page_size=100").json()
    at_b = manager.get("/api/v1/stock/PAGED-1/movements?location=LOJA-B").json()

    assert [page["count"] for page in pages] == [5, 5, 5]
    assert all(type(page["count"]) is int for page in pages)  # a whole number in JSON, never 5.0
    assert [row["quantity"] for page in pages for row in page["results"]] == [-2, 3, 2, 1, 10]
    assert (every["count"], len(every["results"])) == (6, 6)
    assert (at_b["count"], [row["quantity"] for row in at_b["results"]]) == (1, [4])


@pytest.mark.parametrize(
    "payload, status, code",
    [
        ({"kind": "receipt", "quantity": 0}, 400, "invalid"),
        ({"kind": "receipt", "quantity": -4}, 400, "invalid"),
        ({"kind": "receipt", "quantity": 10**12}, 400, "invalid"),
        ({"kind": "receipt", "quantity": 1.5}, 400, "invalid"),
        ({"kind": "receipt", "quantity": "abc"}, 400, "invalid"),
        ({"kind": "receipt"}, 400, "invalid"),
        ({"kind": "teleport", "quantity": 1}, 400, "invalid"),
        ({"kind": "adjustment", "quantity": -1}, 400, "invalid"),
        ({"kind": "adjustment", "quantity": -50, "reason": "lost"}, 409, "conflict"),
    ],
)
def test_bad_movements_are_4xx_in_error_shape_and_change_nothing(manager, payload, status, code):
    product = ProductFactory(code="BAD-1", on_hand=3)

    response = manager.post("/api/v1/stock/BAD-1/movements", payload, format="json")

    assert_error_shape(response, status, code)
    assert Stock.objects.get(product=product).on_hand == 3
    assert StockMovement.objects.filter(product=product).count() == 1


def test_malformed_json_is_400(manager):
    ProductFactory(code="J-1")
    response = manager.post("/api/v1/stock/J-1/movements", data="{bad", content_type="application/json")
    assert_error_shape(response, 400, "malformed_request")


def test_wrong_media_type_is_415(manager):
    ProductFactory(code="J-2")
    response = manager.post("/api/v1/stock/J-2/movements", data="kind=receipt", content_type="text/plain")
    assert_error_shape(response, 415, "unsupported_media_type")


def test_movement_on_unknown_code_is_404(manager):
    response = manager.post("/api/v1/stock/NOPE/movements", {"kind": "receipt", "quantity": 1}, format="json")
    assert_error_shape(response, 404, "unknown_code")


def test_product_create_with_aliases_then_update(manager):
    created = manager.post("/api/v1/products", {"code": " new-1 ", "name": "Novo", "category": "bebidas",
                                                "aliases": ["old-1"]}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["code"] == "NEW-1"

    updated = manager.patch("/api/v1/products/OLD-1", {"low_stock_threshold": 9}, format="json")

    assert updated.json()["threshold"] == 9
    assert updated.json()["canonical_code"] == "NEW-1"


def test_a_misspelt_key_in_a_product_update_is_refused_and_changes_nothing(manager):
    product = ProductFactory(code="UPD-1", low_stock_threshold=3)

    response = manager.patch("/api/v1/products/UPD-1", {"threshold": 9, "name": "Outro"}, format="json")

    assert_error_shape(response, 400, "invalid")
    assert response.json()["error"]["details"]["unknown_fields"] == ["threshold"]
    assert "low_stock_threshold" in response.json()["error"]["details"]["allowed"]
    product.refresh_from_db()
    assert (product.low_stock_threshold, product.name) == (3, product.name) and product.name != "Outro"


def test_a_misspelt_location_in_a_stock_movement_is_refused_and_writes_nothing(manager):
    product = ProductFactory(code="UPD-2", on_hand=5)
    ledger_before = StockMovement.objects.filter(product=product).count()

    response = manager.post("/api/v1/stock/UPD-2/movements", {"kind": "receipt", "quantity": 3, "loc": "DARK-1"},
                            format="json")

    assert_error_shape(response, 400, "invalid")
    assert response.json()["error"]["details"]["unknown_fields"] == ["loc"]
    assert Stock.objects.get(product=product, location=location_default()).on_hand == 5
    assert StockMovement.objects.filter(product=product).count() == ledger_before


def test_product_create_refuses_a_code_that_is_an_alias(manager):
    UnifiedCodeFactory(code="TAKEN")
    response = manager.post("/api/v1/products", {"code": "taken", "name": "x"}, format="json")
    assert_error_shape(response, 409, "conflict")


def test_unified_code_create_points_at_canonical_even_when_asked_by_alias(manager):
    UnifiedCodeFactory(code="U-OLD", product=ProductFactory(code="U-1"))

    response = manager.post("/api/v1/products/U-OLD/unified-codes", {"code": "u-older"}, format="json")

    assert response.json() == {"code": "U-OLDER", "product_code": "U-1"}


def test_snapshot_with_projection_fields_has_stockout_day_and_7_day_minimum(reader):
    from projections.services import projection_recompute, projection_today
    from projections.tests.factories import PlannedMovementFactory

    planned = ProductFactory(code="P-PLAN", on_hand=10)
    ProductFactory(code="P-NONE", on_hand=4)  # no summary computed: both fields null
    stockout = projection_today() + timedelta(days=3)
    PlannedMovementFactory(product=planned, date=stockout, quantity=15)
    projection_recompute(product_ids=[planned.pk])

    plain = reader.get("/api/v1/stock/snapshot").json()
    body = reader.get("/api/v1/stock/snapshot", {"fields": "projection"}).json()

    assert "stockout_date" not in plain["items"][0]  # other clients' answer is unchanged
    assert [(i["code"], i["stockout_date"], i["min_balance_7d"]) for i in body["items"]] == [
        ("P-NONE", None, None), ("P-PLAN", stockout.isoformat(), -5)]


def test_snapshot_rejects_an_unknown_field_set(reader):
    assert_error_shape(reader.get("/api/v1/stock/snapshot", {"fields": "everything"}), 400, "invalid")
