"""Writes for reservations: create (all lines or none), confirm into sales, release, extend and expire."""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
from django.conf import settings
from django.db import connection
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core import aio
from core.db import atomic_with_retry
from core.errors import Conflict, Gone, InsufficientStock, NotFound, UnknownCode, ValidationFailed
from core.idempotency import idempotency_key_clean, idempotent_first, request_fingerprint
from core.jsoninput import fields_unknown_refuse
from core.models import ApiClient
from inventory.codes import code_normalise
from inventory.locks import StockKey, stocks_lock
from inventory.models import Location, MovementKind, Product, Stock
from inventory.selectors import (
    client_location_codes,
    client_locations_check,
    location_default,
    locations_for_client,
    locations_resolve_many,
    products_resolve_many,
)
from inventory.services import StockChange, quantity_validate, stock_apply, stock_rows_lock
from inventory.stock_changes import stock_rows_changed, stock_rows_committed_soon
from reservations.locks import reservation_lock, reservations_due_lock
from reservations.models import Reservation, ReservationLine, ReservationStatus
from reservations.selectors import reservation_id_parse

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- input checks

_TTL_NOT_WHOLE = gettext_lazy("ttl_seconds must be a whole number of seconds.")


def _ttl_bounds_check(seconds: float) -> None:
    low, high = settings.RESERVATION_MIN_TTL_SECONDS, settings.RESERVATION_MAX_TTL_SECONDS
    if not low <= seconds <= high:
        raise ValidationFailed(_("ttl_seconds must be between %(min)s and %(max)s.") % {"min": low, "max": high},
                               details={"ttl_seconds": seconds, "min": low, "max": high})


def ttl_from_seconds(seconds: object) -> timedelta | None:
    """``ttl_seconds`` as a request gives it: None (the default applies) or a duration within the bounds.
    ValidationFailed otherwise, judged on the number itself: a timedelta of 10**30 s cannot be built."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ValidationFailed(_TTL_NOT_WHOLE, details={"ttl_seconds": seconds})
    _ttl_bounds_check(seconds)
    return timedelta(seconds=seconds)


def ttl_validate(ttl: object) -> timedelta:
    """The TTL asked for, or the default; ValidationFailed outside the configured bounds."""
    if ttl is None:
        return timedelta(seconds=settings.RESERVATION_DEFAULT_TTL_SECONDS)
    if not isinstance(ttl, timedelta):
        raise ValidationFailed(_TTL_NOT_WHOLE, details={"ttl_seconds": str(ttl)})
    _ttl_bounds_check(ttl.total_seconds())
    return ttl


AUTO = "AUTO"  # ``"location": "auto"``: the service picks the location (reservation_locations_pick)

# The keys a cart, the seed's one-SKU reserve and a line may carry. Any other key is refused, not ignored:
# a misspelt "locations" or a line's "loc" would otherwise reserve somewhere the client did not mean.
CART_FIELDS = frozenset({"lines", "location", "locations", "allow_split", "ttl_seconds", "reference"})
STOCK_RESERVE_FIELDS = frozenset({"quantity", "location", "ttl_seconds"})
LINE_FIELDS = frozenset({"code", "quantity", "location"})


def _location_validate(value: object, *, field_name: str) -> str | None:
    """A location code as asked (normalised; AUTO for "auto"), None when not given."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(_("%(field)s must be a location code.") % {"field": field_name},
                               details={field_name: value})
    return code_normalise(value)


def _lines_validate(lines: object, *, location: str | None = None) -> list[tuple[str, int, str | None]]:
    """[(normalised code, quantity, location code or None)] in the order given, or ValidationFailed
    naming the bad line. A line's own location wins over the cart's ``location``."""
    if not isinstance(lines, list | tuple) or not lines:
        raise ValidationFailed(_("A reservation needs at least one line."), details={"lines": "required"})
    if len(lines) > settings.RESERVATION_MAX_LINES:
        raise ValidationFailed(_("A reservation has at most %(max)d lines.") % {"max": settings.RESERVATION_MAX_LINES},
                               details={"lines": len(lines), "max": settings.RESERVATION_MAX_LINES})
    cleaned = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict) or not isinstance(line.get("code"), str) or not line["code"].strip():
            raise ValidationFailed(_("lines[%(index)d] needs a code.") % {"index": index},
                                   details={f"lines[{index}].code": "required"})
        fields_unknown_refuse(line, allowed=LINE_FIELDS, where=f"lines[{index}].")
        quantity = quantity_validate(line.get("quantity"), field_name=f"lines[{index}].quantity")
        line_location = _location_validate(line.get("location"), field_name=f"lines[{index}].location")
        if line_location == AUTO:
            raise ValidationFailed(_('"auto" is asked for the whole cart: {"location": "auto", "lines": [...]}.'),
                                   details={f"lines[{index}].location": line.get("location")})
        cleaned.append((code_normalise(line["code"]), quantity, line_location or location))
    return cleaned


