"""The default-location bar: every route of the project, asked as a client from before locations asked it (no
``location`` anywhere, the old payloads), answers and writes for the default location and leaves another alone.

The table ``CASES`` has one case per route name; ``test_the_table_has_a_case_for_every_route`` fails naming any
route added without one. Each case runs in a world of two locations holding different quantities of the same
product: the default one (``DEFAULT_LOCATION_CODE``) and DARK-2.
"""
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from django.conf import settings
from django.urls import URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from core.models import ALL_SCOPES
from core.tests.factories import ApiClientFactory
from inventory.import_jobs import import_job_run
from inventory.models import ImportJob, Location, Product, Stock, StockMovement, Transfer
from inventory.selectors import location_default
from inventory.services import transfer_create
from inventory.tests.factories import LocationFactory, ProductFactory, stock_at_location
from notifications.models import TelegramUpdate
from notifications.tests.factories import DriverFactory
from orders.models import OrderLine
from orders.services import order_process
from projections import services as projection_services
from projections.models import PlannedMovement, ProjectionSummary, ReorderSuggestion
from projections.tests.factories import PlannedMovementFactory, ReorderSuggestionFactory, SupplyTermsFactory
from reservations.models import ReservationLine
from webhooks.tests.factories import deliveries_make, endpoint_make

pytestmark = pytest.mark.django_db

OTHER = "DARK-2"
# Paths the bar leaves out: the admin's own pages, the schema and its viewer, the language switch, static files.
SKIPPED_PREFIXES = ("admin/", "api/schema/", "api/docs/", "i18n/", "static")

# Response keys documented before locations existed (the serializers and views of that time, docs/*.md). A key
# may be added (``location``); none of these may go.
STOCK_KEYS = {"code", "name", "category", "unit", "on_hand", "reserved", "available", "threshold", "version",
              "updated_at"}
STOCK_DETAIL_KEYS = STOCK_KEYS | {"requested_code", "canonical_code"}
MOVEMENT_KEYS = {"id", "code", "kind", "quantity", "on_hand_after", "reason", "reference", "reservation_id", "actor",
                 "created_at"}
PAGE_KEYS = {"count", "next", "previous", "results"}
RESERVATION_KEYS = {"id", "status", "expires_at", "created_at", "reference", "lines"}
RESERVATION_LINE_KEYS = {"code", "quantity"}
STOCK_RESERVE_KEYS = {"reservation_id", "expires_at", "sku", "quantity"}
ORDER_KEYS = {"id", "status", "reservation_id", "reference", "invoice", "failure_reason", "created_at", "processed_at",
              "lines"}
IMPORT_KEYS = {"id", "url", "status", "phase", "rows_total", "rows_done", "progress", "format", "reference", "dry_run",
               "attempts", "created_at", "started_at", "finished_at", "result", "failure", "errors"}
SUMMARY_KEYS = {"code", "name", "start_balance", "threshold", "min_balance_7d", "min_balance_7d_date", "stockout_date",
                "below_threshold_date", "days_of_cover", "demand_rate", "stockout_date_at_pace",
                "days_of_cover_at_pace", "at_risk_7d", "late_movements", "as_of", "horizon_days", "source_version",
                "computed_at", "stale"}
PLANNED_KEYS = {"id", "source", "source_ref", "code", "date", "direction", "quantity", "kind", "firmness", "status",
                "late", "note", "created_at", "updated_at"}
REORDER_KEYS = {"id", "code", "name", "state", "quantity", "demand", "safety_stock", "available", "firm_inbound",
                "cover_days", "arrival_date", "planned_movement", "decided_by", "decided_at", "created_at",
                "updated_at"}
WEBHOOK_ENDPOINT_KEYS = {"id", "url", "description", "event_types", "active", "batches", "created_at", "updated_at"}
ERROR_KEYS = {"code", "message", "details"}
# What differs between two reads of the same rows: the time of the answer, and the named location echoed back.
UNSTABLE_KEYS = {"location", "server_time", "computed_at"}


@dataclass
class World:
    """Two locations and one client from before locations: a token with every scope and no location limit."""

    default: Location
    other: Location
    product: Product  # 7 units at the default location, 40 at DARK-2
    out_here: Product  # none at the default location, 10 at DARK-2
    api: APIClient
    staff: APIClient  # a superuser's admin session
    settings: Any  # pytest-django's settings fixture


@dataclass(frozen=True)
class Case:
    run: Callable[[World], None]
    # Why the route has nothing to do with locations ("": it serves one).
    unrelated: str = ""


CASES: dict[str, Case] = {}


def case(name: str, *, unrelated: str = "") -> Callable:
    def register(run: Callable[[World], None]) -> Callable[[World], None]:
        assert name not in CASES, f"two cases for {name}"
        CASES[name] = Case(run=run, unrelated=unrelated)
        return run

    return register


