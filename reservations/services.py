"""Writes for reservations: create (all lines or none), confirm into sales, release, extend and expire."""
import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
from django.conf import settings
from django.db import connection
from django.db.models import Case, F, Value, When
from django.utils import timezone

from core import aio
from core.db import atomic_with_retry
from core.errors import Conflict, Gone, InsufficientStock, NotFound, UnknownCode, ValidationFailed
from core.idempotency import idempotency_key_clean, idempotent_first, request_fingerprint
from core.models import ApiClient
from inventory.codes import code_normalise
from inventory.locks import stocks_lock
from inventory.models import MovementKind, Product, Stock
from inventory.selectors import products_resolve_many
from inventory.services import StockChange, quantity_validate, stock_apply
from inventory.stock_changes import stock_rows_changed, stock_rows_committed_soon
from reservations.locks import reservation_lock, reservations_due_lock
from reservations.models import Reservation, ReservationLine, ReservationStatus
from reservations.selectors import reservation_id_parse

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- input checks

def ttl_validate(ttl: object) -> timedelta:
    """The TTL asked for, or the default; ValidationFailed outside the configured bounds."""
    if ttl is None:
        return timedelta(seconds=settings.RESERVATION_DEFAULT_TTL_SECONDS)
    if not isinstance(ttl, timedelta):
        raise ValidationFailed("ttl_seconds must be a whole number of seconds.", details={"ttl_seconds": str(ttl)})
    low, high = settings.RESERVATION_MIN_TTL_SECONDS, settings.RESERVATION_MAX_TTL_SECONDS
    if not low <= ttl.total_seconds() <= high:
        raise ValidationFailed(f"ttl_seconds must be between {low} and {high}.",
                               details={"ttl_seconds": ttl.total_seconds(), "min": low, "max": high})
    return ttl


def _lines_validate(lines: object) -> list[tuple[str, int]]:
    """[(normalised code, quantity)] in the order given, or ValidationFailed naming the bad line."""
    if not isinstance(lines, list | tuple) or not lines:
        raise ValidationFailed("A reservation needs at least one line.", details={"lines": "required"})
    if len(lines) > settings.RESERVATION_MAX_LINES:
        raise ValidationFailed(f"A reservation has at most {settings.RESERVATION_MAX_LINES} lines.",
                               details={"lines": len(lines), "max": settings.RESERVATION_MAX_LINES})
    cleaned = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict) or not isinstance(line.get("code"), str) or not line["code"].strip():
            raise ValidationFailed(f"lines[{index}] needs a code.", details={f"lines[{index}].code": "required"})
        quantity = quantity_validate(line.get("quantity"), field_name=f"lines[{index}].quantity")
        cleaned.append((code_normalise(line["code"]), quantity))
    return cleaned


def _fingerprint(lines: list[tuple[str, int]], ttl: timedelta | None, reference: str) -> str:
    merged: dict[str, int] = {}
    for code, quantity in lines:
        merged[code] = merged.get(code, 0) + quantity
    return request_fingerprint(
        {"lines": sorted(merged.items()), "ttl": ttl.total_seconds() if ttl else None, "reference": reference})


# ---------------------------------------------------------------- events and helpers

def reservation_event(kind: str, reservation: Reservation, lines: list[ReservationLine], *,
                      at: datetime) -> dict[str, Any]:
    """A dashboard feed event; carries no customer data (no client, no reference)."""
    return {
        "type": f"reservation.{kind}",
        "reservation_id": str(reservation.pk),
        "lines": [{"code": line.product.code, "quantity": line.quantity} for line in lines],
        "at": at.isoformat(),
    }


def reservation_lines_attach(reservation: Reservation, lines: list[ReservationLine]) -> Reservation:
    """Give the reservation its lines as if prefetched, so callers serialize it without another query."""
    for line in lines:
        line.reservation = reservation
    cached = ReservationLine.objects.none()
    cached._result_cache = sorted(lines, key=lambda line: line.product.code)
    cached._prefetch_done = True
    reservation._prefetched_objects_cache = {"lines": cached}
    return reservation


def _lines_load(reservation: Reservation) -> list[ReservationLine]:
    return list(reservation.lines.select_related("product").order_by("product__code"))


