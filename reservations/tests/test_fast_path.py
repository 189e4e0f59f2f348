"""The ASGI fast path for one-code reservations: what it serves, what it hands to the view, and no oversell."""
import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from prometheus_client import REGISTRY

from config.asgi import application
from core import aio
from core.groups import group_for_code
from core.metrics import RESERVATION_FAST_PATH
from core.realtime import realtime_publisher_drain
from core.tests.awkward import bodies_with_each_field_awkward
from core.tests.factories import ApiClientFactory
from inventory.models import Stock
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory
from notifications.models import AlertState
from projections.services import projection_marks_drain, projection_pending_claim
from reservations.fast_path import reservation_batches_drain
from reservations.models import Reservation, ReservationStatus
from reservations.selectors import reserved_drift
from webhooks.models import WebhookDelivery
from webhooks.tests.factories import endpoint_make

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _async_clients_closed():
    yield
    await reservation_batches_drain()
    await realtime_publisher_drain()
    await projection_marks_drain()
    await aio.clients_close()


@pytest.fixture
def storefront():
    """An API client with the reserve scope."""
    return ApiClientFactory(scopes=["read", "reserve"])


def served_and_delegated() -> tuple[float, float]:
    return (RESERVATION_FAST_PATH.labels("served")._value.get(),
            RESERVATION_FAST_PATH.labels("delegated")._value.get())


