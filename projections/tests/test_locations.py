"""Tests for projections per location: recompute, transfers in transit, reorder suggestions, dirty marks and the
routes' ``location`` parameter."""
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from core.tests.factories import ApiClientFactory
from inventory.selectors import location_default_id
from inventory.services import stock_receive, transfer_create
from inventory.tests.factories import LocationFactory, ProductFactory, staff_at, stock_at_location, stores_stocking
from projections import services
from projections.models import DemandEstimate, PlannedMovement, ProjectionSummary, ReorderState, ReorderSuggestion
from projections.tests.factories import PlannedMovementFactory, SupplyTermsFactory

pytestmark = pytest.mark.django_db


def today():
    return services.projection_today()


@pytest.fixture
def store_b():
    return LocationFactory(code="LOJA-B", name="Loja B")


def planned(product, location, *, days: int, quantity: int, direction: str = "out", firmness: str = "firm"):
    PlannedMovementFactory(product=product, location_id=location.pk if location else location_default_id(),
                           date=today() + timedelta(days=days), quantity=quantity, direction=direction,
                           firmness=firmness)


def summary(product, location=None) -> ProjectionSummary:
    location_id = location.pk if location else location_default_id()
    return ProjectionSummary.objects.get(product=product, location_id=location_id)


def limited_client(*codes: str, scopes=("read", "manage")) -> APIClient:
    record = ApiClientFactory(scopes=list(scopes), location_codes=list(codes))
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {record.raw_token}")
    return http


def test_each_location_is_projected_from_its_own_stock_and_planned_movements(store_b):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, store_b, on_hand=4)
    planned(product, None, days=5, quantity=12)
    planned(product, store_b, days=2, quantity=5)

    services.projection_recompute(product_ids=[product.pk])
    services.projection_recompute(product_ids=[product.pk], location_id=store_b.pk)

    here, there = summary(product), summary(product, store_b)
    assert (here.start_balance, here.stockout_date, here.daily_outbound[5]) == (10, today() + timedelta(days=5), 12)
    assert (there.start_balance, there.stockout_date, there.daily_outbound[2]) == (4, today() + timedelta(days=2), 5)
    assert ProjectionSummary.objects.filter(product=product).count() == 2


def test_recomputing_one_location_leaves_the_other_untouched(store_b):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, store_b, on_hand=4)
    services.projection_recompute(product_ids=[product.pk])
    before = summary(product)

    services.projection_recompute(product_ids=[product.pk], location_id=store_b.pk)

    after = summary(product)
    assert (after.computed_at, after.source_version) == (before.computed_at, before.source_version)
    assert summary(product, store_b).start_balance == 4


def test_a_transfer_in_transit_is_planned_inbound_at_the_destination_only(store_b):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, store_b, on_hand=1)
    planned(product, store_b, days=1, quantity=3)
    services.projection_recompute(product_ids=[product.pk], location_id=store_b.pk)
    assert summary(product, store_b).stockout_date == today() + timedelta(days=1)

    transfer_create(code=product.code, source=location_default_id_code(), destination="LOJA-B", quantity=6,
                    in_transit=True, expected_on=today() + timedelta(days=1))
    services.projection_recompute(product_ids=[product.pk])
    services.projection_recompute(product_ids=[product.pk], location_id=store_b.pk)

    there, here = summary(product, store_b), summary(product)
    assert (there.daily_inbound[1], there.daily_balance[1], there.stockout_date) == (6, 4, None)
    assert (here.start_balance, sum(here.daily_inbound)) == (4, 0)


def location_default_id_code() -> str:
    from inventory.selectors import location_default

    return location_default().code


def test_a_stock_change_at_a_location_recomputes_that_location(store_b, settings):
    settings.PROJECTION_INLINE_MAX_PRODUCTS = 5
    product = ProductFactory(on_hand=10)
    stock_at_location(product, store_b, on_hand=0)
    services.projection_recompute(product_ids=[product.pk])
    default_before = summary(product).computed_at

    with django_capture_on_commit():
        stock_receive(code=product.code, quantity=7, location="LOJA-B")

    assert summary(product, store_b).start_balance == 7
    assert summary(product).computed_at == default_before