def project_routes() -> dict[str, str]:
    """Every URL pattern of the project by name (its path when unnamed), includes walked, less SKIPPED_PREFIXES."""
    found: dict[str, str] = {}

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            path = prefix + str(entry.pattern).lstrip("^")
            if path.startswith(SKIPPED_PREFIXES):
                continue
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, path)
            else:
                found[entry.name or path] = path

    walk(get_resolver().url_patterns, "")
    return found


# --- the world and what is looked at ------------------------------------------------------------------------


@pytest.fixture
def world(db, django_user_model, settings) -> World:
    default = location_default()
    other = LocationFactory(code=OTHER, name="Dark store 2")
    product = ProductFactory(code="MER-1001", name="Arroz 5kg", category="mercearia", on_hand=7)
    stock_at_location(product, other, on_hand=40)
    out_here = ProductFactory(code="MER-2002", name="Feijão 1kg", category="mercearia", on_hand=0)
    stock_at_location(out_here, other, on_hand=10)
    record = ApiClientFactory(name="loja-site", scopes=list(ALL_SCOPES))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {record.raw_token}")
    staff = APIClient()
    staff.force_login(django_user_model.objects.create_user(username="gerente", password="x", is_staff=True,
                                                            is_superuser=True))
    return World(default=default, other=other, product=product, out_here=out_here, api=api, staff=staff,
                 settings=settings)


def counters(product: Product, location: Location) -> tuple[int, int, int]:
    """(on hand, reserved, version) of the product's stock row at the location."""
    return Stock.objects.values_list("on_hand", "reserved", "version").get(product=product, location=location)


def elsewhere(w: World) -> dict[str, list]:
    """Every row at DARK-2 a route could write: what must read the same before and after a request naming no
    location."""
    at = {"location": w.other}
    return {
        "stock": sorted(Stock.objects.filter(**at).values_list("product__code", "on_hand", "reserved", "version")),
        "ledger": sorted(StockMovement.objects.filter(**at).values_list("pk", "quantity")),
        "reservation_lines": sorted(ReservationLine.objects.filter(**at).values_list("pk", "quantity")),
        "order_lines": sorted(OrderLine.objects.filter(**at).values_list("pk", "quantity")),
        "planned": sorted(PlannedMovement.objects.filter(**at).values_list("pk", "quantity", "status", "date")),
        "summaries": sorted(ProjectionSummary.objects.filter(**at).values_list("pk", "source_version", "computed_at")),
        "suggestions": sorted(ReorderSuggestion.objects.filter(**at).values_list("pk", "state", "quantity")),
        "imports": sorted(ImportJob.objects.filter(**at).values_list("pk", flat=True)),
        "transfers": sorted(Transfer.objects.values_list("pk", "status")),
    }


def stable(body: Any) -> Any:
    """``body`` without UNSTABLE_KEYS at any depth."""
    if isinstance(body, dict):
        return {key: stable(value) for key, value in body.items() if key not in UNSTABLE_KEYS}
    if isinstance(body, list):
        return [stable(item) for item in body]
    return body


def keeps(body: dict, keys: set[str]) -> None:
    missing = keys - set(body)
    assert not missing, f"keys documented before locations are gone: {sorted(missing)}"


def read_as_default(w: World, url: str, *, params: dict | None = None, body: dict | None = None,
                    http: APIClient | None = None) -> Any:
    """The answer to ``url`` naming no location (a GET, or a POST of ``body``), checked equal to the answer
    naming the default location and unlike DARK-2's; and that reading it wrote nothing at DARK-2."""
    http = http or w.api

    def ask(location: str | None):
        if body is None:
            query = {**(params or {}), **({"location": location} if location else {})}
            response = http.get(url, query)
        else:
            response = http.post(url, {**body, **({"location": location} if location else {})}, format="json")
        assert response.status_code == 200, (location, response.content[:500])
        return response.json() if response["Content-Type"].startswith("application/json") else response.content

    before = elsewhere(w)
    plain = ask(None)
    assert elsewhere(w) == before
    assert stable(plain) == stable(ask(w.default.code))
    assert stable(plain) != stable(ask(OTHER)), "the bar cannot tell the two locations apart here"
    return plain


def json_post(http: APIClient, url: str, body: Any = None, **extra):
    return http.post(url, body if body is not None else {}, format="json", **extra)


def projections_computed(w: World) -> None:
    """Planned movements at both locations (DARK-2 runs out today), each location's summaries computed."""
    today = projection_services.projection_today()
    PlannedMovementFactory(product=w.product, direction="in", quantity=5, kind="purchase",
                           date=today + timedelta(days=3), source="erp", source_ref="po-default")
    PlannedMovementFactory(product=w.product, location_id=w.other.pk, direction="out", quantity=50, kind="order",
                           date=today, source="erp", source_ref="so-dark")
    ids = [w.product.pk, w.out_here.pk]
    projection_services.projection_recompute(product_ids=ids)
    projection_services.projection_recompute(product_ids=ids, location_id=w.other.pk)