def _actor(client: ApiClient | None, actor: str) -> str:
    if actor:
        return actor
    return f"client:{client.name}" if client is not None else "system"


def _reservation_close(reservation: Reservation, lines: list[ReservationLine], *, status: str, now: datetime,
                       actor: str) -> None:
    """Give the reserved units back and close a locked active reservation as released or expired."""
    changes = [
        StockChange(product_id=line.product_id, reserved=-line.quantity, reservation_id=reservation.pk)
        for line in lines
    ]
    stock_apply(changes=changes, actor=actor)
    reservation.status = status
    reservation.closed_at = now
    reservation.save(update_fields=["status", "closed_at", "updated_at"])
    kind = "released" if status == ReservationStatus.RELEASED else "expired"
    stock_rows_changed(stocks=[], extra_events=[reservation_event(kind, reservation, lines, at=now)])


def _locked_or_404(reservation_id: object, client: ApiClient | None) -> tuple[Reservation, list[ReservationLine]]:
    """The client's reservation, locked, and its lines (also attached to it); NotFound otherwise."""
    reservation = reservation_lock(reservation_id=reservation_id_parse(reservation_id), client=client)
    if reservation is None:
        raise NotFound("No such reservation.", details={"id": str(reservation_id)})
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


def _short_line(product: Product, requested: int, on_hand: int, reserved: int) -> dict[str, Any]:
    return {"code": product.code, "requested": requested, "available": max(on_hand - reserved, 0)}


# One statement for a one-code reservation: resolve the code (aliases too), reserve with a conditional
# UPDATE (the row lock lasts only until commit), insert the reservation and its line. The UPDATE also
# refuses a change that would move the product's alert level (notifications.services.level_for, in
# SQL): such a change takes the general path, which records the transition and its alerts. It returns
# one row whenever the code names an active product; ``stock_id`` is NULL when nothing was reserved,
# and ``seen_available`` is the available quantity in the statement's snapshot. The ASGI fast path
# (reservations/fast_path.py) runs this same statement.
ONE_CODE_SQL = """
WITH p AS (
    SELECT id, code, name, category, low_stock_threshold FROM (
        SELECT id, code, name, category, low_stock_threshold, active, 0 AS via_alias
          FROM inventory_product WHERE code = %(code)s
        UNION ALL
        SELECT p.id, p.code, p.name, p.category, p.low_stock_threshold, p.active, 1
          FROM inventory_unifiedcode u JOIN inventory_product p ON p.id = u.product_id WHERE u.code = %(code)s
    ) found
    WHERE active ORDER BY via_alias LIMIT 1
), s AS (
    UPDATE inventory_stock st
       SET reserved = st.reserved + %(qty)s, version = st.version + 1, updated_at = %(now)s
      FROM p LEFT JOIN notifications_alertstate a ON a.product_id = p.id
     WHERE st.product_id = p.id AND st.on_hand - st.reserved >= %(qty)s
       AND CASE WHEN st.on_hand - st.reserved - %(qty)s <= 0 THEN 'out'
                WHEN st.on_hand - st.reserved - %(qty)s < p.low_stock_threshold THEN 'low'
                WHEN COALESCE(a.level, 'ok') <> 'ok'
                     AND st.on_hand - st.reserved - %(qty)s < p.low_stock_threshold + %(margin)s THEN 'low'
                ELSE 'ok' END = COALESCE(a.level, 'ok')
 RETURNING st.id, st.product_id, st.on_hand, st.reserved, st.version
), r AS (
    INSERT INTO reservations_reservation
           (id, client_id, status, expires_at, reference, idempotency_key, request_fingerprint,
            created_at, updated_at, closed_at)
    SELECT %(id)s, %(client_id)s, 'active', %(expires_at)s, %(reference)s, %(key)s, %(fingerprint)s,
           %(now)s, %(now)s, NULL
      FROM s
 RETURNING id
), l AS (
    INSERT INTO reservations_reservationline (reservation_id, product_id, quantity)
    SELECT r.id, s.product_id, %(qty)s FROM r, s
 RETURNING id
)
SELECT s.id AS stock_id, p.id, s.on_hand, s.reserved, s.version, (SELECT id FROM l),
       p.code, p.name, p.category, p.low_stock_threshold, seen.on_hand - seen.reserved AS seen_available
  FROM p LEFT JOIN s ON true LEFT JOIN inventory_stock seen ON seen.product_id = p.id
"""