def _fingerprint(lines: list[tuple[str, int, str | None]], ttl: timedelta | None, reference: str,
                 placement: "LocationChoice | None" = None) -> str:
    merged: dict[tuple[str, str], int] = {}
    for code, quantity, location in lines:
        key = (code, location or "")
        merged[key] = merged.get(key, 0) + quantity
    body = {"lines": sorted([list(k) + [q] for k, q in merged.items()]),
            "ttl": ttl.total_seconds() if ttl else None, "reference": reference}
    if placement is not None:
        body["placement"] = [list(placement.preference), placement.allow_split]
    return request_fingerprint(body)


# ---------------------------------------------------------------- events and helpers

def reservation_event(kind: str, reservation: Reservation, lines: list[ReservationLine], *,
                      at: datetime) -> dict[str, Any]:
    """A dashboard feed event; carries no customer data (no client, no reference)."""
    return {
        "type": f"reservation.{kind}",
        "reservation_id": str(reservation.pk),
        "lines": [{"code": line.product.code, "location": line.location.code, "quantity": line.quantity}
                  for line in lines],
        "at": at.isoformat(),
    }


def reservation_lines_attach(reservation: Reservation, lines: list[ReservationLine]) -> Reservation:
    """Give the reservation its lines as if prefetched, so callers serialize it without another query."""
    for line in lines:
        line.reservation = reservation
    cached = ReservationLine.objects.none()
    cached._result_cache = sorted(lines, key=lambda line: (line.product.code, line.location.code))
    cached._prefetch_done = True
    reservation._prefetched_objects_cache = {"lines": cached}
    return reservation


def _lines_load(reservation: Reservation) -> list[ReservationLine]:
    return list(reservation.lines.select_related("product", "location").order_by("product__code", "location__code"))


def _actor(client: ApiClient | None, actor: str) -> str:
    if actor:
        return actor
    return f"client:{client.name}" if client is not None else "system"


def _reservation_close(reservation: Reservation, lines: list[ReservationLine], *, status: str, now: datetime,
                       actor: str) -> None:
    """Give the reserved units back and close a locked active reservation as released or expired."""
    changes = [
        StockChange(product_id=line.product_id, location_id=line.location_id, reserved=-line.quantity,
                    reservation_id=reservation.pk)
        for line in lines
    ]
    stock_apply(changes=changes, actor=actor)
    reservation.status = status
    reservation.closed_at = now
    reservation.save(update_fields=["status", "closed_at", "updated_at"])
    kind = "released" if status == ReservationStatus.RELEASED else "expired"
    stock_rows_changed(stocks=[], extra_events=[reservation_event(kind, reservation, lines, at=now)])


def _locked_or_404(reservation_id: object, client: ApiClient | None,
                   scope: object = None) -> tuple[Reservation, list[ReservationLine]]:
    """The client's reservation (within the scope's locations), locked, and its lines (also attached to
    it); NotFound otherwise."""
    reservation = reservation_lock(reservation_id=reservation_id_parse(reservation_id), client=client, scope=scope)
    if reservation is None:
        raise NotFound(_("No such reservation."), details={"id": str(reservation_id)})
    lines = _lines_load(reservation)
    reservation_lines_attach(reservation, lines)
    return reservation, lines


# ---------------------------------------------------------------- create

def _idempotent_replay(*, client: ApiClient | None, key: str, fingerprint: str) -> Reservation | None:
    """The reservation this client already made with this key, its lines attached."""
    existing = idempotent_first(model=Reservation, client=client, key=key, fingerprint=fingerprint,
                                kind="reservation")
    if existing is not None:
        reservation_lines_attach(existing, _lines_load(existing))
    return existing


def _short_entry(code: str, requested: int, available: int, location: str) -> dict[str, Any]:
    """One line of an InsufficientStock answer; ``location`` only where it is not the default one, so a
    single-store client reads the answer it always did."""
    entry = {"code": code, "requested": requested, "available": available}
    if location != settings.DEFAULT_LOCATION_CODE:
        entry["location"] = location
    return entry


def _short_line(stock: Stock, requested: int) -> dict[str, Any]:
    return _short_entry(stock.product.code, requested, max(stock.on_hand - stock.reserved, 0), stock.location.code)


# Plain reservations, one or many at once (the ASGI fast path gathers those of concurrent requests
# into one batch), in one transaction of two statements sent together in one round trip:
#
# 1. RESERVE_LOCK_SQL resolves the codes (aliases too) and locks their Stock rows in pk order.
# 2. RESERVE_BATCH_SQL then reads everything fresh (READ COMMITTED takes a new snapshot per
#    statement, so the alert levels it reads are those committed by whoever held the locks before).
#    It merges each ask's lines per product, and judges the asks in order, each as if every ask
#    before it had been granted: an ask is granted when every one of its lines fits in the available
#    units and moves no alert level (notifications.services.level_for, in SQL). Judging against
#    more than is really taken can only refuse, never oversell. It bumps each changed Stock row once
#    (reserved by the batch's total, version by one), inserts the granted reservations and their
#    lines, and returns one row per line of every ask whose codes all name active products: with its
#    reservation line and stock row when granted, and always with the units left after the batch.
#
# An ask that is not granted wrote nothing. If some of its lines want more than is left after the
# batch, it is short at this transaction's commit: the answer is "insufficient stock" listing those
# lines with the real available quantity, as the locking path gives it. Otherwise (an unknown or
# inactive code, an alert level to record, or judged behind an ask that took the units) the caller
# takes the general path for it, which finds out exactly why and records the alert transition.
# Statements are sent as text with their parameters bound client-side (psycopg's ClientCursor),
# which is what lets both go in one message.