def django_capture_on_commit():
    """Run on_commit callbacks of the block at its end, as a real commit would (pytest-django's helper)."""
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


def test_the_fallback_creates_and_computes_a_row_per_product_and_location(store_b):
    product = ProductFactory(on_hand=3)
    stock_at_location(product, store_b, on_hand=9)

    taken = services.projection_fallback_run(batch=10)

    assert sorted(taken) == sorted([(product.pk, location_default_id()), (product.pk, store_b.pk)])
    assert (summary(product).start_balance, summary(product, store_b).start_balance) == (3, 9)


def test_a_planned_movement_change_marks_only_its_location_dirty(store_b):
    product = ProductFactory(on_hand=3)
    stock_at_location(product, store_b, on_hand=9)
    services.projection_recompute(product_ids=[product.pk])
    services.projection_recompute(product_ids=[product.pk], location_id=store_b.pk)
    versions = (summary(product).plan_version, summary(product, store_b).plan_version)

    services.planned_movements_upsert(items=[services.PlannedMovementInput(
        source_ref="po-b", code=product.code, date=today() + timedelta(days=2), direction="in", quantity=5,
        kind="purchase", location="LOJA-B")])

    assert (summary(product).plan_version, summary(product, store_b).plan_version) == (versions[0], versions[1] + 1)


def test_each_location_gets_its_own_reorder_suggestion(store_b):
    product = ProductFactory(on_hand=100)
    stock_at_location(product, store_b, on_hand=2)
    SupplyTermsFactory(product=product, lead_time_days=3, pack_size=10)
    planned(product, store_b, days=1, quantity=20)
    planned(product, None, days=1, quantity=20)

    services.projection_recompute(product_ids=[product.pk])
    services.projection_recompute(product_ids=[product.pk], location_id=store_b.pk)

    suggestions = list(ReorderSuggestion.objects.filter(product=product, state=ReorderState.OPEN))
    assert [(s.location_id, s.available, s.quantity) for s in suggestions] == [(store_b.pk, 2, 20)]

    ordered = services.reorder_suggestions_order(ids=[suggestions[0].pk])

    purchase = PlannedMovement.objects.get(pk=ordered[0].planned_movement_id)
    assert (purchase.location_id, purchase.quantity, purchase.direction) == (store_b.pk, 20, "in")


def test_demand_is_estimated_per_location(store_b):
    product = ProductFactory(on_hand=5)
    stock_at_location(product, store_b, on_hand=5)

    services.demand_recompute(product_ids=[product.pk])
    services.demand_recompute(product_ids=[product.pk], location_id=store_b.pk)

    assert sorted(DemandEstimate.objects.filter(product=product).values_list("location_id", flat=True)) == sorted(
        [location_default_id(), store_b.pk])


# --------------------------------------------------------------------------------------- routes


def test_routes_without_location_answer_for_the_default_location_as_before(reader, store_b):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, store_b, on_hand=4)

    body = reader.get(f"/api/v1/projections/{product.code}").json()

    assert body["start_balance"] == 10
    assert "location" not in body


def test_routes_read_the_location_named(reader, store_b):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, store_b, on_hand=4)
    planned(product, store_b, days=2, quantity=5)

    detail = reader.get(f"/api/v1/projections/{product.code}?location=loja-b").json()
    daily = reader.get(f"/api/v1/projections/{product.code}/daily?location=LOJA-B&days=3").json()
    many = reader.post("/api/v1/projections/query", {"codes": [product.code], "location": "LOJA-B"},
                       format="json").json()
    ruptures = reader.get("/api/v1/projections/ruptures?location=LOJA-B").json()
    stats = reader.get("/api/v1/projections/stats?location=LOJA-B").json()
    default_ruptures = reader.get("/api/v1/projections/ruptures").json()

    stockout = (today() + timedelta(days=2)).isoformat()
    assert (detail["location"], detail["start_balance"], detail["stockout_date"]) == ("LOJA-B", 4, stockout)
    assert [row["balance"] for row in daily["days"]] == [4, 4, -1]
    assert (many["location"], [i["start_balance"] for i in many["items"]]) == ("LOJA-B", [4])
    assert [(r["code"], r["stockout_date"]) for r in ruptures["results"]] == [(product.code, stockout)]
    assert (stats["location"], stats["at_risk_7d"]) == ("LOJA-B", 1)
    assert default_ruptures["results"] == []