def _one_code_params(*, reservation: Reservation, code: str, quantity: int) -> dict[str, Any]:
    """The parameters of ONE_CODE_SQL for this (unsaved) reservation."""
    return {
        "code": code, "qty": quantity, "now": reservation.created_at, "id": reservation.pk,
        "client_id": reservation.client_id, "expires_at": reservation.expires_at,
        "reference": reservation.reference, "key": reservation.idempotency_key,
        "fingerprint": reservation.request_fingerprint, "margin": settings.ALERT_HYSTERESIS_MARGIN,
    }


def _one_code_result(row: tuple | None, *, reservation: Reservation,
                    quantity: int) -> tuple[ReservationLine, Stock] | None:
    """The line and the stock row (as now, product attached) from ONE_CODE_SQL's row; None if nothing was reserved."""
    if row is None or row[0] is None:
        return None
    stock_id, product_id, on_hand, reserved, version, line_id, code, name, category, threshold, _ = row
    product = Product(id=product_id, code=code, name=name, category=category, low_stock_threshold=threshold,
                      active=True)
    stock = Stock(id=stock_id, product=product, on_hand=on_hand, reserved=reserved, version=version)
    return ReservationLine(id=line_id, reservation=reservation, product=product, quantity=quantity), stock


def _create_one_code(*, reservation: Reservation, code: str,
                     quantity: int) -> tuple[ReservationLine, Stock] | None:
    """The hot path, one statement and one round trip. None when nothing was reserved (short, unknown,
    an alert level to record): the caller then takes the general path, which finds out exactly why."""
    with connection.cursor() as cursor:
        cursor.execute(ONE_CODE_SQL, _one_code_params(reservation=reservation, code=code, quantity=quantity))
        row = cursor.fetchone()
    return _one_code_result(row, reservation=reservation, quantity=quantity)


async def reservation_create_one_code_async(*, client: ApiClient, code: str, quantity: int, ttl: timedelta,
                                            reference: str) -> Reservation | None:
    """ONE_CODE_SQL from async code on a server loop (the ASGI fast path), on that loop's pool.

    Inputs are already clean (``reservation_input_clean``); the caller has checked that no webhook
    endpoint is active. The statement commits on its own, then its events and projection recompute
    go to the loop's batches. None when nothing was reserved or the statement could not run (nothing
    was written either way): the caller then takes the general path, which finds out why.
    """
    now = timezone.now()
    reservation = reservation_new(client=client, ttl=ttl, reference=reference, now=now)
    try:
        pool = await aio.db_pool()
        async with pool.connection() as conn:
            cursor = await conn.execute(
                ONE_CODE_SQL, _one_code_params(reservation=reservation, code=code, quantity=quantity))
            row = await cursor.fetchone()
    except psycopg.Error:
        logger.warning("one-code reservation statement could not run on the async pool", exc_info=True)
        return None
    created = _one_code_result(row, reservation=reservation, quantity=quantity)
    if created is None:
        return None
    line, stock = created
    reservation.replayed = False
    reservation_lines_attach(reservation, [line])
    stock_rows_committed_soon(stocks=[stock], extra_events=[reservation_event("created", reservation, [line], at=now)])
    return reservation


def _create_many_lines(*, reservation: Reservation, products: dict[int, Product],
                       wanted: dict[int, int]) -> tuple[list[ReservationLine], list[Stock]]:
    """Lock every Stock row in pk order, check every line, then reserve all of them or none."""
    stocks = stocks_lock(product_ids=list(wanted))
    by_product = {s.product_id: s for s in stocks}
    missing = [products[pid].code for pid in wanted if pid not in by_product]
    if missing:
        raise Conflict("Some products have no stock row.", details={"codes": missing})
    short = [
        _short_line(products[s.product_id], wanted[s.product_id], s.on_hand, s.reserved)
        for s in stocks if s.on_hand - s.reserved < wanted[s.product_id]
    ]
    if short:
        raise InsufficientStock(lines=sorted(short, key=lambda line: line["code"]))
    delta = Case(*[When(pk=s.pk, then=Value(wanted[s.product_id])) for s in stocks], default=Value(0))
    Stock.objects.filter(pk__in=[s.pk for s in stocks]).update(
        reserved=F("reserved") + delta, version=F("version") + 1, updated_at=reservation.created_at,
    )
    for stock in stocks:
        stock.reserved += wanted[stock.product_id]
        stock.version += 1
    reservation.save(force_insert=True)
    lines = ReservationLine.objects.bulk_create(
        [ReservationLine(reservation=reservation, product=products[pid], quantity=qty) for pid, qty in wanted.items()]
    )
    return lines, stocks