async def post(path: str, body: bytes | dict | None, *, token: str | None,
               headers: dict[str, str] | None = None, address: str = "127.0.0.1") -> tuple[int, dict, dict]:
    """POST through the service's ASGI application; (status, JSON body, headers)."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    sent_headers = [(b"host", b"testserver"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(raw)).encode())]
    if token:
        sent_headers.append((b"authorization", f"Bearer {token}".encode()))
    for key, value in (headers or {}).items():
        sent_headers.append((key.lower().encode(), value.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": sent_headers, "client": (address, 50000), "server": ("testserver", 80)}
    messages = [{"type": "http.request", "body": raw, "more_body": False}]
    answer: dict = {"body": b""}

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays connected until the answer is sent

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await application(scope, receive, send)
    return answer["status"], json.loads(answer["body"] or b"{}"), answer["headers"]


async def view_read(token: str, reservation_id: str) -> dict:
    """GET /api/v1/reservations/{id} through the Django view."""
    from rest_framework.test import APIClient

    def read():
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return http.get(f"/api/v1/reservations/{reservation_id}").json()

    return await sync_to_async(read)()


def stock_of(code: str) -> Stock:
    return Stock.objects.select_related("product").get(product__code=code)


async def test_plain_one_code_reservation_is_served_with_the_views_answer(storefront):
    await sync_to_async(ProductFactory)(code="FAST-1", on_hand=10)
    before = await sync_to_async(stock_of)("FAST-1")
    assert (before.reserved, before.version) == (0, 1)
    served, delegated = served_and_delegated()
    batches = REGISTRY.get_sample_value("stockpulse_reservation_batch_size_count") or 0

    status, body, headers = await post("/api/v1/reservations", {"lines": [{"code": "fast-1", "quantity": 2}],
                                                                "reference": "order-77"}, token=storefront.raw_token)

    assert status == 201
    assert served_and_delegated() == (served + 1, delegated)
    assert REGISTRY.get_sample_value("stockpulse_reservation_batch_size_count") == batches + 1
    assert headers["content-type"] == "application/json" and headers["x-request-id"]
    assert body["status"] == "active" and body["reference"] == "order-77"
    assert body["lines"] == [{"code": "FAST-1", "location": "PRINCIPAL", "quantity": 2}]
    after = await sync_to_async(stock_of)("FAST-1")
    assert (after.on_hand, after.reserved, after.version) == (10, 2, 2)
    reservation = await sync_to_async(Reservation.objects.get)(pk=body["id"])
    assert reservation.status == ReservationStatus.ACTIVE and reservation.client_id == storefront.pk
    # The view reads it back with the same body the fast path gave.
    assert await view_read(storefront.raw_token, body["id"]) == body


async def test_alias_and_seed_route_answer_with_the_canonical_code(storefront):
    alias = await sync_to_async(UnifiedCodeFactory)(code="FAST-ALIAS", product=await sync_to_async(ProductFactory)(
        code="FAST-2", on_hand=50))
    served, _ = served_and_delegated()

    status, body, _ = await post("/stock/FAST-ALIAS/reserve", None, token=storefront.raw_token)

    assert status == 200 and served_and_delegated()[0] == served + 1
    assert body["sku"] == "FAST-2" and body["quantity"] == 1 and body["reservation_id"]
    assert (await sync_to_async(stock_of)("FAST-2")).reserved == 1
    assert alias.product.code == "FAST-2"


async def test_seed_route_serves_ttl_seconds_like_the_api(storefront):
    await sync_to_async(ProductFactory)(code="FAST-TTL", on_hand=50)
    served, _ = served_and_delegated()

    status, body, _ = await post("/stock/FAST-TTL/reserve", {"ttl_seconds": 90}, token=storefront.raw_token)

    assert status == 200 and served_and_delegated()[0] == served + 1
    reservation = await sync_to_async(Reservation.objects.get)(pk=body["reservation_id"])
    assert (reservation.expires_at - reservation.created_at).total_seconds() == pytest.approx(90, abs=1)


async def test_published_event_and_projection_mark_follow_a_served_reservation(storefront):
    product = await sync_to_async(ProductFactory)(code="FAST-3", on_hand=8)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_for_code("FAST-3"), channel)

    status, body, _ = await post("/stock/FAST-3/reserve", {"quantity": 3}, token=storefront.raw_token)

    assert status == 200
    message = await asyncio.wait_for(layer.receive(channel), 5)
    events = [json.loads(text) for _, text in message["items"]]
    stock_changed = next(e for e in events if e["type"] == "stock.changed")
    assert (stock_changed["reserved"], stock_changed["available"], stock_changed["version"]) == (3, 5, 2)
    created = next(e for e in events if e["type"] == "reservation.created")
    assert created["reservation_id"] == body["reservation_id"]
    # The recompute was scheduled: the product is already marked as waiting for one.
    await projection_marks_drain()
    assert await sync_to_async(projection_pending_claim)(product_ids=[product.pk]) == []
    await layer.group_discard(group_for_code("FAST-3"), channel)


@pytest.mark.parametrize(("path", "body", "headers", "status", "error"), [
    ("/api/v1/reservations", {"lines": [{"code": "NOPE-1", "quantity": 1}]}, {}, 404, "unknown_code"),
    ("/api/v1/reservations", {"lines": [{"code": "FAST-4", "quantity": 0}]}, {}, 400, "invalid"),
    ("/api/v1/reservations", {"lines": [{"code": "FAST-4", "quantity": 1}], "ttl_seconds": 5}, {}, 400,
     "invalid"),
    ("/api/v1/reservations", {"lines": [{"code": "FAST-4", "quantity": 1}], "ttl_seconds": 10**30}, {}, 400,
     "invalid"),
    ("/api/v1/reservations", b"{not json", {}, 400, None),
    # A number past the float range reads as infinity, and PostgreSQL text cannot hold NUL: malformed.
    ("/api/v1/reservations", b'{"lines": [{"code": "FAST-4", "quantity": 1e400}]}', {}, 400, "malformed_request"),
    ("/api/v1/reservations", b'{"lines": [{"code": "FAST-4", "quantity": 1}], "ttl_seconds": 1e999}', {}, 400,
     "malformed_request"),
    ("/api/v1/reservations", b'{"lines": [{"code": "FAST-4\\u0000", "quantity": 1}]}', {}, 400, "malformed_request"),
    # A key the request does not take: refused naming it, never reserved as if it were absent.
    ("/api/v1/reservations", {"lines": [{"code": "FAST-4", "quantity": 1}], "preference": ["X"]}, {}, 400, "invalid"),
    ("/api/v1/reservations", {"lines": [{"code": "FAST-4", "quantity": 1, "loc": "X"}]}, {}, 400, "invalid"),
    ("/stock/FAST-4/reserve", {"quantity": 1, "qty": 2}, {}, 400, "invalid"),
])
async def test_requests_the_fast_path_cannot_serve_get_the_views_error(storefront, path, body, headers, status, error):
    await sync_to_async(ProductFactory)(code="FAST-4", on_hand=6)
    served, delegated = served_and_delegated()

    got, answer, _ = await post(path, body, token=storefront.raw_token, headers=headers)

    assert got == status
    assert served_and_delegated() == (served, delegated + 1)
    assert set(answer["error"]) == {"code", "message", "details"}
    if error:
        assert answer["error"]["code"] == error
    assert (await sync_to_async(stock_of)("FAST-4")).reserved == 0


LINE = {"code": "FAST-9", "quantity": 1}


@pytest.mark.parametrize(("path", "bodies"), [
    ("/api/v1/reservations", bodies_with_each_field_awkward({"lines": [LINE], "ttl_seconds": 60, "reference": "r"})),
    # The fields of a line, too.
    ("/api/v1/reservations", ['{"lines": [%s]}' % line for line in bodies_with_each_field_awkward(LINE)]),
    ("/stock/FAST-9/reserve", bodies_with_each_field_awkward({"quantity": 1})),
], ids=["reservations", "reservation lines", "stock reserve"])
async def test_every_awkward_body_is_answered_below_500_in_the_error_shape(storefront, path, bodies):
    await sync_to_async(ProductFactory)(code="FAST-9", on_hand=100_000)

    for text in bodies:
        status, answer, _ = await post(path, text.encode(), token=storefront.raw_token)
        assert status < 500, (text[:200], answer)
        if status >= 400:
            assert set(answer["error"]) == {"code", "message", "details"}, text[:200]

    assert await sync_to_async(reserved_drift)() == []


async def test_a_code_with_nul_in_the_path_is_a_400_and_reserves_nothing(storefront):
    await sync_to_async(ProductFactory)(code="FAST-5", on_hand=6)

    got, answer, _ = await post("/stock/FAST-5\x00/reserve", {"quantity": 1}, token=storefront.raw_token)

    assert got == 400 and answer["error"]["code"] == "malformed_request"
    assert (await sync_to_async(stock_of)("FAST-5")).reserved == 0
    assert await sync_to_async(Reservation.objects.count)() == 0


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v1/reservations", {"lines": [{"code": "fast-12", "quantity": 4}, {"code": "FAST-12", "quantity": 5}]}),
    ("/stock/FAST-12/reserve", {"quantity": 7}),
])
async def test_a_short_request_gets_the_views_409_from_the_fast_path(storefront, path, body):
    await sync_to_async(ProductFactory)(code="FAST-12", on_hand=6)
    served, delegated = served_and_delegated()

    fast = await post(path, body, token=storefront.raw_token)
    # An Idempotency-Key sends the same request to the view.
    view = await post(path, body, token=storefront.raw_token, headers={"Idempotency-Key": "short-1"})

    assert served_and_delegated() == (served + 1, delegated + 1)
    assert fast[0] == view[0] == 409
    assert fast[1] == view[1]
    assert fast[1]["error"]["code"] == "insufficient_stock"
    assert fast[1]["error"]["details"]["lines"] == [{"code": "FAST-12", "requested": body.get("quantity", 9),
                                                      "available": 6}]
    assert (await sync_to_async(stock_of)("FAST-12")).reserved == 0


@pytest.mark.parametrize(("accept", "language", "message"), [
    (None, "pt-br", "Estoque insuficiente."),
    ("pt-BR", "pt-br", "Estoque insuficiente."),
    ("en", "en", "Not enough stock available."),
    ("fr-CA, en-US;q=0.8, pt;q=0.5", "en", "Not enough stock available."),
])
async def test_a_short_request_is_answered_in_the_request_language_on_both_paths(storefront, accept, language,
                                                                                   message):
    await sync_to_async(ProductFactory)(code="FAST-20", on_hand=1)
    served, delegated = served_and_delegated()
    asked = {} if accept is None else {"Accept-Language": accept}

    fast = await post("/stock/FAST-20/reserve", {"quantity": 2}, token=storefront.raw_token, headers=asked)
    view = await post("/stock/FAST-20/reserve", {"quantity": 2}, token=storefront.raw_token,
                      headers={**asked, "Idempotency-Key": f"short-{language}"})

    assert served_and_delegated() == (served + 1, delegated + 1)
    assert fast[0] == view[0] == 409
    assert fast[1] == view[1] == {"error": {"code": "insufficient_stock", "message": message, "details": {
        "lines": [{"code": "FAST-20", "requested": 2, "available": 1}]}}}
    assert fast[2]["content-language"] == view[2]["content-language"] == language
    assert fast[2]["vary"] == view[2]["vary"]


async def test_a_served_reservation_carries_the_content_language_the_view_gives(storefront):
    await sync_to_async(ProductFactory)(code="FAST-21", on_hand=50)
    served, delegated = served_and_delegated()

    fast = await post("/stock/FAST-21/reserve", None, token=storefront.raw_token, headers={"Accept-Language": "en"})
    view = await post("/stock/FAST-21/reserve", None, token=storefront.raw_token,
                      headers={"Accept-Language": "en", "Idempotency-Key": "served-en"})

    assert served_and_delegated() == (served + 1, delegated + 1)
    assert fast[0] == view[0] == 200
    assert fast[2]["content-language"] == view[2]["content-language"] == "en"
    assert fast[2]["vary"] == view[2]["vary"]


async def test_a_language_cookie_goes_to_the_view_which_lets_it_outrank_the_header(storefront):
    await sync_to_async(ProductFactory)(code="FAST-22", on_hand=1)
    served, delegated = served_and_delegated()

    status, body, headers = await post("/stock/FAST-22/reserve", {"quantity": 2}, token=storefront.raw_token,
                                       headers={"Accept-Language": "pt-BR", "Cookie": "django_language=en"})

    assert served_and_delegated() == (served, delegated + 1)
    assert status == 409 and body["error"]["message"] == "Not enough stock available."
    assert headers["content-language"] == "en"


async def test_a_deactivated_client_is_refused_on_its_next_request(storefront, settings):
    await sync_to_async(ProductFactory)(code="FAST-11", on_hand=50)
    assert (await post("/stock/FAST-11/reserve", None, token=storefront.raw_token))[0] == 200
    storefront.active = False
    await sync_to_async(storefront.save)()

    status, body, _ = await post("/stock/FAST-11/reserve", None, token=storefront.raw_token)

    assert status == 401 and body["error"]["code"] == "authentication_failed"
    assert (await sync_to_async(stock_of)("FAST-11")).reserved == 1


async def test_unknown_token_and_missing_scope_are_judged_by_the_view(storefront):
    await sync_to_async(ProductFactory)(code="FAST-5", on_hand=6)
    reader = await sync_to_async(ApiClientFactory)(scopes=["read"])
    line = {"lines": [{"code": "FAST-5", "quantity": 1}]}

    assert (await post("/api/v1/reservations", line, token=None))[0] == 401
    assert (await post("/api/v1/reservations", line, token="not-a-token"))[0] == 401
    assert (await post("/api/v1/reservations", line, token=reader.raw_token))[0] == 403
    assert (await sync_to_async(stock_of)("FAST-5")).reserved == 0


async def test_idempotency_keys_go_to_the_view(storefront):
    await sync_to_async(ProductFactory)(code="FAST-6", on_hand=60)
    served, delegated = served_and_delegated()
    line = {"lines": [{"code": "FAST-6", "quantity": 1}]}

    first = await post("/api/v1/reservations", line, token=storefront.raw_token, headers={"Idempotency-Key": "k-1"})
    again = await post("/api/v1/reservations", line, token=storefront.raw_token, headers={"Idempotency-Key": "k-1"})

    assert first[0] == 201 and again[0] == 201 and first[1]["id"] == again[1]["id"]
    assert served_and_delegated() == (served, delegated + 2)
    assert (await sync_to_async(stock_of)("FAST-6")).reserved == 1


async def test_a_plain_cart_is_served_with_the_views_answer(storefront):
    await sync_to_async(ProductFactory)(code="CART-A", on_hand=40)
    await sync_to_async(UnifiedCodeFactory)(code="CART-A-OLD", product=await sync_to_async(ProductFactory)(
        code="CART-B", on_hand=40))
    served, delegated = served_and_delegated()
    cart = {"lines": [{"code": "cart-b", "quantity": 2}, {"code": "CART-A", "quantity": 3},
                      {"code": "CART-A-OLD", "quantity": 1}]}

    status, body, _ = await post("/api/v1/reservations", cart, token=storefront.raw_token)

    assert status == 201 and served_and_delegated() == (served + 1, delegated)
    # Duplicate lines and aliases merge into one line per product, listed by code.
    assert body["lines"] == [{"code": "CART-A", "location": "PRINCIPAL", "quantity": 3},
                            {"code": "CART-B", "location": "PRINCIPAL", "quantity": 3}]
    assert [(await sync_to_async(stock_of)(code)).reserved for code in ("CART-A", "CART-B")] == [3, 3]
    assert await view_read(storefront.raw_token, body["id"]) == body


async def test_a_short_cart_reserves_nothing_and_lists_every_short_line_as_the_view_does(storefront):
    for code, on_hand in (("CART-C", 30), ("CART-D", 2), ("CART-E", 1)):
        await sync_to_async(ProductFactory)(code=code, on_hand=on_hand)
    cart = {"lines": [{"code": "CART-E", "quantity": 2}, {"code": "CART-C", "quantity": 1},
                      {"code": "CART-D", "quantity": 5}]}
    served, delegated = served_and_delegated()

    fast = await post("/api/v1/reservations", cart, token=storefront.raw_token)
    view = await post("/api/v1/reservations", cart, token=storefront.raw_token, headers={"Idempotency-Key": "c-1"})

    assert served_and_delegated() == (served + 1, delegated + 1)
    assert fast[0] == view[0] == 409 and fast[1] == view[1]
    assert fast[1]["error"]["details"]["lines"] == [{"code": "CART-D", "requested": 5, "available": 2},
                                                     {"code": "CART-E", "requested": 2, "available": 1}]
    assert [(await sync_to_async(stock_of)(c)).reserved for c in ("CART-C", "CART-D", "CART-E")] == [0, 0, 0]


async def test_a_reservation_that_moves_the_alert_level_is_recorded_by_the_view(storefront):
    product = await sync_to_async(ProductFactory)(code="FAST-8", on_hand=7, low_stock_threshold=5)
    assert not await sync_to_async(AlertState.objects.filter(product=product).exists)()
    served, delegated = served_and_delegated()

    ok = await post("/stock/FAST-8/reserve", {"quantity": 1}, token=storefront.raw_token)  # 6 left: still ok
    low = await post("/stock/FAST-8/reserve", {"quantity": 2}, token=storefront.raw_token)  # 4 left: low

    assert ok[0] == 200 and low[0] == 200
    assert served_and_delegated() == (served + 1, delegated + 1)
    state = await sync_to_async(AlertState.objects.get)(product=product)
    assert state.level == "low"
    assert (await sync_to_async(stock_of)("FAST-8")).reserved == 3


async def test_a_reservation_that_moves_the_alert_level_at_another_location_is_recorded_there(storefront):
    from inventory.tests.factories import LocationFactory, stock_at_location

    product = await sync_to_async(ProductFactory)(code="FAST-9", on_hand=50, low_stock_threshold=5)
    store_b = await sync_to_async(LocationFactory)(code="FAST-B")
    await sync_to_async(stock_at_location)(product, store_b, on_hand=7)
    served, delegated = served_and_delegated()

    ok = await post("/stock/FAST-9/reserve", {"quantity": 1, "location": "FAST-B"}, token=storefront.raw_token)
    low = await post("/stock/FAST-9/reserve", {"quantity": 2, "location": "FAST-B"}, token=storefront.raw_token)

    assert ok[0] == 200 and low[0] == 200
    assert served_and_delegated() == (served + 1, delegated + 1)
    state = await sync_to_async(AlertState.objects.get)(product=product, location=store_b)
    assert state.level == "low"
    assert not await sync_to_async(AlertState.objects.filter(product=product).exclude(location=store_b).exists)()


async def test_a_burst_across_the_alert_levels_hands_the_view_one_request_per_crossing(storefront):
    product = await sync_to_async(ProductFactory)(code="FAST-RUSH", on_hand=40, low_stock_threshold=30)
    assert not await sync_to_async(AlertState.objects.filter(product=product).exists)()
    served, delegated = served_and_delegated()

    results = await asyncio.gather(*[
        post("/stock/FAST-RUSH/reserve", {"quantity": 1}, token=storefront.raw_token) for _ in range(60)])

    statuses = [status for status, _, _ in results]
    assert statuses.count(200) == 40 and statuses.count(409) == 20
    after = await sync_to_async(stock_of)("FAST-RUSH")
    assert (after.on_hand, after.reserved, after.available) == (40, 40, 0)
    assert await sync_to_async(reserved_drift)() == []
    # The 11th unit (ok -> low, 29 left) and the 40th (low -> out) are the view's, one request each;
    # every other ask waited for that answer and was settled by a later batch against the new level.
    assert served_and_delegated() == (served + 58, delegated + 2)
    assert (await sync_to_async(AlertState.objects.get)(product=product)).level == "out"


async def test_with_a_webhook_endpoint_the_view_writes_the_delivery(storefront):
    await sync_to_async(ProductFactory)(code="FAST-9", on_hand=9)
    await sync_to_async(endpoint_make)(event_types=["stock.changed"])
    assert await sync_to_async(WebhookDelivery.objects.count)() == 0
    served, delegated = served_and_delegated()

    status, _, _ = await post("/stock/FAST-9/reserve", {"quantity": 1}, token=storefront.raw_token)

    assert status == 200 and served_and_delegated() == (served, delegated + 1)
    assert await sync_to_async(WebhookDelivery.objects.filter(event_type="stock.changed").count)() == 1


async def test_a_client_over_its_rate_limit_gets_the_views_429(storefront, settings):
    await sync_to_async(ProductFactory)(code="FAST-10", on_hand=50)
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"client": "2/min"}}

    statuses = [(await post("/stock/FAST-10/reserve", None, token=storefront.raw_token))[0] for _ in range(3)]

    assert statuses[:2] == [200, 200] and statuses[2] == 429
    assert (await sync_to_async(stock_of)("FAST-10")).reserved == 2


async def test_a_valid_token_from_an_address_locked_out_for_unknown_tokens_gets_the_views_429(storefront, settings):
    await sync_to_async(ProductFactory)(code="FAST-12", on_hand=50)
    settings.TOKEN_FAILURE_LIMIT = 3
    wrong = [(await post("/stock/FAST-12/reserve", None, token=f"sp_guess{n}", address="10.9.0.1"))[0]
             for n in range(3)]

    locked = await post("/stock/FAST-12/reserve", None, token=storefront.raw_token, address="10.9.0.1")
    elsewhere = await post("/stock/FAST-12/reserve", None, token=storefront.raw_token, address="10.9.0.2")

    assert wrong == [401, 401, 429]
    assert locked[0] == 429 and locked[1]["error"]["code"] == "rate_limited" and "retry-after" in {k.lower() for k in locked[2]}
    assert elsewhere[0] == 200
    assert (await sync_to_async(stock_of)("FAST-12")).reserved == 1


@pytest.mark.slow
async def test_200_concurrent_requests_for_10_units_reserve_exactly_10(storefront):
    await sync_to_async(ProductFactory)(code="FAST-LAST", on_hand=10)
    assert (await sync_to_async(stock_of)("FAST-LAST")).available == 10
    served, delegated = served_and_delegated()

    results = await asyncio.gather(*[
        post("/stock/FAST-LAST/reserve", {"quantity": 1}, token=storefront.raw_token) for _ in range(200)])

    statuses = [status for status, _, _ in results]
    assert statuses.count(200) == 10 and statuses.count(409) == 190
    ids = {body["reservation_id"] for status, body, _ in results if status == 200}
    assert len(ids) == 10
    after = await sync_to_async(stock_of)("FAST-LAST")
    assert (after.on_hand, after.reserved, after.available) == (10, 10, 0)
    assert await sync_to_async(reserved_drift)() == []
    # The sixth unit (ok -> low) and the tenth (low -> out) move the alert level: the view reserved
    # those and recorded the level; the fast path answered the other 8 grants and the 190 refusals.
    assert served_and_delegated() == (served + 198, delegated + 2)
    assert (await sync_to_async(AlertState.objects.get)(product__code="FAST-LAST")).level == "out"