# The active product a code names, itself or through a unified code (the product first): for one
# ``c.code`` of the caller's FROM, as index lookups whatever the planner thinks of the tables' sizes.
_RESERVE_PRODUCT = """
    SELECT p.id, p.code, p.name, p.category, p.low_stock_threshold
      FROM inventory_product p WHERE p.code = c.code AND p.active
    UNION ALL
    SELECT p.id, p.code, p.name, p.category, p.low_stock_threshold
      FROM inventory_unifiedcode u JOIN inventory_product p ON p.id = u.product_id
     WHERE u.code = c.code AND p.active
    LIMIT 1
"""
# The Stock row of one product (p) at one location code (c.loc), when the location is active.
_RESERVE_STOCK = """
    SELECT st.id, st.on_hand, st.reserved, lo.id AS location_id, lo.code AS location_code
      FROM inventory_location lo JOIN inventory_stock st ON st.location_id = lo.id AND st.product_id = p.id
     WHERE lo.code = c.loc AND lo.active
"""
RESERVE_LOCK_SQL = f"""
SELECT count(*) FROM (
    SELECT st.id FROM inventory_stock st
     WHERE st.id = ANY(ARRAY(
         SELECT st.id FROM (SELECT DISTINCT code, loc FROM unnest(%(line_codes)s::text[], %(line_locs)s::text[])
                            AS c(code, loc)) c
          CROSS JOIN LATERAL ({_RESERVE_PRODUCT}) p
          CROSS JOIN LATERAL ({_RESERVE_STOCK}) st))
     ORDER BY st.id FOR UPDATE OF st
) locked
"""
RESERVE_BATCH_SQL = f"""
WITH ask AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(client_ids)s::bigint[], %(expires)s::timestamptz[], %(refs)s::text[],
                         %(keys)s::text[], %(fingerprints)s::text[])
           WITH ORDINALITY AS a(id, client_id, expires_at, reference, idempotency_key, fingerprint, ord)
), line AS (
    SELECT * FROM unnest(%(line_asks)s::bigint[], %(line_codes)s::text[], %(line_locs)s::text[],
                         %(line_qtys)s::bigint[]) AS l(ord, code, loc, qty)
), product AS (
    SELECT c.code AS asked_code, c.loc AS asked_loc, p.id AS product_id, p.code AS product_code, p.name,
           p.category, p.low_stock_threshold, st.id AS stock_id, st.on_hand, st.reserved, st.location_id,
           st.location_code, COALESCE(al.level, 'ok') AS level
      FROM (SELECT DISTINCT code, loc FROM line) c
     CROSS JOIN LATERAL ({_RESERVE_PRODUCT}) p
     CROSS JOIN LATERAL ({_RESERVE_STOCK}) st
      LEFT JOIN LATERAL (SELECT level FROM notifications_alertstate
                          WHERE product_id = p.id AND location_id = st.location_id) al ON true
), complete AS (
    SELECT l.ord FROM line l LEFT JOIN product p ON p.asked_code = l.code AND p.asked_loc = l.loc
     GROUP BY l.ord HAVING bool_and(p.product_id IS NOT NULL)
), merged AS (
    SELECT l.ord, p.product_id, p.product_code, p.name, p.category, p.low_stock_threshold, p.stock_id,
           p.location_id, p.location_code, p.on_hand, p.reserved, p.level, sum(l.qty)::bigint AS qty
      FROM line l JOIN complete USING (ord) JOIN product p ON p.asked_code = l.code AND p.asked_loc = l.loc
     GROUP BY l.ord, p.product_id, p.product_code, p.name, p.category, p.low_stock_threshold, p.stock_id,
              p.location_id, p.location_code, p.on_hand, p.reserved, p.level
), judged AS (
    SELECT m.*, m.on_hand - m.reserved - sum(m.qty) OVER (PARTITION BY m.stock_id ORDER BY m.ord) AS left_after
      FROM merged m
), granted AS (
    SELECT a.* FROM ask a JOIN (
        SELECT j.ord FROM judged j GROUP BY j.ord
        HAVING bool_and(j.left_after >= 0 AND j.level = CASE
                   WHEN j.left_after <= 0 THEN 'out'
                   WHEN j.left_after < j.low_stock_threshold THEN 'low'
                   WHEN j.level <> 'ok' AND j.left_after < j.low_stock_threshold + %(margin)s THEN 'low'
                   ELSE 'ok' END)
    ) fits USING (ord)
), totals AS (
    SELECT j.stock_id, sum(j.qty)::bigint AS qty FROM judged j JOIN granted USING (ord) GROUP BY j.stock_id
), s AS (
    UPDATE inventory_stock st
       SET reserved = st.reserved + t.qty, version = st.version + 1, updated_at = %(now)s
      FROM totals t
     WHERE st.id = t.stock_id
 RETURNING st.id, st.on_hand, st.reserved, st.version
), r AS (
    INSERT INTO reservations_reservation
           (id, client_id, status, expires_at, reference, idempotency_key, request_fingerprint,
            created_at, updated_at, closed_at)
    SELECT id, client_id, 'active', expires_at, reference, idempotency_key, fingerprint, %(now)s, %(now)s, NULL
      FROM granted
 RETURNING id
), l AS (
    INSERT INTO reservations_reservationline (reservation_id, product_id, location_id, quantity)
    SELECT g.id, j.product_id, j.location_id, j.qty FROM judged j JOIN granted g USING (ord) JOIN r ON r.id = g.id
 RETURNING id, reservation_id, product_id, location_id
)
SELECT j.ord, l.id, j.product_id, j.product_code, j.name, j.category, j.low_stock_threshold, j.qty,
       s.id, s.on_hand, s.reserved, s.version, (j.on_hand - j.reserved - COALESCE(t.qty, 0))::bigint,
       j.location_id, j.location_code
  FROM judged j
  LEFT JOIN totals t ON t.stock_id = j.stock_id
  LEFT JOIN granted g USING (ord)
  LEFT JOIN l ON l.reservation_id = g.id AND l.product_id = j.product_id AND l.location_id = j.location_id
  LEFT JOIN s ON s.id = j.stock_id AND l.id IS NOT NULL
"""
RESERVE_SQL = RESERVE_LOCK_SQL + ";" + RESERVE_BATCH_SQL