def test_recalculate_recomputes_the_location_named(reader, store_b):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, store_b, on_hand=4)

    body = reader.post(f"/api/v1/projections/{product.code}/recalculate?location=LOJA-B").json()

    assert (body["location"], body["start_balance"]) == ("LOJA-B", 4)
    assert not ProjectionSummary.objects.filter(product=product, location_id=location_default_id()).exists()


def test_an_unknown_location_is_a_400(reader):
    product = ProductFactory(on_hand=1)

    response = reader.get(f"/api/v1/projections/{product.code}?location=NOWHERE")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_location"


def test_a_client_limited_to_a_location_reads_only_there(store_b):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, store_b, on_hand=4)
    http = limited_client("LOJA-B")

    own = http.get(f"/api/v1/projections/{product.code}?location=LOJA-B")
    omitted = http.get(f"/api/v1/projections/{product.code}")
    other = http.get("/api/v1/projections/ruptures?location=" + location_default_id_code())
    reorder = http.get("/api/v1/reorder-suggestions")

    assert own.status_code == 200 and own.json()["start_balance"] == 4
    assert [r.status_code for r in (omitted, other, reorder)] == [403, 403, 403]
    assert {r.json()["error"]["code"] for r in (omitted, other, reorder)} == {"location_forbidden"}


def test_a_limited_client_may_not_plan_or_decide_at_another_location(store_b):
    product = ProductFactory(on_hand=10)
    suggestion = ReorderSuggestion.objects.create(
        product=product, quantity=12, demand=1, safety_stock=0, available=0, firm_inbound=0, cover_days=7,
        arrival_date=today())
    http = limited_client("LOJA-B")

    plan = http.post("/api/v1/planned-movements/bulk", {"upsert": [
        {"source_ref": "x-1", "code": product.code, "date": today().isoformat(), "direction": "in",
         "quantity": 1, "kind": "purchase"}]}, format="json")
    dismiss = http.post(f"/api/v1/reorder-suggestions/{suggestion.pk}/dismiss")

    assert (plan.status_code, dismiss.status_code) == (403, 403)
    assert not PlannedMovement.objects.filter(source_ref="x-1").exists()
    suggestion.refresh_from_db()
    assert suggestion.state == ReorderState.OPEN


def test_reorder_suggestions_list_by_location(reader, store_b):
    product = ProductFactory(on_hand=10)
    stock_at_location(product, store_b, on_hand=0)
    common = {"quantity": 12, "demand": 1, "safety_stock": 0, "available": 0, "firm_inbound": 0, "cover_days": 7,
              "arrival_date": today()}
    ReorderSuggestion.objects.create(product=product, **common)
    ReorderSuggestion.objects.create(product=product, location=store_b, **{**common, "quantity": 24})

    default = reader.get("/api/v1/reorder-suggestions").json()["results"]
    there = reader.get("/api/v1/reorder-suggestions?location=LOJA-B").json()["results"]

    assert [(r["quantity"], "location" in r) for r in default] == [(12, False)]
    assert [(r["quantity"], r["location"]) for r in there] == [(24, "LOJA-B")]


def test_planned_movements_list_by_location_and_a_limited_client_sees_only_its_own(manager, store_b):
    product = ProductFactory(on_hand=10)
    planned(product, None, days=1, quantity=3)
    planned(product, store_b, days=1, quantity=4)
    at_default = PlannedMovement.objects.get(product=product, location_id=location_default_id())
    http = limited_client("LOJA-B")

    at_default_only = manager.get("/api/v1/planned-movements").json()["results"]
    everything = manager.get("/api/v1/planned-movements?location=all").json()["results"]
    there = manager.get("/api/v1/planned-movements?location=LOJA-B").json()["results"]
    limited = http.get("/api/v1/planned-movements?location=all").json()["results"]
    limited_omitting = http.get("/api/v1/planned-movements")
    other = http.get(f"/api/v1/planned-movements/{at_default.pk}")

    assert [r["id"] for r in at_default_only] == [at_default.pk]
    assert sorted(r["quantity"] for r in everything) == [3, 4]
    assert [(r["quantity"], r["location"]) for r in there] == [(4, "LOJA-B")]
    assert [r["quantity"] for r in limited] == [4]
    for refused in (limited_omitting, other):
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "location_forbidden")