def reserve_via_api(w: World, quantity: int = 2) -> dict:
    response = json_post(w.api, "/api/v1/reservations", {"lines": [{"code": w.product.code, "quantity": quantity}]})
    assert response.status_code == 201, response.content
    return response.json()


# --- routes with nothing to do with locations -------------------------------------------------------------


@case("home", unrelated="a redirect to the docs or the dashboard, by who asks")
def _home(w: World) -> None:
    response = w.api.get("/")
    assert (response.status_code, response["Location"]) == (302, reverse("api-docs"))


@case("healthz", unrelated="liveness of the process")
def _healthz(w: World) -> None:
    assert w.api.get("/healthz").json() == {"status": "ok"}


@case("readyz", unrelated="readiness of PostgreSQL and Redis")
def _readyz(w: World) -> None:
    assert w.api.get("/readyz").json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


@case("metrics", unrelated="process and pipeline metrics for Prometheus")
def _metrics(w: World) -> None:
    response = w.api.get("/metrics")
    assert response.status_code == 200 and b"# TYPE" in response.content


@case("ws-ticket", unrelated="a ticket names who opens the socket; the socket chooses locations (?locations=)")
def _ws_ticket(w: World) -> None:
    response = w.api.post("/api/v1/ws-ticket")
    assert response.status_code == 201
    assert set(response.json()) == {"ticket", "expires_in", "ws_path", "subprotocols"}


@case("webhook-endpoint-list", unrelated="receivers of events; events carry their own location")
def _webhook_endpoint_list(w: World) -> None:
    created = json_post(w.api, "/api/v1/webhooks/endpoints",
                        {"url": "http://127.0.0.1:9/hook", "event_types": ["stock.changed"]})
    listed = w.api.get("/api/v1/webhooks/endpoints").json()
    assert created.status_code == 201 and "secret" in created.json()
    keeps(listed, PAGE_KEYS)
    assert [row["id"] for row in listed["results"]] == [created.json()["id"]]
    keeps(listed["results"][0], WEBHOOK_ENDPOINT_KEYS)


@case("webhook-endpoint-detail", unrelated="one receiver of events")
def _webhook_endpoint_detail(w: World) -> None:
    endpoint = endpoint_make()
    url = f"/api/v1/webhooks/endpoints/{endpoint.pk}"
    read = w.api.get(url).json()
    changed = w.api.patch(url, {"description": "ERP"}, format="json").json()
    deleted = w.api.delete(url)
    keeps(read, WEBHOOK_ENDPOINT_KEYS)
    assert (changed["description"], deleted.status_code, w.api.get(url).status_code) == ("ERP", 204, 404)


@case("webhook-endpoint-rotate-secret", unrelated="a receiver's signing secret")
def _webhook_endpoint_rotate_secret(w: World) -> None:
    endpoint = endpoint_make()
    rotated = w.api.post(f"/api/v1/webhooks/endpoints/{endpoint.pk}/rotate-secret").json()
    assert rotated["id"] == endpoint.pk and rotated["secret"] not in ("", "test-secret")


@case("webhook-delivery-list", unrelated="the outbox of event deliveries")
def _webhook_delivery_list(w: World) -> None:
    endpoint_make(event_types=("order.processed",))
    [delivery] = deliveries_make(key="order-1")
    listed = w.api.get("/api/v1/webhooks/deliveries").json()
    assert [row["id"] for row in listed["results"]] == [delivery.pk]


@case("webhook-delivery-redeliver", unrelated="sending deliveries again, by id")
def _webhook_delivery_redeliver(w: World) -> None:
    endpoint_make(event_types=("order.processed",))
    [delivery] = deliveries_make(key="order-2")
    answer = json_post(w.api, "/api/v1/webhooks/deliveries/redeliver", {"ids": [delivery.pk, 999999]}).json()
    assert answer == {"redelivered": [delivery.pk], "unknown": [999999]}


@case("transfer-detail", unrelated="a transfer names its two locations itself")
def _transfer_detail(w: World) -> None:
    transfer = transfer_create(code=w.product.code, source=w.default.code, destination=OTHER, quantity=1)
    shown = w.api.get(f"/api/v1/transfers/{transfer.pk}").json()
    assert (shown["source"], shown["destination"], shown["status"]) == (w.default.code, OTHER, "received")