@dataclass(frozen=True)
class ReservationAsk:
    """One asked reservation, inputs already clean (``reservation_input_clean``): lines as (code, quantity,
    location code or None for the default location)."""

    client: ApiClient | None
    lines: tuple[tuple[str, int, str | None], ...]
    ttl: timedelta
    reference: str = ""


@dataclass(frozen=True)
class ReservationShort:
    """An ask that was short at its batch's commit: the ``InsufficientStock`` lines the locking path gives."""

    lines: tuple[tuple[str, int, int, str], ...]  # (code, requested, available, location), by code

    def error(self) -> InsufficientStock:
        return InsufficientStock(lines=[_short_entry(code, requested, available, location)
                                        for code, requested, available, location in self.lines])


@dataclass(frozen=True)
class ReservationUnsettled:
    """An ask its batch neither granted nor found short: it would move a product's alert level (which
    the locking path records), or it was judged behind an ask that took nothing. A later batch, once
    the level is recorded, or the locking path settles it. ``codes``: its products' codes."""

    codes: tuple[str, ...]


ReservationOutcome = Reservation | ReservationShort | ReservationUnsettled | None


def _reserve_params(reservations: list[Reservation], asks: list[ReservationAsk], now: datetime) -> dict[str, Any]:
    """The parameters of RESERVE_SQL for these (unsaved) reservations, one per ask."""
    line_asks, line_codes, line_locs, line_qtys = [], [], [], []
    for ordinal, ask in enumerate(asks, start=1):
        for code, quantity, *where in ask.lines:
            location = where[0] if where else None  # (code, quantity) lines are at the default location
            line_asks.append(ordinal)
            line_codes.append(code)
            line_locs.append(location or settings.DEFAULT_LOCATION_CODE)
            line_qtys.append(quantity)
    return {
        "ids": [r.pk for r in reservations], "client_ids": [r.client_id for r in reservations],
        "expires": [r.expires_at for r in reservations], "refs": [r.reference for r in reservations],
        "keys": [r.idempotency_key for r in reservations], "fingerprints": [r.request_fingerprint for r in reservations],
        "line_asks": line_asks, "line_codes": line_codes, "line_locs": line_locs, "line_qtys": line_qtys,
        "now": now, "margin": settings.ALERT_HYSTERESIS_MARGIN,
    }


def _reserve_results(rows: list[tuple], reservations: list[Reservation],
                     asks: list[ReservationAsk]) -> tuple[list[ReservationOutcome], list[Stock]]:
    """(per ask: its reservation with its lines attached, ReservationShort, ReservationUnsettled, or
    None (some code unknown or inactive) for the general path; the changed Stock rows as now)."""
    per_ask: dict[int, list[tuple]] = {}
    for row in rows:
        per_ask.setdefault(row[0] - 1, []).append(row)
    outcomes: list[ReservationOutcome] = [None] * len(asks)
    stocks: dict[int, Stock] = {}
    for index, ask_rows in per_ask.items():
        if ask_rows[0][1] is None:  # not granted: short, or unsettled
            short = tuple(sorted((code, qty, max(left, 0), loc_code)
                                 for _, _, _, code, _, _, _, qty, _, _, _, _, left, _, loc_code
                                 in ask_rows if qty > left))
            outcomes[index] = (ReservationShort(lines=short) if short
                               else ReservationUnsettled(codes=tuple(sorted({row[3] for row in ask_rows}))))
            continue
        reservation = reservations[index]
        lines = []
        for (_ordinal, line_id, product_id, code, name, category, threshold, qty, stock_id, on_hand, reserved,
             version, _left, location_id, location_code) in ask_rows:
            stock = stocks.get(stock_id)
            if stock is None:
                product = Product(id=product_id, code=code, name=name, category=category,
                                  low_stock_threshold=threshold, active=True)
                location = Location(id=location_id, code=location_code)
                stock = stocks[stock_id] = Stock(id=stock_id, product=product, location=location, on_hand=on_hand,
                                                 reserved=reserved, version=version)
            lines.append(ReservationLine(id=line_id, reservation=reservation, product=stock.product,
                                         location=stock.location, quantity=qty))
        reservation.replayed = False
        outcomes[index] = reservation_lines_attach(reservation, lines)
    return outcomes, list(stocks.values())