@pytest.fixture
def staff_of_store_a(client):
    """A session of staff listed at LOJA-A only, and the two stores (LOJA-A, LOJA-B), each with ARROZ."""
    stores = stores_stocking("ARROZ")
    client.force_login(staff_at(stores[0]))
    return client, stores


def test_limited_staff_read_projections_only_at_their_location(staff_of_store_a):
    http, _stores = staff_of_store_a

    own = http.get("/api/v1/projections/ARROZ?location=LOJA-A")
    elsewhere = http.get("/api/v1/projections/ARROZ?location=LOJA-B")
    omitted = http.get("/api/v1/projections/ARROZ")

    assert own.status_code == 200, own.content
    assert (own.json()["location"], own.json()["start_balance"]) == ("LOJA-A", 5)
    assert [r.status_code for r in (elsewhere, omitted)] == [403, 403]
    assert {r.json()["error"]["code"] for r in (elsewhere, omitted)} == {"location_forbidden"}


def test_limited_staff_plan_only_at_their_location(staff_of_store_a):
    http, (store_a, store_b) = staff_of_store_a
    product = ProductFactory._meta.model.objects.get(code="ARROZ")
    line = {"code": "ARROZ", "date": today().isoformat(), "direction": "in", "quantity": 1, "kind": "purchase"}
    PlannedMovementFactory(product=product, location_id=store_b.pk, source="erp", source_ref="b-1")
    assert not PlannedMovement.objects.filter(source_ref__in=["a-1", "b-2"]).exists()

    own = http.post("/api/v1/planned-movements/bulk", {"upsert": [{**line, "source_ref": "a-1", "location": "LOJA-A"}]},
                    content_type="application/json")
    plan = http.post("/api/v1/planned-movements/bulk", {"upsert": [{**line, "source_ref": "b-2", "location": "LOJA-B"}]},
                     content_type="application/json")
    cancel = http.post("/api/v1/planned-movements/bulk", {"cancel": [{"source": "erp", "source_ref": "b-1"}]},
                       content_type="application/json")
    listed = http.get("/api/v1/planned-movements?location=all").json()["results"]
    there = http.get("/api/v1/planned-movements?location=LOJA-B")
    detail = http.get(f"/api/v1/planned-movements/{PlannedMovement.objects.get(source_ref='b-1').pk}")

    assert own.status_code == 200, own.content
    assert [r.status_code for r in (plan, cancel, there, detail)] == [403, 403, 403, 403]
    assert {r.json()["error"]["code"] for r in (plan, cancel, there, detail)} == {"location_forbidden"}
    assert [(r["source_ref"], r["location"]) for r in listed] == [("a-1", "LOJA-A")]
    assert not PlannedMovement.objects.filter(source_ref="b-2").exists()
    assert PlannedMovement.objects.get(source_ref="b-1").status != "cancelled"
    assert PlannedMovement.objects.get(source_ref="a-1").location_id == store_a.pk


