"""ASGI fast path for the storefront's hottest requests, reservations, served without Django's request cycle.

``POST /api/v1/reservations`` and ``POST /stock/{sku}/reserve`` are answered here when the request
is plain: a bearer token of an active client with the ``reserve`` scope from an address not locked
out for unknown tokens (core/security.py), no Idempotency-Key, a JSON body the service accepts, no
webhook endpoint to feed, the client within its rate limit, and an ask
that the service's plain statements can settle: reserved, or short (409 ``insufficient_stock``
listing the short lines with the real available quantities, as the view says it).

Concurrent plain requests on one server loop are answered in batches: while one batch is with
Redis and PostgreSQL, the next gathers. Each batch costs one pipelined rate-limit round trip and one
transaction (``reservations.services.reservation_create_batch_async``), whatever its size, so under
load the cost per reservation falls instead of the queue on the hot rows growing.

An ask that would move a product's alert level (ok to low, low to out) is the view's: it records the
level and the drivers' alerts in the same transaction. On each server loop one such request per
product goes to the view at a time; the asks on that product that its batch left unsettled meanwhile
wait for that answer and then go to a later batch, which judges them against the level the view
recorded. (Handed over all at once, a rush's asks would queue on the product's row lock, each
holding a database connection, until the pool ran dry.)

Every other case, other errors included, is handed to the Django view with its body untouched, and
the view answers it with the full rules. So the fast path has no answer of its own that the view
would give differently; it only skips, for the common cases, the thread hop, middleware, DRF and ORM
work that cost most of a reservation's CPU. (A rush on a product's last units ends in a flood of
short answers: given by the view, each would queue on the product's row lock for its turn.)
"""
import asyncio
import json
import re
import time
import weakref
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import translation

from core import aio
from core.auth import api_client_cached, api_client_for_token
from core.errors import DomainError, domain_error_body
from core.i18n import language_from_accept
from core.jsoninput import json_input_loads
from core.logging import request_id_var
from core.metrics import RESERVATION_BATCH_SECONDS, RESERVATION_BATCH_SIZE, RESERVATION_FAST_PATH
from core.middleware import request_id_from, request_observe
from core.realtime import realtime_claim_any
from core.security import scope_client_address, token_lockout_active_async, token_lockout_checks_drain
from core.throttling import client_rates_allow_async
from reservations import services
from reservations.views import reservation_output, stock_reserve_output
from webhooks.selectors import endpoints_active_cached, endpoints_active_peek

RESERVATIONS_PATH = "/api/v1/reservations"
# Route labels as Django's resolver reports them, so metrics and logs read the same on both paths.
RESERVATIONS_ROUTE = "api/v1/reservations"
STOCK_RESERVE_ROUTE = "stock/<str:sku>/reserve"
# No NUL in the code: PostgreSQL cannot compare it, so such a path is the view's (a 400 there).
_STOCK_RESERVE_PATH = re.compile(r"^/stock/([^/\x00]+)/reserve$")
# Bigger bodies are not a plain one-code reservation: the view reads and judges them.
MAX_BODY_BYTES = 16 * 1024
# Asks per batch: bounds one transaction's work and the rows it locks.
MAX_BATCH = 256
# An unsettled ask goes back to a batch at most this often before the view takes it, and waits at
# most this long for the request the view has for its product: bounds, not expected figures.
UNSETTLED_ROUNDS = 4
UNSETTLED_WAIT_SECONDS = 5.0