def _reserve_plain(*, reservation: Reservation, lines: list[tuple[str, int, str | None]]) -> list[Stock] | None:
    """One ask through RESERVE_SQL, inside the caller's transaction: the changed Stock rows, with the
    reservation's lines attached to it; raises InsufficientStock when short. None when nothing was
    reserved for another reason: the caller then takes the general path, which finds out exactly why."""
    ask = ReservationAsk(client=reservation.client, lines=tuple(lines),
                         ttl=reservation.expires_at - reservation.created_at, reference=reservation.reference)
    with connection.cursor() as cursor:
        cursor.execute(RESERVE_SQL, _reserve_params([reservation], [ask], reservation.created_at))
        cursor.nextset()  # past the lock statement's count
        rows = cursor.fetchall()
    (outcome,), stocks = _reserve_results(rows, [reservation], [ask])
    if isinstance(outcome, ReservationShort):
        raise outcome.error()
    return stocks if isinstance(outcome, Reservation) else None


async def reservation_create_batch_async(*, asks: list[ReservationAsk]) -> list[ReservationOutcome]:
    """Many plain reservations in one transaction and one round trip, from async code on a server
    loop (the ASGI fast path), on that loop's pool.

    The caller has checked that no webhook endpoint is active. The transaction commits on its own,
    then the events (one ``stock.changed`` per changed product, one ``reservation.created`` per
    reservation) and the projection recomputes go to the loop's batches. Per ask: its reservation;
    a ReservationShort when some line wanted more than was left; a ReservationUnsettled when it
    would move an alert level (or was judged behind an ask that took nothing); or None when some
    code is unknown or inactive or the statements could not run (nothing was written for it either
    way): the caller then takes the general path for it, which finds out why.
    """
    if not asks:
        return []
    now = timezone.now()
    reservations = [reservation_new(client=a.client, ttl=a.ttl, reference=a.reference, now=now) for a in asks]
    try:
        pool = await aio.db_pool()
        async with pool.connection() as conn:
            cursor = psycopg.AsyncClientCursor(conn)
            # Autocommit connection: the two statements of one message run as one implicit transaction.
            await cursor.execute(RESERVE_SQL, _reserve_params(reservations, asks, now))
            cursor.nextset()
            rows = await cursor.fetchall()
    except psycopg.Error:
        logger.warning("reservations could not run on the async pool", exc_info=True)
        return [None] * len(asks)
    outcomes, stocks = _reserve_results(rows, reservations, asks)
    if stocks:
        events = [reservation_event("created", r, r.lines.all(), at=now) for r in outcomes
                  if isinstance(r, Reservation)]
        stock_rows_committed_soon(stocks=stocks, extra_events=events)
    return outcomes


def _create_many_lines(*, reservation: Reservation, wanted: dict[StockKey, int],
                       stocks: dict[StockKey, Stock]) -> tuple[list[ReservationLine], list[Stock]]:
    """Check every line against its locked Stock row, then reserve all of them or none."""
    short = [_short_line(stocks[key], qty) for key, qty in wanted.items()
             if stocks[key].on_hand - stocks[key].reserved < qty]
    if short:
        raise InsufficientStock(lines=sorted(short, key=lambda line: (line["code"], line.get("location", ""))))
    rows = sorted((stocks[key] for key in wanted), key=lambda stock: stock.pk)
    delta = Case(*[When(pk=stock.pk, then=Value(wanted[(stock.product_id, stock.location_id)])) for stock in rows],
                 default=Value(0))
    Stock.objects.filter(pk__in=[stock.pk for stock in rows]).update(
        reserved=F("reserved") + delta, version=F("version") + 1, updated_at=reservation.created_at,
    )
    for stock in rows:
        stock.reserved += wanted[(stock.product_id, stock.location_id)]
        stock.version += 1
    reservation.save(force_insert=True)
    lines = ReservationLine.objects.bulk_create(
        [ReservationLine(reservation=reservation, product=stocks[key].product, location=stocks[key].location,
                         quantity=qty) for key, qty in wanted.items()]
    )
    return lines, rows


@dataclass(frozen=True)
class LocationChoice:
    """``"location": "auto"``: the locations to try, in order (empty: every active one the client may
    use, the default first, then by code), and whether a line may be split between them."""

    preference: tuple[str, ...] = ()
    allow_split: bool = False