def test_limited_staff_decide_reorder_suggestions_only_at_their_location(staff_of_store_a):
    http, (store_a, store_b) = staff_of_store_a
    product = ProductFactory._meta.model.objects.get(code="ARROZ")
    common = {"product": product, "quantity": 12, "demand": 1, "safety_stock": 0, "available": 0, "firm_inbound": 0,
              "cover_days": 7, "arrival_date": today()}
    own = ReorderSuggestion.objects.create(location=store_a, **common)
    other = ReorderSuggestion.objects.create(location=store_b, **common)

    refused = [http.post(f"/api/v1/reorder-suggestions/{other.pk}/{action}") for action in ("order", "dismiss")]
    listed = http.get("/api/v1/reorder-suggestions?location=LOJA-B")
    dismissed = http.post(f"/api/v1/reorder-suggestions/{own.pk}/dismiss")

    assert [r.status_code for r in (*refused, listed)] == [403, 403, 403]
    assert {r.json()["error"]["code"] for r in (*refused, listed)} == {"location_forbidden"}
    other.refresh_from_db()
    own.refresh_from_db()
    assert (other.state, own.state) == (ReorderState.OPEN, ReorderState.DISMISSED)
    assert dismissed.status_code == 200, dismissed.content
    assert not PlannedMovement.objects.filter(location=store_b, source="reorder").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_recomputes_at_two_locations_each_keep_their_own_row_and_suggestion():
    import threading

    from django.db import connection

    store = LocationFactory(code="LOJA-C", name="Loja C")
    product = ProductFactory(on_hand=1)
    stock_at_location(product, store, on_hand=2)
    SupplyTermsFactory(product=product, lead_time_days=3, pack_size=10)
    planned(product, None, days=1, quantity=20)
    planned(product, store, days=1, quantity=30)
    start, errors = threading.Barrier(4), []

    def recompute(location_id):
        try:
            start.wait(10)
            services.projection_recompute(product_ids=[product.pk], location_id=location_id)
        except Exception as exc:  # reported below, with the thread's failure
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=recompute, args=(loc,))
               for loc in (location_default_id(), store.pk, location_default_id(), store.pk)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert (summary(product).start_balance, summary(product, store).start_balance) == (1, 2)
    open_rows = ReorderSuggestion.objects.filter(product=product, state=ReorderState.OPEN)
    assert sorted((s.location_id, s.quantity) for s in open_rows) == sorted(
        [(location_default_id(), 20), (store.pk, 30)])


def test_a_bulk_call_reads_the_locations_its_lines_name_once(store_b):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    product = ProductFactory(on_hand=10)
    line = {"code": product.code, "date": today(), "direction": "in", "quantity": 1, "kind": "purchase"}
    items = [services.PlannedMovementInput(source_ref=f"loc-{n}", location="LOJA-B", **line) for n in range(3)]
    location_default_id()  # cached per process
    assert not PlannedMovement.objects.filter(location=store_b).exists()

    with CaptureQueriesContext(connection) as queries:
        services.planned_movements_apply(items=items, cancel=[])

    location_reads = [q["sql"] for q in queries if 'FROM "inventory_location"' in q["sql"]]
    assert len(location_reads) == 1
    assert PlannedMovement.objects.filter(location=store_b).count() == 3


def test_a_limited_client_cannot_take_over_a_movement_planned_elsewhere_by_resending_its_key(store_b):
    product = ProductFactory(code="FEIJAO", on_hand=10)
    LocationFactory(code="LOJA-A")
    PlannedMovementFactory(product=product, location_id=store_b.pk, source="erp", source_ref="po-b", quantity=6)
    http = limited_client("LOJA-A")
    line = {"source": "erp", "source_ref": "po-b", "code": "FEIJAO", "date": today().isoformat(),
            "direction": "in", "quantity": 1, "kind": "purchase", "location": "LOJA-A"}

    answer = http.post("/api/v1/planned-movements/bulk", {"upsert": [line]}, format="json")

    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "location_forbidden")
    kept = PlannedMovement.objects.get(source_ref="po-b")
    assert (kept.location_id, kept.quantity) == (store_b.pk, 6)


def test_resending_a_key_without_a_location_moves_the_movement_to_the_default_one_and_both_projections_follow(
        manager, store_b):
    product = ProductFactory(code="FEIJAO", on_hand=10)
    stock_at_location(product, store_b, on_hand=2)
    PlannedMovementFactory(product=product, location_id=store_b.pk, source="erp", source_ref="po-b", quantity=6)
    for location_id in (None, store_b.pk):
        services.projection_summaries_ensure(product_ids=[product.pk], location_id=location_id)
    before = {s.location_id: s.plan_version for s in ProjectionSummary.objects.filter(product=product)}
    line = {"source": "erp", "source_ref": "po-b", "code": "FEIJAO", "date": today().isoformat(),
            "direction": "in", "quantity": 6, "kind": "purchase"}

    answer = manager.post("/api/v1/planned-movements/bulk", {"upsert": [line]}, format="json")

    assert answer.status_code == 200, answer.content
    assert PlannedMovement.objects.get(source_ref="po-b").location_id == location_default_id()
    after = {s.location_id: s.plan_version for s in ProjectionSummary.objects.filter(product=product)}
    assert {loc: after[loc] - before[loc] for loc in before} == {location_default_id(): 1, store_b.pk: 1}