# What Django's middleware adds to every API response (security, LocaleMiddleware's Vary: DRF adds
# none with one renderer), sent here too, with the Content-Language of the answer.
_COMMON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"vary", b"Accept-Language"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class ReservationFastPath:
    """Wraps the HTTP application; everything but the two reservation routes passes straight through."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not settings.RESERVATION_FAST_PATH:
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == RESERVATIONS_PATH:
            route, sku = RESERVATIONS_ROUTE, None
        else:
            match = _STOCK_RESERVE_PATH.match(path)
            if match is None:
                return await self.app(scope, receive, send)
            route, sku = STOCK_RESERVE_ROUTE, match.group(1)

        started = time.perf_counter()
        body, complete, disconnected = await _body_read(receive)
        if disconnected:
            return
        answer = None
        if complete:
            request_id = request_id_from(_header(scope, b"x-request-id"))
            language = language_from_accept(_header(scope, b"accept-language"))
            token = request_id_var.set(request_id)
            try:
                answer = await _reserve(scope, sku=sku, body=body, language=language)
            finally:
                request_id_var.reset(token)
            if answer is not None and not isinstance(answer, _Handover):
                status, payload = answer
                await _respond(send, status, payload, request_id, language)
                RESERVATION_FAST_PATH.labels("served").inc()
                request_observe(method="POST", path=path, route=route, status=status, request_id=request_id,
                                elapsed=time.perf_counter() - started)
                return
        RESERVATION_FAST_PATH.labels("delegated").inc()
        try:
            await self.app(scope, _replaying(body, complete, receive), send)
        finally:
            if isinstance(answer, _Handover):
                answer.done()


async def _body_read(receive) -> tuple[bytes, bool, bool]:
    """(body so far, whether it is complete, whether the client went away)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False, True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True, False
        if size > MAX_BODY_BYTES:
            return b"".join(chunks), False, False


def _replaying(body: bytes, complete: bool, receive):
    """A receive callable that gives the view the body already read, then the connection's own messages."""
    pending = [{"type": "http.request", "body": body, "more_body": not complete}]

    async def replay():
        if pending:
            return pending.pop()
        return await receive()

    return replay