def location_choice_clean(*, locations: object, allow_split: object) -> LocationChoice:
    """The preference list and split flag of an "auto" cart, or ValidationFailed."""
    if locations is None:
        locations = []
    if not isinstance(locations, list | tuple) or not all(isinstance(c, str) and c.strip() for c in locations):
        raise ValidationFailed(_("locations must be a list of location codes."), details={"locations": locations})
    if len(locations) > settings.RESERVATION_MAX_LOCATIONS:
        raise ValidationFailed(_("At most %(max)d locations can be listed.") % {"max": settings.RESERVATION_MAX_LOCATIONS},
                               details={"locations": len(locations), "max": settings.RESERVATION_MAX_LOCATIONS})
    if not isinstance(allow_split, bool):
        raise ValidationFailed(_("allow_split must be true or false."), details={"allow_split": allow_split})
    return LocationChoice(preference=tuple(dict.fromkeys(code_normalise(c) for c in locations)),
                          allow_split=allow_split)


def _candidates(choice: LocationChoice, client: ApiClient | None) -> list[Location]:
    if choice.preference:
        places = locations_resolve_many(codes=choice.preference)
        client_locations_check(client=client, locations=places)
        return places
    return locations_for_client(client=client)


def reservation_locations_pick(*, wanted: dict[int, int], places: list[Location],
                               stocks: dict[StockKey, Stock], allow_split: bool,
                               products: dict[int, Product]) -> dict[StockKey, int]:
    """Where an "auto" cart's units come from: {(product, location): units}.

    The rule (docs/locations.md): the first location, in the order given, that can serve every line
    whole. With ``allow_split``, when none can, each line takes what it can from each location in that
    order. InsufficientStock otherwise, naming the short lines at the location that could serve the
    most units of the cart (the first such in the order), or, split, the lines short everywhere
    together, with what all locations have.
    """
    def free(product_id: int, location: Location) -> int:
        stock = stocks.get((product_id, location.pk))
        return max(stock.on_hand - stock.reserved, 0) if stock else 0

    for place in places:
        if all(free(pid, place) >= qty for pid, qty in wanted.items()):
            return {(pid, place.pk): qty for pid, qty in wanted.items()}
    if allow_split:
        taken: dict[StockKey, int] = {}
        short = []
        for pid, qty in wanted.items():
            left = qty
            for place in places:
                take = min(left, free(pid, place))
                if take:
                    taken[(pid, place.pk)] = take
                    left -= take
            if left:
                short.append({"code": products[pid].code, "requested": qty, "available": qty - left})
        if short:
            raise InsufficientStock(lines=sorted(short, key=lambda line: line["code"]))
        return taken
    if not places:
        raise InsufficientStock(lines=sorted(({"code": products[pid].code, "requested": qty, "available": 0}
                                              for pid, qty in wanted.items()), key=lambda line: line["code"]))
    closest = max(places, key=lambda place: (sum(min(free(pid, place), qty) for pid, qty in wanted.items()),
                                             -places.index(place)))
    raise InsufficientStock(lines=sorted(
        ({"code": products[pid].code, "requested": qty, "available": free(pid, closest), "location": closest.code}
         for pid, qty in wanted.items() if free(pid, closest) < qty), key=lambda line: line["code"]))


def reservation_input_clean(*, lines: object, ttl: timedelta | None, reference: str | None,
                            location: object = None) -> tuple[list[tuple[str, int, str | None]], timedelta, str]:
    """(lines as [(normalised code, quantity, location code or None)], the TTL to apply, the stripped
    reference), or ValidationFailed. ``location``: the cart's location code, "auto", or None (default)."""
    cart_location = _location_validate(location, field_name="location")
    cleaned = _lines_validate(lines, location=None if cart_location == AUTO else cart_location)
    ttl_checked = ttl_validate(ttl)
    reference = (reference or "").strip()
    if len(reference) > 128:
        raise ValidationFailed(_("reference is at most 128 characters."), details={"reference": "too long"})
    return cleaned, ttl_checked, reference


def reservation_new(*, client: ApiClient | None, ttl: timedelta, reference: str, now: datetime,
                    idempotency_key: str | None = None, fingerprint: str = "") -> Reservation:
    """An unsaved active reservation with a random UUID, holding until now + ttl."""
    return Reservation(
        id=uuid4(), client=client, status=ReservationStatus.ACTIVE, expires_at=now + ttl, reference=reference,
        idempotency_key=idempotency_key, request_fingerprint=fingerprint, created_at=now, updated_at=now,
    )


def _products_for(cleaned: list[tuple[str, int, str | None]]) -> dict[str, Product]:
    """{asked code: active product}; UnknownCode or Conflict naming every bad code."""
    found, unknown = products_resolve_many(codes=list({code for code, _, _ in cleaned}))
    if unknown:
        raise UnknownCode(_("Some codes name no product."), details={"codes": unknown})
    inactive = sorted({p.code for p in found.values() if not p.active})
    if inactive:
        raise Conflict(_("Some products are not sold any more."), details={"codes": inactive})
    return found


def _wanted_at_named(cleaned: list[tuple[str, int, str | None]], found: dict[str, Product],
                     client: ApiClient | None) -> dict[StockKey, int]:
    """{(product, location): units} of a cart whose lines name their locations (or the default one)."""
    codes = {loc for _, _, loc in cleaned if loc}
    places = {loc.code: loc for loc in locations_resolve_many(codes=sorted(codes))} if codes else {}
    default = location_default()
    client_locations_check(client=client, locations=[places.get(loc, default) if loc else default
                                                     for _, _, loc in cleaned])
    wanted: dict[StockKey, int] = {}
    for code, quantity, loc in cleaned:
        key = (found[code].pk, (places[loc] if loc else default).pk)
        wanted[key] = wanted.get(key, 0) + quantity
    return wanted