@case("transfer-receive", unrelated="a transfer names its two locations itself")
def _transfer_receive(w: World) -> None:
    transfer = transfer_create(code=w.product.code, source=w.default.code, destination=OTHER, quantity=3,
                               in_transit=True)
    received = w.api.post(f"/api/v1/transfers/{transfer.pk}/receive").json()
    assert received["status"] == "received"
    assert (counters(w.product, w.default)[0], counters(w.product, w.other)[0]) == (4, 43)


@case("transfer-cancel", unrelated="a transfer names its two locations itself")
def _transfer_cancel(w: World) -> None:
    transfer = transfer_create(code=w.product.code, source=w.default.code, destination=OTHER, quantity=3,
                               in_transit=True)
    cancelled = w.api.post(f"/api/v1/transfers/{transfer.pk}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert (counters(w.product, w.default)[0], counters(w.product, w.other)[0]) == (7, 40)


# --- stock reads ------------------------------------------------------------------------------------------------


def _stock_list(w: World, url: str) -> None:
    body = read_as_default(w, url)
    keeps(body, PAGE_KEYS)
    rows = {row["code"]: row for row in body["results"]}
    keeps(rows[w.product.code], STOCK_KEYS)
    assert {code: (row["on_hand"], row["available"]) for code, row in rows.items()} == {
        w.product.code: (7, 7), w.out_here.code: (0, 0)}


@case("stock-list")
def _stock_list_api(w: World) -> None:
    _stock_list(w, "/api/v1/stock/")


@case("estoque")
def _estoque(w: World) -> None:
    _stock_list(w, "/estoque")


@case("stock-detail")
def _stock_detail(w: World) -> None:
    body = read_as_default(w, f"/api/v1/stock/{w.product.code}/")
    keeps(body, STOCK_DETAIL_KEYS)
    assert (body["on_hand"], body["reserved"], body["available"], body["location"]) == (7, 0, 7, w.default.code)


@case("api-path-other-slash")
def _api_path_other_slash(w: World) -> None:
    # The stock detail without its trailing slash: the same default-location row, served in place.
    body = read_as_default(w, f"/api/v1/stock/{w.product.code}")
    keeps(body, STOCK_DETAIL_KEYS)
    assert (body["on_hand"], body["available"], body["location"]) == (7, 7, w.default.code)


@case("stock-lookup")
def _stock_lookup(w: World) -> None:
    body = read_as_default(w, "/api/v1/stock/lookup", body={"codes": [w.product.code, "NOPE-1"]})
    keeps(body["items"][0], STOCK_DETAIL_KEYS)
    assert ([(i["code"], i["on_hand"]) for i in body["items"]], body["unknown"]) == ([(w.product.code, 7)],
                                                                                    ["NOPE-1"])


@case("stock-snapshot")
def _stock_snapshot(w: World) -> None:
    body = read_as_default(w, "/api/v1/stock/snapshot", params={"codes": f"{w.product.code},{w.out_here.code}"})
    keeps(body, {"server_time", "items", "unknown"})
    keeps(body["items"][0], STOCK_KEYS)
    assert sorted((i["code"], i["on_hand"]) for i in body["items"]) == [(w.product.code, 7), (w.out_here.code, 0)]


@case("stock-movements")
def _stock_movements(w: World) -> None:
    url = f"/api/v1/stock/{w.product.code}/movements"
    ledger = read_as_default(w, url)
    keeps(ledger, PAGE_KEYS)
    keeps(ledger["results"][0], MOVEMENT_KEYS)
    assert [(m["kind"], m["quantity"]) for m in ledger["results"]] == [("receipt", 7)]

    before = elsewhere(w)
    recorded = json_post(w.api, url, {"kind": "receipt", "quantity": 3, "reason": "NF 123"})

    assert recorded.status_code == 201, recorded.content
    keeps(recorded.json()["movement"], MOVEMENT_KEYS)
    keeps(recorded.json()["stock"], STOCK_KEYS)
    assert recorded.json()["stock"]["on_hand"] == 10
    assert counters(w.product, w.default) == (10, 0, 2)
    assert elsewhere(w) == before


@case("location-list")
def _location_list(w: World) -> None:
    rows = w.api.get("/api/v1/locations").json()
    assert [(row["code"], row["is_default"]) for row in rows] == [(w.default.code, True), (OTHER, False)]


# --- catalogue writes ---------------------------------------------------------------------------------------------


@case("product-create")
def _product_create(w: World) -> None:
    before = elsewhere(w)
    created = json_post(w.api, "/api/v1/products", {"code": "NEW-1", "name": "Novo", "aliases": ["789100"]})

    assert created.status_code == 201, created.content
    keeps(created.json(), STOCK_DETAIL_KEYS)
    assert (created.json()["on_hand"], created.json()["location"]) == (0, w.default.code)
    assert list(Stock.objects.filter(product__code="NEW-1").values_list("location__code", flat=True)) == [
        w.default.code]
    assert elsewhere(w) == before


@case("product-update")
def _product_update(w: World) -> None:
    before = elsewhere(w)
    changed = w.api.patch(f"/api/v1/products/{w.product.code}", {"low_stock_threshold": 9}, format="json")

    assert changed.status_code == 200, changed.content
    keeps(changed.json(), STOCK_DETAIL_KEYS)
    assert (changed.json()["on_hand"], changed.json()["threshold"]) == (7, 9)
    assert elsewhere(w) == before


@case("unified-code-create")
def _unified_code_create(w: World) -> None:
    before = elsewhere(w)
    created = json_post(w.api, f"/api/v1/products/{w.product.code}/unified-codes", {"code": "7891000"})
    through_alias = w.api.get("/api/v1/stock/7891000/").json()

    assert created.json() == {"code": "7891000", "product_code": w.product.code}
    assert (through_alias["requested_code"], through_alias["on_hand"]) == ("7891000", 7)
    assert elsewhere(w) == before


@case("stock-import")
def _stock_import(w: World) -> None:
    before = elsewhere(w)
    accepted = json_post(w.api, "/api/v1/stock/import",
                         {"items": [{"code": w.product.code, "name": w.product.name, "on_hand": 9}],
                          "reference": "erp-1"})

    assert accepted.status_code == 202, accepted.content
    keeps(accepted.json(), IMPORT_KEYS)
    assert accepted.json()["location"] == w.default.code
    import_job_run(job_id=accepted.json()["id"])
    assert counters(w.product, w.default)[0] == 9
    assert elsewhere(w) == before


@case("stock-import-detail")
def _stock_import_detail(w: World) -> None:
    body = "code,name,on_hand\nMER-2002,Feijão 1kg,4\n"
    accepted = w.api.generic("POST", "/api/v1/stock/import", body, content_type="text/csv").json()
    import_job_run(job_id=accepted["id"])
    before = elsewhere(w)

    shown = w.api.get(accepted["url"]).json()

    keeps(shown, IMPORT_KEYS)
    assert (shown["status"], shown["location"], shown["result"]["counted"]) == ("succeeded", w.default.code, 1)
    assert counters(w.out_here, w.default)[0] == 4 and counters(w.out_here, w.other)[0] == 10
    assert elsewhere(w) == before


# --- transfers: new with locations, so no older answer to keep; location is required to create one ---------------


@case("transfer-list")
def _transfer_list(w: World) -> None:
    before = elsewhere(w)
    refused = json_post(w.api, "/api/v1/transfers", {"code": w.product.code, "quantity": 2})

    # docs/locations.md: a transfer names its source and destination; none is taken for granted.
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid"
    assert {"source", "destination"} <= set(refused.json()["error"]["details"])
    assert counters(w.product, w.default) == (7, 0, 1) and elsewhere(w) == before

    transfer = transfer_create(code=w.product.code, source=w.default.code, destination=OTHER, quantity=1)
    listed = w.api.get("/api/v1/transfers").json()
    keeps(listed, PAGE_KEYS)
    # docs/locations.md: a transfer joins two locations, so the list spans every location the client may
    # use unless one is named; ``all`` says the same.
    assert [row["id"] for row in listed["results"]] == [transfer.pk]
    assert w.api.get("/api/v1/transfers", {"location": "all"}).json()["results"] == listed["results"]


# --- reservations --------------------------------------------------------------------------------------------------


@case("reservation-list")
def _reservation_list(w: World) -> None:
    before = elsewhere(w)
    created = reserve_via_api(w, quantity=2)

    keeps(created, RESERVATION_KEYS)
    keeps(created["lines"][0], RESERVATION_LINE_KEYS)
    assert [(line["code"], line["location"], line["quantity"]) for line in created["lines"]] == [
        (w.product.code, w.default.code, 2)]
    assert counters(w.product, w.default) == (7, 2, 2)
    assert elsewhere(w) == before
    listed = w.api.get("/api/v1/reservations").json()
    assert [row["id"] for row in listed["results"]] == [created["id"]]

    # Short here though DARK-2 has plenty: the error of before, with what the default location has left.
    short = json_post(w.api, "/api/v1/reservations", {"lines": [{"code": w.product.code, "quantity": 6}]})
    assert short.status_code == 409
    assert short.json()["error"]["details"]["lines"] == [{"code": w.product.code, "requested": 6, "available": 5}]
    assert counters(w.product, w.default)[:2] == (7, 2) and elsewhere(w) == before


@case("reservation-detail")
def _reservation_detail(w: World) -> None:
    created = reserve_via_api(w)
    shown = w.api.get(f"/api/v1/reservations/{created['id']}").json()
    keeps(shown, RESERVATION_KEYS)
    assert shown["lines"] == created["lines"] and shown["lines"][0]["location"] == w.default.code


def _reservation_ended(action: str, status: str, on_hand_reserved: tuple[int, int]) -> Callable[[World], None]:
    """Confirm or release a reservation made without a location: the default location's counters move."""
    def run(w: World) -> None:
        created = reserve_via_api(w, quantity=2)
        before = elsewhere(w)

        ended = w.api.post(f"/api/v1/reservations/{created['id']}/{action}").json()

        keeps(ended, RESERVATION_KEYS)
        assert ended["status"] == status
        assert counters(w.product, w.default)[:2] == on_hand_reserved
        assert elsewhere(w) == before

    return run


case("reservation-confirm")(_reservation_ended("confirm", "confirmed", (5, 0)))
case("reservation-release")(_reservation_ended("release", "released", (7, 0)))


@case("reservation-extend")
def _reservation_extend(w: World) -> None:
    created = reserve_via_api(w, quantity=2)
    before = elsewhere(w)

    extended = json_post(w.api, f"/api/v1/reservations/{created['id']}/extend", {"ttl_seconds": 3600}).json()

    keeps(extended, RESERVATION_KEYS)
    assert extended["expires_at"] > created["expires_at"]
    assert counters(w.product, w.default)[:2] == (7, 2)
    assert elsewhere(w) == before


@case("stock-reserve")
def _stock_reserve(w: World) -> None:
    before = elsewhere(w)
    response = json_post(w.api, f"/stock/{w.product.code}/reserve", {"quantity": 3})

    assert response.status_code == 200, response.content
    assert set(response.json()) == STOCK_RESERVE_KEYS
    assert (response.json()["sku"], response.json()["quantity"]) == (w.product.code, 3)
    assert counters(w.product, w.default)[:2] == (7, 3)
    short = json_post(w.api, f"/stock/{w.product.code}/reserve", {"quantity": 5})
    assert (short.status_code, short.json()["error"]["code"]) == (409, "insufficient_stock")
    assert counters(w.product, w.default)[:2] == (7, 3)
    assert elsewhere(w) == before


@case("stock-confirm")
def _stock_confirm(w: World) -> None:
    reserved = json_post(w.api, f"/stock/{w.product.code}/reserve", {"quantity": 3}).json()
    before = elsewhere(w)

    response = json_post(w.api, "/stock/confirm", {"reservation_id": reserved["reservation_id"]})

    assert response.json() == {"reservation_id": reserved["reservation_id"], "status": "confirmed"}
    assert counters(w.product, w.default)[:2] == (4, 0)
    assert elsewhere(w) == before


# --- orders --------------------------------------------------------------------------------------------------------


@case("order-create")
def _order_create(w: World) -> None:
    before = elsewhere(w)
    accepted = json_post(w.api, "/api/v1/orders", {"lines": [{"code": w.product.code, "quantity": 2}]})

    assert accepted.status_code == 202, accepted.content
    keeps(accepted.json(), ORDER_KEYS)
    assert counters(w.product, w.default)[:2] == (7, 2)
    order_process(order_id=UUID(accepted.json()["id"]))  # what the worker does with it
    assert counters(w.product, w.default)[:2] == (5, 0)
    assert list(OrderLine.objects.values_list("location__code", flat=True)) == [w.default.code]
    assert elsewhere(w) == before


@case("order-detail")
def _order_detail(w: World) -> None:
    reservation = reserve_via_api(w, quantity=1)
    accepted = json_post(w.api, "/api/v1/orders", {"reservation_id": reservation["id"]}).json()
    order_process(order_id=UUID(accepted["id"]))

    shown = w.api.get(f"/api/v1/orders/{accepted['id']}").json()

    keeps(shown, ORDER_KEYS | {"steps"})
    # A line names its location now (an added key), the default one.
    assert (shown["status"], shown["lines"]) == ("processed", [{"code": w.product.code, "location": w.default.code,
                                                                "quantity": 1}])
    assert counters(w.product, w.default)[:2] == (6, 0) and counters(w.product, w.other)[:2] == (40, 0)


# --- projections and planning -------------------------------------------------------------------------------------


@case("projection-detail")
def _projection_detail(w: World) -> None:
    projections_computed(w)
    body = read_as_default(w, f"/api/v1/projections/{w.product.code}")
    keeps(body, SUMMARY_KEYS | {"daily"})
    assert "location" not in body  # docs/projections.md: no location named, none echoed, as before
    assert (body["start_balance"], body["stockout_date"]) == (7, None)


@case("projection-daily")
def _projection_daily(w: World) -> None:
    projections_computed(w)
    body = read_as_default(w, f"/api/v1/projections/{w.product.code}/daily", params={"days": 7})
    keeps(body, {"code", "name", "threshold", "start_balance", "stockout_date", "computed_at", "stale", "days"})
    assert "location" not in body
    assert body["start_balance"] == 7 and body["days"][3]["inbound"] == 5


@case("projection-query")
def _projection_query(w: World) -> None:
    projections_computed(w)
    body = read_as_default(w, "/api/v1/projections/query", body={"codes": [w.product.code]})
    keeps(body, {"items", "unknown", "computed_at", "stale"})
    keeps(body["items"][0], SUMMARY_KEYS)
    assert "location" not in body
    assert [(i["code"], i["start_balance"], i["stockout_date"]) for i in body["items"]] == [(w.product.code, 7, None)]


@case("projection-ruptures")
def _projection_ruptures(w: World) -> None:
    projections_computed(w)
    body = read_as_default(w, "/api/v1/projections/ruptures")
    keeps(body, {"days", "limit", "offset", "next_offset", "results", "computed_at", "stale"})
    assert "location" not in body
    assert [(r["code"], r["out_now"]) for r in body["results"]] == [(w.out_here.code, True)]


@case("projection-stats")
def _projection_stats(w: World) -> None:
    projections_computed(w)
    body = read_as_default(w, "/api/v1/projections/stats")
    keeps(body, {"products", "at_risk_7d", "stale_rows", "oldest_computed_at", "computed_at", "stale"})
    assert "location" not in body
    assert (body["products"], body["at_risk_7d"]) == (2, 0)


@case("projection-recalculate")
def _projection_recalculate(w: World) -> None:
    projections_computed(w)
    before = elsewhere(w)
    body = w.api.post(f"/api/v1/projections/{w.product.code}/recalculate").json()

    keeps(body, SUMMARY_KEYS)
    assert "location" not in body
    assert (body["start_balance"], body["stockout_date"]) == (7, None)
    assert ProjectionSummary.objects.get(product=w.product, location=w.default).start_balance == 7
    assert elsewhere(w) == before


@case("planned-movement-bulk")
def _planned_movement_bulk(w: World) -> None:
    projections_computed(w)
    before = elsewhere(w)
    day = (projection_services.projection_today() + timedelta(days=2)).isoformat()
    line = {"source": "erp", "source_ref": "po-77", "code": w.product.code, "date": day, "direction": "in",
            "quantity": 12, "kind": "purchase"}

    answer = json_post(w.api, "/api/v1/planned-movements/bulk", {"upsert": [line],
                                                                "cancel": [{"source": "erp",
                                                                            "source_ref": "po-default"}]})

    assert answer.status_code == 200, answer.content
    keeps(answer.json()["upserted"][0], PLANNED_KEYS)
    assert (answer.json()["upserted"][0]["location"], answer.json()["cancelled"]) == (w.default.code, 1)
    assert PlannedMovement.objects.get(source_ref="po-77").location == w.default
    assert PlannedMovement.objects.get(source_ref="po-default").status == "cancelled"
    assert elsewhere(w) == before


@case("planned-movement-list")
def _planned_movement_list(w: World) -> None:
    projections_computed(w)
    listed = w.api.get("/api/v1/planned-movements", {"source": "erp"}).json()
    everywhere = w.api.get("/api/v1/planned-movements", {"source": "erp", "location": "all"}).json()

    keeps(listed, PAGE_KEYS)
    keeps(listed["results"][0], PLANNED_KEYS)
    # An ERP that sums its planned rows counts the default location's only, as before locations; ``all``
    # (docs/projections.md) spans every location the client may use, each row naming its own.
    assert [(r["source_ref"], r["location"]) for r in listed["results"]] == [("po-default", w.default.code)]
    assert sorted((r["source_ref"], r["location"]) for r in everywhere["results"]) == [
        ("po-default", w.default.code), ("so-dark", OTHER)]


@case("planned-movement-detail")
def _planned_movement_detail(w: World) -> None:
    projections_computed(w)
    movement = PlannedMovement.objects.get(source_ref="po-default")
    shown = w.api.get(f"/api/v1/planned-movements/{movement.pk}").json()
    keeps(shown, PLANNED_KEYS)
    assert (shown["location"], shown["quantity"]) == (w.default.code, 5)


def _suggestions(w: World) -> tuple[ReorderSuggestion, ReorderSuggestion]:
    """An open suggestion at each location, for the same product: 24 units here, 36 at DARK-2."""
    SupplyTermsFactory(product=w.product, lead_time_days=5)
    return (ReorderSuggestionFactory(product=w.product, quantity=24),
            ReorderSuggestionFactory(product=w.product, location=w.other, quantity=36))


@case("reorder-suggestion-list")
def _reorder_suggestion_list(w: World) -> None:
    here, _there = _suggestions(w)
    body = read_as_default(w, "/api/v1/reorder-suggestions")
    keeps(body, PAGE_KEYS)
    assert [(r["id"], r["quantity"]) for r in body["results"]] == [(here.pk, 24)]
    assert set(body["results"][0]) == REORDER_KEYS  # the shape from before: no location key either


@case("reorder-suggestion-export")
def _reorder_suggestion_export(w: World) -> None:
    here, _there = _suggestions(w)
    content = read_as_default(w, "/api/v1/reorder-suggestions/export")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
    assert [(int(r["id"]), int(r["quantity"])) for r in rows] == [(here.pk, 24)]


@case("reorder-suggestion-order")
def _reorder_suggestion_order(w: World) -> None:
    here, there = _suggestions(w)
    before = elsewhere(w)

    ordered = w.api.post(f"/api/v1/reorder-suggestions/{here.pk}/order").json()

    keeps(ordered, REORDER_KEYS)
    assert ordered["state"] == "ordered"
    purchase = PlannedMovement.objects.get(pk=ordered["planned_movement"])
    assert (purchase.location, purchase.quantity, purchase.direction) == (w.default, 24, "in")
    assert ReorderSuggestion.objects.get(pk=there.pk).state == "open"
    assert elsewhere(w) == before


@case("reorder-suggestion-dismiss")
def _reorder_suggestion_dismiss(w: World) -> None:
    here, there = _suggestions(w)
    before = elsewhere(w)

    dismissed = w.api.post(f"/api/v1/reorder-suggestions/{here.pk}/dismiss").json()

    keeps(dismissed, REORDER_KEYS)
    assert dismissed["state"] == "dismissed"
    assert ReorderSuggestion.objects.get(pk=there.pk).state == "open"
    assert elsewhere(w) == before


# --- staff pages and the bot ---------------------------------------------------------------------------------------


@case("dashboard")
def _dashboard(w: World) -> None:
    page = w.staff.get("/dashboard/")
    assert page.status_code == 200
    assert page.context["config"]["selected"] == [w.default.code]


@case("dashboard-events")
def _dashboard_events(w: World) -> None:
    json_post(w.api, f"/api/v1/stock/{w.product.code}/movements", {"kind": "receipt", "quantity": 2})
    json_post(w.api, f"/api/v1/stock/{w.product.code}/movements", {"kind": "receipt", "quantity": 5,
                                                                     "location": OTHER})
    items = w.staff.get("/dashboard/events", {"limit": 10}).json()["items"]
    # docs/realtime.md: without ?locations= the feed is every location's, each line naming its own; the page
    # itself always asks for the locations it shows.
    receipts = [(i["location"], i["quantity"], i["on_hand"]) for i in items if i["type"] == "movement.receipt"]
    assert receipts[:2] == [(OTHER, 5, 45), (w.default.code, 2, 9)]


@case("telegram-webhook")
def _telegram_webhook(w: World) -> None:
    from notifications.bot import bot_chat_serve
    from notifications.tests.fake_telegram import FakeTelegram

    fake = FakeTelegram().start()
    try:
        w.settings.TELEGRAM_API_BASE, w.settings.TELEGRAM_BOT_TOKEN = fake.base, fake.token
        w.settings.TELEGRAM_WEBHOOK_SECRET = "s3cret"
        # A driver linked before locations: listed at none, so the default location's.
        DriverFactory(chat_id=4242)
        update = {"update_id": 900, "message": {"message_id": 1, "text": f"/estoque {w.product.code}",
                                                "chat": {"id": 4242, "type": "private"}, "from": {"id": 4242}}}
        answer = json_post(w.api, "/telegram/webhook/", update, HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN="s3cret")
        bot_chat_serve(update_id=900)  # what the task queued after commit does
        reply = fake.calls_to("sendMessage")[-1].payload["text"]
    finally:
        fake.stop()
    assert answer.json() == {"ok": True} and TelegramUpdate.objects.filter(update_id=900).exists()
    assert "Disponível: 7" in reply and "40" not in reply


# --- the tests --------------------------------------------------------------------------------------------------


def test_the_table_has_a_case_for_every_route():
    routes = project_routes()

    missing = sorted(set(routes) - set(CASES))
    assert not missing, ("routes without a default-location case in core/tests/test_default_location_routes.py: "
                         + ", ".join(f"{name} ({routes[name]})" for name in missing))
    gone = sorted(set(CASES) - set(routes))
    assert not gone, f"cases for routes that no longer exist: {gone}"


def test_every_route_the_bar_calls_unrelated_says_why():
    unrelated = {name: c.unrelated for name, c in CASES.items() if c.unrelated}
    assert {"healthz", "readyz", "metrics", "webhook-endpoint-list"} <= set(unrelated)
    assert all(len(why.split()) >= 3 for why in unrelated.values())


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_route_asked_without_a_location_serves_the_default_one(name, world):
    assert world.default.code == settings.DEFAULT_LOCATION_CODE
    CASES[name].run(world)