def _header(scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


async def _respond(send, status: int, payload: dict[str, Any], request_id: str, language: str) -> None:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = [*_COMMON_HEADERS, (b"content-length", str(len(body)).encode()),
               (b"content-language", language.encode()), (b"x-request-id", request_id.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_lines(sku: str | None, data: dict[str, Any]) -> tuple[Any, timedelta | None, Any, Any] | None:
    """(lines, ttl, reference, location) as the view would pass them to the service; None where the
    view must judge (an "auto" cart among them: its rule needs the locking path)."""
    try:
        ttl = services.ttl_from_seconds(data.get("ttl_seconds"))
    except DomainError:
        return None
    location = data.get("location")
    if isinstance(location, str) and location.strip().upper() == services.AUTO:
        return None
    if "locations" in data or "allow_split" in data:
        return None
    if not data.keys() <= (services.CART_FIELDS if sku is None else services.STOCK_RESERVE_FIELDS):
        return None  # the view names the unknown keys
    if sku is not None:
        return [{"code": sku, "quantity": data.get("quantity", 1)}], ttl, "", location
    reference = data.get("reference") or ""
    if not isinstance(data.get("lines"), list) or not isinstance(reference, str):
        return None
    return data["lines"], ttl, reference, location


class _Handover:
    """The one request on this loop that the view has for these products' unsettled asks; the
    asks that find it wait for ``done`` (called once the view has answered)."""

    def __init__(self, codes: tuple[str, ...]) -> None:
        self.codes = codes
        self.answered = asyncio.Event()
        handovers = _handovers_of_loop()
        for code in codes:
            handovers.setdefault(code, self)

    def done(self) -> None:
        handovers = _handovers_of_loop()
        for code in self.codes:
            if handovers.get(code) is self:
                del handovers[code]
        self.answered.set()


_handovers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Handover]]" = weakref.WeakKeyDictionary()


def _handovers_of_loop() -> dict[str, _Handover]:
    return _handovers.setdefault(asyncio.get_running_loop(), {})


async def _settled(ask: "services.ReservationAsk") -> "services.ReservationOutcome | _Handover":
    """The ask's outcome from a batch; while it comes back unsettled, it waits for the request the
    view has for its products and tries a later batch, or becomes that request itself."""
    for _ in range(UNSETTLED_ROUNDS):
        outcome = await _batches.call(ask)
        if not isinstance(outcome, services.ReservationUnsettled):
            return outcome
        handovers = _handovers_of_loop()
        pending = next((handovers[code] for code in outcome.codes if code in handovers), None)
        if pending is None:
            return _Handover(outcome.codes)
        try:
            await asyncio.wait_for(pending.answered.wait(), UNSETTLED_WAIT_SECONDS)
        except TimeoutError:
            return None
    return None


async def _reserve(scope, *, sku: str | None, body: bytes,
                   language: str) -> tuple[int, dict[str, Any]] | _Handover | None:
    """(status, body) when the fast path can answer exactly as the view would, its message in
    ``language``; None, or a _Handover for the request the view has for an unsettled ask's products,
    to hand it over."""
    if _header(scope, b"idempotency-key"):
        return None
    # A language cookie outranks Accept-Language in LocaleMiddleware: such a rare request is the view's.
    if settings.LANGUAGE_COOKIE_NAME in _header(scope, b"cookie"):
        return None
    scheme, _, raw_token = _header(scope, b"authorization").partition(" ")
    if scheme.lower() != "bearer" or not raw_token.strip():
        return None
    # An address locked out for unknown tokens gets its 429 from the view, a valid token included,
    # and no token of it is looked up.
    if await token_lockout_active_async(scope_client_address(scope)):
        return None
    client = api_client_cached(raw_token.strip())
    if client is None:
        # Refill the per-process cache here rather than hand the request over: with many clients a
        # hand-over every few seconds each is enough to fill the latency tail.
        try:
            client = await aio.sync_read(api_client_for_token, raw_token.strip())
        except DatabaseError:
            return None  # PostgreSQL unreachable: the view answers (503 with Retry-After)
    if client is None or not client.has_scope("reserve"):
        return None
    # A client limited to some locations: the view checks each line's location against them.
    if client.location_codes:
        return None
    if body and not _header(scope, b"content-type").lower().startswith("application/json"):
        return None
    try:
        data = json_input_loads(body) if body else {}
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    asked = _request_lines(sku, data)
    if asked is None:
        return None
    try:
        cleaned, ttl, reference = services.reservation_input_clean(lines=asked[0], ttl=asked[1], reference=asked[2],
                                                                   location=asked[3])
    except DomainError:
        return None
    endpoints = endpoints_active_peek()
    if endpoints is None:
        try:
            endpoints = await aio.sync_read(endpoints_active_cached)
        except DatabaseError:
            return None
    if endpoints:
        return None

    ask = services.ReservationAsk(client=client, lines=tuple(cleaned), ttl=ttl, reference=reference)
    try:
        reservation = await _settled(ask)
    except Exception:
        # Logged by the batcher; the view answers this request afresh.
        return None
    if reservation is None or isinstance(reservation, _Handover):
        return reservation
    if isinstance(reservation, services.ReservationShort):
        error = reservation.error()
        with translation.override(language):
            return error.status, domain_error_body(error)
    if sku is None:
        return 201, reservation_output(reservation)
    return 200, stock_reserve_output(reservation)


async def _batch_flush(asks: list[services.ReservationAsk]) -> list[Any]:
    """One batch: the rate limits of all its requests in one round trip, then one transaction for
    those within their limits. Per ask, the service's outcome (a reservation, or short); None means
    "hand it to the view" (over the limit, PostgreSQL unavailable, or not granted for
    another reason): the view gives the full answer."""
    RESERVATION_BATCH_SIZE.observe(len(asks))
    with RESERVATION_BATCH_SECONDS.time():
        return await _batch_answer(asks)


async def _batch_answer(asks: list[services.ReservationAsk]) -> list[Any]:
    # Redis down is no refusal: the rate check falls back to this process's counts (core/throttling.py).
    allowed = await client_rates_allow_async(aio.redis_client(), [ask.client for ask in asks])
    within = [ask for ask, ok in zip(asks, allowed) if ok]
    # Its statement commits on its own: until its events are handed over, no later stock event of
    # this process may leave before them (core/publish_order.py).
    with realtime_claim_any():
        created = iter(await services.reservation_create_batch_async(asks=within))
    return [next(created) if ok else None for ok in allowed]


_batches = aio.LoopBatcher("reservation-batches", _batch_flush, max_batch=MAX_BATCH)


async def reservation_batches_drain() -> None:
    """Answer what is pending on this loop and stop its batching tasks (tests, before their loop ends)."""
    await token_lockout_checks_drain()
    await _batches.drain()