@atomic_with_retry()
def reservation_create(
    *,
    client: ApiClient | None,
    lines: list[dict],
    ttl: timedelta | None = None,
    idempotency_key: str | None = None,
    reference: str = "",
    location: str | None = None,
    locations: list[str] | None = None,
    allow_split: bool = False,
    scope: object = None,
) -> Reservation:
    """Reserve every line or none. Lines are {"code", "quantity", optional "location"}; codes may be
    aliases; duplicates merge. ``location`` is the cart's location (a line's own wins), the default
    location when None, or "auto": the service picks one that can serve the whole cart from
    ``locations`` (a preference list; every active location when empty), or, with ``allow_split``,
    several (reservation_locations_pick).

    Raises InsufficientStock listing every short line with its real available quantity, and
    LocationForbidden for a location the client (or ``scope``, the staff user acting, see
    core.auth.request_location_scope) may not use. With an idempotency key, the same key
    and request give back the first reservation (``replayed`` is set on it); the same key with
    another request raises Unprocessable.
    """
    cleaned, ttl_checked, reference = reservation_input_clean(lines=lines, ttl=ttl, reference=reference,
                                                              location=location)
    auto = _location_validate(location, field_name="location") == AUTO
    if not auto and (locations or allow_split is True):
        # Taken without "auto" they would be ignored, and the cart reserved where the client did not ask.
        raise ValidationFailed(_('locations and allow_split go with "location": "auto".'),
                               details={"location": location, "locations": locations, "allow_split": allow_split})
    choice = location_choice_clean(locations=locations, allow_split=allow_split) if auto else None
    key = idempotency_key_clean(idempotency_key)
    fingerprint = _fingerprint(cleaned, ttl, reference, choice) if key else ""
    if key:
        replay = _idempotent_replay(client=client, key=key, fingerprint=fingerprint)
        if replay is not None:
            return replay

    now = timezone.now()
    reservation = reservation_new(client=client, ttl=ttl_checked, reference=reference, now=now,
                                  idempotency_key=key, fingerprint=fingerprint)
    limits = client if scope is None else scope
    if not auto and client_location_codes(limits) is None:
        stocks = _reserve_plain(reservation=reservation, lines=cleaned)
        if stocks is not None:
            # RESERVE_SQL reserved only because no alert level moves: nothing for the alerts to evaluate.
            stock_rows_changed(stocks=stocks, alert_levels_unchanged=True, extra_events=[
                reservation_event("created", reservation, reservation.lines.all(), at=now)])
            return reservation
    # The general path: also how a refused plain attempt finds out exactly what was wrong.
    found = _products_for(cleaned)
    if choice is None:
        wanted = _wanted_at_named(cleaned, found, limits)
        stocks = stock_rows_lock(keys=set(wanted))
    else:
        per_product: dict[int, int] = {}
        for code, quantity, _location in cleaned:
            per_product[found[code].pk] = per_product.get(found[code].pk, 0) + quantity
        places = _candidates(choice, limits)
        locked = stocks_lock(keys={(pid, place.pk) for pid in per_product for place in places})
        stocks = {(s.product_id, s.location_id): s for s in locked}
        wanted = reservation_locations_pick(wanted=per_product, places=places, stocks=stocks,
                                            allow_split=choice.allow_split,
                                            products={p.pk: p for p in found.values()})
    new_lines, changed = _create_many_lines(reservation=reservation, wanted=wanted, stocks=stocks)
    reservation.replayed = False
    reservation_lines_attach(reservation, new_lines)
    stock_rows_changed(stocks=changed, extra_events=[reservation_event("created", reservation, new_lines, at=now)])
    return reservation


# ---------------------------------------------------------------- confirm, release, extend

@atomic_with_retry()
def _reservation_confirm(*, reservation_id: UUID, client: ApiClient | None, actor: str,
                         scope: object = None) -> Reservation:
    reservation, lines = _locked_or_404(reservation_id, client, scope)
    now = timezone.now()
    if reservation.status == ReservationStatus.CONFIRMED:
        return reservation
    if reservation.status == ReservationStatus.RELEASED:
        raise Conflict(_("This reservation was released."), details={"id": str(reservation.pk), "status": "released"})
    if reservation.status == ReservationStatus.ACTIVE and reservation.expires_at <= now:
        _reservation_close(reservation, lines, status=ReservationStatus.EXPIRED, now=now, actor=actor)
    if reservation.status == ReservationStatus.EXPIRED:
        return reservation
    changes = [
        StockChange(product_id=line.product_id, location_id=line.location_id, on_hand=-line.quantity,
                    reserved=-line.quantity, kind=MovementKind.SALE, reason="reservation confirmed", reference=reservation.reference,
                    reservation_id=reservation.pk)
        for line in lines
    ]
    stock_apply(changes=changes, actor=actor)
    reservation.status = ReservationStatus.CONFIRMED
    reservation.closed_at = now
    reservation.save(update_fields=["status", "closed_at", "updated_at"])
    stock_rows_changed(stocks=[], extra_events=[reservation_event("confirmed", reservation, lines, at=now)])
    return reservation