def reservation_input_clean(*, lines: object, ttl: timedelta | None,
                            reference: str | None) -> tuple[list[tuple[str, int]], timedelta, str]:
    """(lines as [(normalised code, quantity)], the TTL to apply, the stripped reference), or ValidationFailed."""
    cleaned = _lines_validate(lines)
    ttl_checked = ttl_validate(ttl)
    reference = (reference or "").strip()
    if len(reference) > 128:
        raise ValidationFailed("reference is at most 128 characters.", details={"reference": "too long"})
    return cleaned, ttl_checked, reference


def reservation_new(*, client: ApiClient | None, ttl: timedelta, reference: str, now: datetime,
                    idempotency_key: str | None = None, fingerprint: str = "") -> Reservation:
    """An unsaved active reservation with a random UUID, holding until now + ttl."""
    return Reservation(
        id=uuid4(), client=client, status=ReservationStatus.ACTIVE, expires_at=now + ttl, reference=reference,
        idempotency_key=idempotency_key, request_fingerprint=fingerprint, created_at=now, updated_at=now,
    )


@atomic_with_retry()
def reservation_create(
    *,
    client: ApiClient | None,
    lines: list[dict],
    ttl: timedelta | None = None,
    idempotency_key: str | None = None,
    reference: str = "",
) -> Reservation:
    """Reserve every line or none. Lines are {"code", "quantity"}; codes may be aliases; duplicates merge.

    Raises InsufficientStock listing every short line with its real available quantity.
    With an idempotency key, the same key and request give back the first reservation
    (``replayed`` is set on it); the same key with another request raises Unprocessable.
    """
    cleaned, ttl_checked, reference = reservation_input_clean(lines=lines, ttl=ttl, reference=reference)
    key = idempotency_key_clean(idempotency_key)
    fingerprint = _fingerprint(cleaned, ttl, reference) if key else ""
    if key:
        replay = _idempotent_replay(client=client, key=key, fingerprint=fingerprint)
        if replay is not None:
            return replay

    now = timezone.now()
    reservation = reservation_new(client=client, ttl=ttl_checked, reference=reference, now=now,
                                  idempotency_key=key, fingerprint=fingerprint)
    codes = {code for code, _ in cleaned}
    if len(codes) == 1:
        created = _create_one_code(reservation=reservation, code=cleaned[0][0],
                                   quantity=sum(quantity for _, quantity in cleaned))
        if created is not None:
            new_lines, stocks = [created[0]], [created[1]]
            reservation.replayed = False
            reservation_lines_attach(reservation, new_lines)
            # ONE_CODE_SQL reserved only because no alert level moves: nothing for the alerts to evaluate.
            stock_rows_changed(stocks=stocks, alert_levels_unchanged=True,
                               extra_events=[reservation_event("created", reservation, new_lines, at=now)])
            return reservation
    # The general path: also how a failed one-statement attempt finds out exactly what was wrong.
    found, unknown = products_resolve_many(codes=list(codes))
    if unknown:
        raise UnknownCode("Some codes name no product.", details={"codes": unknown})
    inactive = sorted({p.code for p in found.values() if not p.active})
    if inactive:
        raise Conflict("Some products are not sold any more.", details={"codes": inactive})
    products: dict[int, Product] = {}
    wanted: dict[int, int] = {}
    for code, quantity in cleaned:
        product = found[code]
        products[product.pk] = product
        wanted[product.pk] = wanted.get(product.pk, 0) + quantity
    new_lines, stocks = _create_many_lines(reservation=reservation, products=products, wanted=wanted)
    reservation.replayed = False
    reservation_lines_attach(reservation, new_lines)
    stock_rows_changed(stocks=stocks, extra_events=[reservation_event("created", reservation, new_lines, at=now)])
    return reservation