def _gone(reservation: Reservation) -> Gone:
    return Gone(_("This reservation has expired; its units are back on sale."),
                details={"id": str(reservation.pk), "status": "expired",
                         "expired_at": reservation.expires_at.isoformat()})


def reservation_confirm(*, reservation_id: UUID, client: ApiClient | None, actor: str = "",
                        scope: object = None) -> Reservation:
    """Turn held units into a sale (on_hand and reserved both drop, SALE ledger rows name the reservation).

    Confirming twice gives the same confirmed reservation. A released one raises Conflict. One past
    ``expires_at`` is expired on the spot (its units return, committed) and Gone is raised.
    """
    reservation = _reservation_confirm(reservation_id=reservation_id, client=client, actor=_actor(client, actor),
                                       scope=scope)
    if reservation.status == ReservationStatus.EXPIRED:
        raise _gone(reservation)
    return reservation


@atomic_with_retry()
def reservation_release(*, reservation_id: UUID, client: ApiClient | None, actor: str = "",
                        scope: object = None) -> Reservation:
    """Give the units back. Releasing again, or releasing an expired one, changes nothing; a confirmed one is a Conflict."""
    reservation, lines = _locked_or_404(reservation_id, client, scope)
    if reservation.status == ReservationStatus.CONFIRMED:
        raise Conflict(_("This reservation is confirmed; it can no longer be released."),
                       details={"id": str(reservation.pk), "status": "confirmed"})
    if reservation.status == ReservationStatus.ACTIVE:
        now = timezone.now()
        status = ReservationStatus.EXPIRED if reservation.expires_at <= now else ReservationStatus.RELEASED
        _reservation_close(reservation, lines, status=status, now=now, actor=_actor(client, actor))
    return reservation


@atomic_with_retry()
def _reservation_extend(*, reservation_id: UUID, client: ApiClient | None, ttl: timedelta,
                        scope: object = None) -> Reservation:
    reservation, lines = _locked_or_404(reservation_id, client, scope)
    if reservation.status in (ReservationStatus.CONFIRMED, ReservationStatus.RELEASED):
        raise Conflict(_("This reservation is %(status)s; only active ones can be extended.")
                       % {"status": reservation.get_status_display()},
                       details={"id": str(reservation.pk), "status": reservation.status})
    now = timezone.now()
    if reservation.status == ReservationStatus.ACTIVE and reservation.expires_at <= now:
        _reservation_close(reservation, lines, status=ReservationStatus.EXPIRED, now=now,
                           actor=_actor(client, ""))
    if reservation.status == ReservationStatus.EXPIRED:
        return reservation
    new_expiry = now + ttl
    limit = reservation.created_at + timedelta(seconds=settings.RESERVATION_MAX_LIFETIME_SECONDS)
    if new_expiry > limit:
        raise ValidationFailed(
            _("A reservation cannot be held that long."),
            details={"latest_expiry": limit.isoformat(), "max_lifetime_seconds": settings.RESERVATION_MAX_LIFETIME_SECONDS},
        )
    if new_expiry > reservation.expires_at:
        reservation.expires_at = new_expiry
        reservation.save(update_fields=["expires_at", "updated_at"])
    return reservation


def reservation_extend(*, reservation_id: UUID, client: ApiClient | None, ttl: timedelta,
                       scope: object = None) -> Reservation:
    """Hold the units until now + ttl (never shortening), within the configured lifetime; Gone if already due."""
    ttl = ttl_validate(ttl)
    reservation = _reservation_extend(reservation_id=reservation_id, client=client, ttl=ttl, scope=scope)
    if reservation.status == ReservationStatus.EXPIRED:
        raise _gone(reservation)
    return reservation


# ---------------------------------------------------------------- expiry sweep

@atomic_with_retry()
def _expire_batch(*, batch_size: int) -> int:
    now = timezone.now()
    due = reservations_due_lock(now=now, limit=batch_size)
    if not due:
        return 0
    ids = [r.pk for r in due]
    lines = list(ReservationLine.objects.select_related("product", "location").filter(reservation_id__in=ids))
    changes = [StockChange(product_id=line.product_id, location_id=line.location_id, reserved=-line.quantity,
                           reservation_id=line.reservation_id) for line in lines]
    Reservation.objects.filter(pk__in=ids).update(status=ReservationStatus.EXPIRED, closed_at=now, updated_at=now)
    stock_apply(changes=changes, actor="system:expiry")
    by_reservation: dict[UUID, list[ReservationLine]] = {}
    for line in lines:
        by_reservation.setdefault(line.reservation_id, []).append(line)
    events = [reservation_event("expired", r, by_reservation.get(r.pk, []), at=now) for r in due]
    stock_rows_changed(stocks=[], extra_events=events)
    return len(due)


def reservation_expire_due(*, batch_size: int = 500) -> int:
    """Expire due reservations in batches, each its own transaction; rows another sweep holds are skipped,
    so racing sweeps return every reservation's units exactly once. Returns how many this call expired."""
    total = 0
    while True:
        expired = _expire_batch(batch_size=batch_size)
        total += expired
        if expired < batch_size:
            return total