# ---------------------------------------------------------------- confirm, release, extend

@atomic_with_retry()
def _reservation_confirm(*, reservation_id: UUID, client: ApiClient | None, actor: str) -> Reservation:
    reservation, lines = _locked_or_404(reservation_id, client)
    now = timezone.now()
    if reservation.status == ReservationStatus.CONFIRMED:
        return reservation
    if reservation.status == ReservationStatus.RELEASED:
        raise Conflict("This reservation was released.", details={"id": str(reservation.pk), "status": "released"})
    if reservation.status == ReservationStatus.ACTIVE and reservation.expires_at <= now:
        _reservation_close(reservation, lines, status=ReservationStatus.EXPIRED, now=now, actor=actor)
    if reservation.status == ReservationStatus.EXPIRED:
        return reservation
    changes = [
        StockChange(product_id=line.product_id, on_hand=-line.quantity, reserved=-line.quantity,
                    kind=MovementKind.SALE, reason="reservation confirmed", reference=reservation.reference,
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
    return Gone("This reservation has expired; its units are back on sale.",
                details={"id": str(reservation.pk), "status": "expired",
                         "expired_at": reservation.expires_at.isoformat()})


def reservation_confirm(*, reservation_id: UUID, client: ApiClient | None, actor: str = "") -> Reservation:
    """Turn held units into a sale (on_hand and reserved both drop, SALE ledger rows name the reservation).

    Confirming twice gives the same confirmed reservation. A released one raises Conflict. One past
    ``expires_at`` is expired on the spot (its units return, committed) and Gone is raised.
    """
    reservation = _reservation_confirm(reservation_id=reservation_id, client=client, actor=_actor(client, actor))
    if reservation.status == ReservationStatus.EXPIRED:
        raise _gone(reservation)
    return reservation


@atomic_with_retry()
def reservation_release(*, reservation_id: UUID, client: ApiClient | None, actor: str = "") -> Reservation:
    """Give the units back. Releasing again, or releasing an expired one, changes nothing; a confirmed one is a Conflict."""
    reservation, lines = _locked_or_404(reservation_id, client)
    if reservation.status == ReservationStatus.CONFIRMED:
        raise Conflict("This reservation is confirmed; it can no longer be released.",
                       details={"id": str(reservation.pk), "status": "confirmed"})
    if reservation.status == ReservationStatus.ACTIVE:
        now = timezone.now()
        status = ReservationStatus.EXPIRED if reservation.expires_at <= now else ReservationStatus.RELEASED
        _reservation_close(reservation, lines, status=status, now=now, actor=_actor(client, actor))
    return reservation


@atomic_with_retry()
def _reservation_extend(*, reservation_id: UUID, client: ApiClient | None, ttl: timedelta) -> Reservation:
    reservation, lines = _locked_or_404(reservation_id, client)
    if reservation.status in (ReservationStatus.CONFIRMED, ReservationStatus.RELEASED):
        raise Conflict(f"This reservation is {reservation.status}; only active ones can be extended.",
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
            "A reservation cannot be held that long.",
            details={"latest_expiry": limit.isoformat(), "max_lifetime_seconds": settings.RESERVATION_MAX_LIFETIME_SECONDS},
        )
    if new_expiry > reservation.expires_at:
        reservation.expires_at = new_expiry
        reservation.save(update_fields=["expires_at", "updated_at"])
    return reservation


def reservation_extend(*, reservation_id: UUID, client: ApiClient | None, ttl: timedelta) -> Reservation:
    """Hold the units until now + ttl (never shortening), within the configured lifetime; Gone if already due."""
    ttl = ttl_validate(ttl)
    reservation = _reservation_extend(reservation_id=reservation_id, client=client, ttl=ttl)
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
    lines = list(ReservationLine.objects.select_related("product").filter(reservation_id__in=ids))
    changes = [StockChange(product_id=line.product_id, reserved=-line.quantity, reservation_id=line.reservation_id)
               for line in lines]
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
