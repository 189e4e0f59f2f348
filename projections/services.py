"""Writes for projections: planned movements, dirty-marking, and the SQL recompute of summaries and demand estimates
(per product and location)."""
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from functools import partial
from statistics import NormalDist
from typing import Any, NamedTuple

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import aio
from core.cache import redis_direct
from core.errors import Conflict, NotFound, ValidationFailed
from core.realtime import realtime_publish
from inventory.codes import code_normalise
from inventory.models import Location, Product
from inventory.selectors import (
    client_locations_check,
    location_default_id,
    location_id_or_default,
    products_resolve_many,
)
from projections import sql
from projections.locks import suggestions_lock, summaries_lock_due
from projections.models import (
    Direction,
    Firmness,
    PlannedKind,
    PlannedMovement,
    PlannedStatus,
    ReorderState,
    ReorderSuggestion,
    SupplyTerms,
)

logger = logging.getLogger(__name__)

BULK_MAX_ITEMS = 1000


@dataclass(frozen=True)
class RiskTransition:
    """A product entering or leaving the risk window at a location, or (``moved``) staying in it with another
    stockout day."""

    product_id: int
    at_risk: bool
    stockout_date: date | None
    location_id: int
    moved: bool = False

    def as_json(self) -> list:
        return [self.product_id, self.at_risk, self.stockout_date.isoformat() if self.stockout_date else None,
                self.moved, self.location_id]

    @classmethod
    def from_json(cls, item: list) -> "RiskTransition":
        # Items queued before locations have four fields: they were at the default location.
        return cls(product_id=item[0], at_risk=item[1],
                   stockout_date=date.fromisoformat(item[2]) if item[2] else None, moved=item[3],
                   location_id=location_id_or_default(item[4] if len(item) > 4 else None))


# Above this many transitions in one commit (a rebuild), events and alerts go out from a Celery task.
TRANSITIONS_INLINE_MAX = 50


@dataclass(frozen=True)
class PlannedMovementInput:
    """One upsert line as an upstream system sends it; ``code`` may be a unified code."""

    source_ref: str
    code: str
    date: date
    direction: str
    quantity: int
    kind: str
    source: str = "manual"
    firmness: str = Firmness.FIRM
    status: str = PlannedStatus.OPEN
    note: str = ""
    location: str | None = None  # a location code; the default location when None
    unknown_fields: tuple[str, ...] = ()  # keys of the line as sent that are none of the above


class PlannedMovementKey(NamedTuple):
    """One cancel line as sent: the movement's key, and the keys of the line that are none of its fields."""

    source: Any
    source_ref: Any
    unknown_fields: tuple[str, ...] = ()


# The keys a bulk line may carry: every field of its input but the unknown ones.
PLANNED_LINE_FIELDS = frozenset(f.name for f in fields(PlannedMovementInput)) - {"unknown_fields"}
PLANNED_KEY_FIELDS = frozenset(PlannedMovementKey._fields) - {"unknown_fields"}


# ---------------------------------------------------------------------------------------------
# Dirty-marking and scheduling: everything is per (product, location); a location of None is the default one.


def _by_location(pairs: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """{location id: sorted product ids} of (product id, location id) pairs, locations in id order."""
    grouped: dict[int, set[int]] = defaultdict(set)
    for product_id, location_id in pairs:
        grouped[location_id].add(product_id)
    return {location_id: sorted(grouped[location_id]) for location_id in sorted(grouped)}


def projection_mark_dirty(*, product_ids: Sequence[int], location_id: int | None = None) -> None:
    """Schedule a recompute of these products at this location after commit. Runs no query: a stock change
    is already visible as a version mismatch (stock.version + plan_version != source_version)."""
    if product_ids:
        transaction.on_commit(partial(projection_recompute_schedule, sorted(set(product_ids)),
                                      location_id_or_default(location_id)))


def projection_mark_dirty_stocks(*, stocks: Iterable[Any]) -> None:
    """``projection_mark_dirty`` for changed Stock rows, each at its own location (one schedule per location)."""
    for location_id, product_ids in _by_location((s.product_id, s.location_id) for s in stocks).items():
        projection_mark_dirty(product_ids=product_ids, location_id=location_id)


def _redis() -> redis.Redis:
    return redis_direct(timeout=1.0)


def _pending_key(product_id: int, location_id: int) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:projections:pending:{location_id}:{product_id}"


def projection_pending_claim(*, product_ids: Sequence[int], location_id: int | None = None) -> list[int]:
    """The products not already waiting for a recompute at the location (Redis SET NX with a short TTL),
    now marked waiting."""
    location_id = location_id_or_default(location_id)
    pipe = _redis().pipeline(transaction=False)
    for product_id in product_ids:
        pipe.set(_pending_key(product_id, location_id), 1, nx=True, ex=settings.PROJECTION_PENDING_TTL)
    return [pid for pid, claimed in zip(product_ids, pipe.execute()) if claimed]


def projection_pending_release(*, product_ids: Sequence[int], location_id: int | None = None) -> None:
    if product_ids:
        location_id = location_id_or_default(location_id)
        _redis().delete(*[_pending_key(pid, location_id) for pid in product_ids])


async def _projection_marks_flush(pairs: list[tuple[int, int]]) -> None:
    """``projection_recompute_schedule`` for a batch of (product, location) pairs gathered on a server loop:
    the same Redis marks, sent from the loop; the rare Celery send (or inline recompute) runs in a worker thread."""
    for location_id, product_ids in _by_location(pairs).items():
        await _projection_marks_flush_at(product_ids, location_id)


async def _projection_marks_flush_at(product_ids: list[int], location_id: int) -> None:
    try:
        if len(product_ids) <= settings.PROJECTION_INLINE_MAX_PRODUCTS:
            await sync_to_async(projection_recompute_schedule, thread_sensitive=False)(product_ids, location_id)
            return
        try:
            async with aio.redis_client().pipeline(transaction=False) as pipe:
                for product_id in product_ids:
                    pipe.set(_pending_key(product_id, location_id), 1, nx=True, ex=settings.PROJECTION_PENDING_TTL)
                claimed = await pipe.execute()
            fresh = [pid for pid, ok in zip(product_ids, claimed) if ok]
        except redis.RedisError:
            logger.warning("projection dedupe unavailable, scheduling anyway", exc_info=True)
            fresh = product_ids
        if fresh:
            from projections.tasks import projection_recompute_task

            await sync_to_async(projection_recompute_task.delay, thread_sensitive=False)(fresh, location_id)
    except Exception:
        logger.exception("projection recompute scheduling failed", extra={"products": len(product_ids)})


# Changes made on a server loop (the reservation fast path) are scheduled in batches: under load the
# changes of many requests share one Redis round trip, and a hot product is marked once per batch.
_projection_marks = aio.LoopBatcher("projection-marks", _projection_marks_flush)


def projection_recompute_schedule_soon_stocks(stocks: Iterable[Any]) -> None:
    """``projection_recompute_schedule`` for async code after commit, for committed Stock rows each at its own
    location; returns at once."""
    _projection_marks.add([(s.product_id, s.location_id) for s in stocks])


async def projection_marks_drain() -> None:
    """Schedule what is pending on this loop and stop its batching task (tests, before their loop ends)."""
    await _projection_marks.drain()


def projection_recompute_schedule(product_ids: list[int], location_id: int | None = None) -> None:
    """After commit: recompute inline when few products (configurable), else one deduplicated Celery task.

    Never raises: the write already committed, and the beat fallback catches anything missed here.
    """
    try:
        location_id = location_id_or_default(location_id)
        if len(product_ids) <= settings.PROJECTION_INLINE_MAX_PRODUCTS:
            projection_recompute(product_ids=product_ids, location_id=location_id)
            return
        from projections.tasks import projection_recompute_task

        try:
            fresh = projection_pending_claim(product_ids=product_ids, location_id=location_id)
        except redis.RedisError:
            logger.warning("projection dedupe unavailable, scheduling anyway", exc_info=True)
            fresh = list(product_ids)
        if fresh:
            projection_recompute_task.delay(fresh, location_id)
    except Exception:
        logger.exception("projection recompute scheduling failed", extra={"products": len(product_ids)})


# ---------------------------------------------------------------------------------------------
# Recompute


def projection_today() -> date:
    """Projection days are store days: the configured TIME_ZONE."""
    return timezone.localdate()


def _horizon(horizon: int | None) -> int:
    value = settings.PROJECTION_HORIZON_DAYS if horizon is None else horizon
    return max(settings.PROJECTION_RISK_DAYS, min(int(value), settings.PROJECTION_MAX_DAYS))


def _params(product_ids: Sequence[int], *, location_id: int, today: date | None, horizon: int | None,
            now: datetime | None = None) -> dict[str, Any]:
    return {
        "ids": list(product_ids),
        "today": today or projection_today(),
        "horizon": _horizon(horizon),
        "risk_days": settings.PROJECTION_RISK_DAYS,
        "tentative": settings.PROJECTION_INCLUDE_TENTATIVE,
        "now": now or timezone.now(),
        "today_left": _today_left(today),
        "location_id": location_id,
    }


def _today_left(today: date | None) -> float:
    """The share of the store day still ahead when ``today`` is the real store day, else 1 (a whole day)."""
    now = timezone.localtime()
    if today is not None and today != now.date():
        return 1.0
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return max(0.0, 1.0 - (now - midnight).total_seconds() / 86400)


def _demand_params(product_ids: Sequence[int], *, location_id: int, today: date,
                   now: datetime | None = None) -> dict[str, Any]:
    return {
        "ids": list(product_ids),
        "today": today,
        "tz": settings.TIME_ZONE,
        "window": settings.DEMAND_WINDOW_DAYS,
        "backtest": settings.DEMAND_BACKTEST_DAYS,
        "alpha": settings.DEMAND_SMOOTHING,
        "prior": settings.DEMAND_WEEKDAY_PRIOR_DAYS,
        "min_history": settings.DEMAND_MIN_HISTORY_DAYS,
        "now": now or timezone.now(),
        "location_id": location_id,
    }


def _demand_upsert(cursor, product_ids: Sequence[int], *, location_id: int, today: date) -> list[int]:
    """Estimate the demand at the location of the products not yet estimated there for ``today`` (inside
    the caller's transaction); products with too little history then take their category's profile.
    Returns the ids estimated."""
    from projections.models import DemandEstimate

    done = set(DemandEstimate.objects.filter(product_id__in=list(product_ids), location_id=location_id,
                                             as_of__gte=today).values_list("product_id", flat=True))
    due = [pid for pid in product_ids if pid not in done]
    if not due:
        return []
    params = _demand_params(due, location_id=location_id, today=today)
    cursor.execute(sql.DEMAND_UPSERT_SQL, params)
    short = [row[0] for row in cursor.fetchall()]
    if short:
        cursor.execute(sql.DEMAND_CATEGORY_SQL, {**params, "ids": short})
    return due


def _reorder_params(product_ids: Sequence[int], *, location_id: int, today: date) -> dict[str, Any]:
    return {
        "ids": list(product_ids),
        "today": today,
        "tz": settings.TIME_ZONE,
        "review": settings.REORDER_REVIEW_DAYS,
        "z": NormalDist().inv_cdf(settings.REORDER_SERVICE_LEVEL),
        "now": timezone.now(),
        "location_id": location_id,
    }


def _reorder_webhooks(cursor) -> None:
    """``reorder.suggested`` outbox rows, in this transaction, for the suggestions new or with another quantity."""
    columns = [c.name for c in cursor.description]
    changed = [dict(zip(columns, row)) for row in cursor.fetchall()]
    if not changed:
        return
    from webhooks.models import EventType
    from webhooks.services import webhook_events_enqueue

    webhook_events_enqueue(events=[
        {"type": EventType.REORDER_SUGGESTED, "key": f"{row['id']}:{row['quantity']}",
         "data": {**row, "arrival_date": row["arrival_date"].isoformat()}}
        for row in changed
    ], batch=True)


def demand_recompute(*, product_ids: Sequence[int], location_id: int | None = None,
                     today: date | None = None) -> list[int]:
    """Estimate the demand of these products at the location for ``today`` unless already done; return the
    ids estimated."""
    ids = sorted(set(product_ids))
    if not ids:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.SESSION_SQL)
        return _demand_upsert(cursor, ids, location_id=location_id_or_default(location_id),
                              today=today or projection_today())


def _upsert(product_ids: Sequence[int], *, location_id: int, today: date | None = None) -> list[RiskTransition]:
    """Run the guarded upsert at one location inside the caller's transaction; return the risk transitions
    it caused.

    The demand estimates the projection blends in are brought up to ``today`` first (once a day each),
    and the reorder suggestions of products with supply terms follow the fresh summaries.
    """
    day = today or projection_today()
    with connection.cursor() as cursor:
        cursor.execute(sql.SESSION_SQL)
        _demand_upsert(cursor, product_ids, location_id=location_id, today=day)
        cursor.execute(sql.UPSERT_SQL, _params(product_ids, location_id=location_id, today=today, horizon=None))
        rows = cursor.fetchall()
        cursor.execute(sql.REORDER_SQL, _reorder_params(product_ids, location_id=location_id, today=day))
        _reorder_webhooks(cursor)
    transitions = []
    for pid, was_risk, now_risk, stockout, old_stockout in rows:
        if bool(was_risk) != bool(now_risk):
            transitions.append(RiskTransition(product_id=pid, at_risk=bool(now_risk), location_id=location_id,
                                              stockout_date=stockout if now_risk else None))
        elif now_risk and stockout != old_stockout:
            transitions.append(RiskTransition(product_id=pid, at_risk=True, stockout_date=stockout, moved=True,
                                              location_id=location_id))
    return transitions


def _transitions_after_commit(transitions: list[RiskTransition]) -> None:
    if not transitions:
        return
    if len(transitions) <= TRANSITIONS_INLINE_MAX:
        transaction.on_commit(partial(projection_transitions_publish, transitions))
    else:
        transaction.on_commit(partial(_transitions_dispatch, [t.as_json() for t in transitions]))


def _transitions_dispatch(items: list[list]) -> None:
    from projections.tasks import projection_transitions_task

    try:
        projection_transitions_task.delay(items)
    except Exception:
        logger.exception("projection transitions could not be queued", extra={"count": len(items)})


def projection_recompute(*, product_ids: Sequence[int], location_id: int | None = None,
                         today: date | None = None) -> list[RiskTransition]:
    """Recompute the summaries of these products at the location (default: the default one) in one statement;
    risk events and alerts go out after commit."""
    ids = sorted(set(product_ids))
    if not ids:
        return []
    with transaction.atomic():
        transitions = _upsert(ids, location_id=location_id_or_default(location_id), today=today)
        _transitions_after_commit(transitions)
    return transitions


def projection_compute_rows(*, product_ids: Sequence[int], horizon: int, location_id: int | None = None,
                            today: date | None = None) -> list[dict]:
    """Compute projections at the location without storing them (for views longer than the stored horizon)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.SESSION_SQL)
        cursor.execute(sql.SELECT_SQL, _params(product_ids, location_id=location_id_or_default(location_id),
                                               today=today, horizon=horizon))
        columns = [c.name for c in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]


def projection_placeholders_create() -> int:
    """Give every stock row (a product at a location) a (dirty) summary row; return how many were added."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.PLACEHOLDERS_SQL)
        return cursor.rowcount


def projection_fallback_run(*, batch: int | None = None, today: date | None = None) -> list[tuple[int, int]]:
    """Recompute the dirty/stale rows first, then the oldest ones; at most ``batch`` (≤ 500) rows per run,
    whatever their locations (one statement per location). Returns the (product id, location id) pairs.

    The rows stay locked until the run commits, so concurrent runs never take the same row.
    """
    limit = min(batch or settings.PROJECTION_FALLBACK_BATCH, 500)
    day = today or projection_today()
    projection_placeholders_create()
    with transaction.atomic():
        pairs = summaries_lock_due(limit=limit, today=day)
        transitions = []
        for location_id, product_ids in _by_location(pairs).items():
            transitions += _upsert(product_ids, location_id=location_id, today=day)
        _transitions_after_commit(transitions)
    return pairs


def _recompute_in_thread(product_ids: list[int], location_id: int, day: date) -> int:
    try:
        projection_recompute(product_ids=product_ids, location_id=location_id, today=day)
        return len(product_ids)
    finally:
        connection.close()


def projection_rebuild_all(*, batch_size: int = 5000, workers: int = 1, progress=None,
                           today: date | None = None) -> int:
    """Recompute every stock row's summary in pk-ordered batches of one location, one transaction each;
    return how many were computed.

    With ``workers`` > 1 batches run on that many connections at once (batches never share rows).
    """
    from inventory.models import Stock

    day = today or projection_today()
    pairs = list(Stock.objects.order_by("location_id", "product_id").values_list("product_id", "location_id"))
    chunks = [(ids[start:start + batch_size], location_id)
              for location_id, ids in _by_location(pairs).items() for start in range(0, len(ids), batch_size)]
    done = 0
    if workers <= 1:
        for chunk, location_id in chunks:
            projection_recompute(product_ids=chunk, location_id=location_id, today=day)
            done += len(chunk)
            if progress is not None:
                progress(done, len(pairs))
        return done
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="projection-rebuild") as pool:
        for count in pool.map(_recompute_in_thread, [c for c, _loc in chunks], [loc for _c, loc in chunks],
                              [day] * len(chunks)):
            done += count
            if progress is not None:
                progress(done, len(pairs))
    return done


def projection_transitions_publish(transitions: list[RiskTransition]) -> None:
    """After commit: one realtime event per product and location entering or leaving the risk window, plus
    the alert."""
    products = Product.objects.in_bulk([t.product_id for t in transitions])
    places = dict(Location.objects.values_list("pk", "code"))
    now = timezone.now().isoformat()
    events = []
    for t in transitions:
        product = products.get(t.product_id)
        if product is None or t.moved:
            continue
        events.append({
            "type": "projection.risk_entered" if t.at_risk else "projection.risk_left",
            "at": now,
            "code": product.code,
            "location": places.get(t.location_id),
            "name": product.name,
            "category": product.category,
            "stockout_date": t.stockout_date.isoformat() if t.stockout_date else None,
        })
    realtime_publish(events)
    _alerts_send(transitions, places)


def _alerts_send(transitions: list[RiskTransition], places: dict[int, str]) -> None:
    """The projected-stockout alert of each transition; ``places``: {location id: code} of every location."""
    from notifications.services import alert_projected_stockout

    for t in transitions:
        try:
            alert_projected_stockout(product_id=t.product_id, stockout_date=t.stockout_date if t.at_risk else None,
                                     location_id=t.location_id, location_code=places.get(t.location_id))
        except Exception:
            logger.exception("projected stockout alert failed", extra={"product_id": t.product_id})


# ---------------------------------------------------------------------------------------------
# Planned movements


def _text_error(value: Any, *, max_length: int) -> str | None:
    if value is None:
        return "required"
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        return _("required, up to %(max)d characters") % {"max": max_length}
    return None


def _line_errors(item: PlannedMovementInput) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, max_length in (("source_ref", 128), ("source", 64), ("code", 64)):
        message = _text_error(getattr(item, name), max_length=max_length)
        if message:
            errors[name] = message
    if item.date is None:
        errors["date"] = _("required")
    elif not isinstance(item.date, date) or isinstance(item.date, datetime):
        errors["date"] = _("a date (YYYY-MM-DD)")
    for name, allowed, required in (("direction", Direction.values, True), ("kind", PlannedKind.values, True),
                                    ("firmness", Firmness.values, False), ("status", PlannedStatus.values, False)):
        value = getattr(item, name)
        if value is None and required:
            errors[name] = _("required")
        elif not isinstance(value, str) or value not in allowed:
            errors[name] = _("one of %(allowed)s") % {"allowed": ", ".join(allowed)}
    q = item.quantity
    if q is None:
        errors["quantity"] = _("required")
    elif isinstance(q, bool) or not isinstance(q, int) or not 0 < q <= settings.STOCK_MAX_QUANTITY:
        errors["quantity"] = _("a whole number between 1 and %(max)d") % {"max": settings.STOCK_MAX_QUANTITY}
    if not isinstance(item.note, str) or len(item.note) > 255:
        errors["note"] = _("up to 255 characters")
    if item.location is not None and (not isinstance(item.location, str) or not item.location.strip()
                                      or len(item.location) > 64):
        errors["location"] = _("a location code")
    # Refused, not ignored: a misspelt "location" would plan the movement at the default one.
    errors.update(dict.fromkeys(item.unknown_fields, _("unknown field")))
    return errors


def _locations_of(items: Sequence[PlannedMovementInput]) -> dict[str, int]:
    """{location code: id} of the active locations the lines name (the default one under "")."""
    codes = {code_normalise(i.location) for i in items if isinstance(i.location, str) and i.location.strip()}
    found = dict(Location.objects.filter(code__in=codes, active=True).values_list("code", "pk")) if codes else {}
    return {"": location_default_id(), **found}


def _location_key(item: PlannedMovementInput) -> str:
    return code_normalise(item.location) if isinstance(item.location, str) and item.location.strip() else ""


def _upsert_check(items: Sequence[PlannedMovementInput],
                  places: dict[str, int]) -> tuple[dict[str, Product], list[dict[str, Any]]]:
    """Every line's field errors, and the codes of all lines looked up at once: ({code: product}, bad lines).
    ``places``: the lines' locations (``_locations_of``)."""
    codes = [item.code for item in items if isinstance(item.code, str) and item.code.strip()]
    resolved, unknown = products_resolve_many(codes=codes) if codes else ({}, [])
    unknown_codes = set(unknown)
    errors = []
    keys_seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        line = _line_errors(item)
        if "code" not in line and code_normalise(item.code) in unknown_codes:
            line["code"] = _("unknown code")
        if "location" not in line and _location_key(item) not in places:
            line["location"] = _("unknown location")
        key = (str(item.source).strip(), str(item.source_ref).strip())
        if key in keys_seen and "source_ref" not in line:
            line["source_ref"] = _("repeated in this call")
        keys_seen.add(key)
        if line:
            errors.append({"list": "upsert", "index": index, "source_ref": item.source_ref, "errors": line})
    return resolved, errors


def _cancel_check(keys: Sequence[PlannedMovementKey]) -> list[dict[str, Any]]:
    errors = []
    for index, (source, source_ref, unknown_fields) in enumerate(keys):
        line = {name: message for name, message in (
            ("source", _text_error(source, max_length=64)), ("source_ref", _text_error(source_ref, max_length=128)))
            if message}
        # A misspelt "source" would cancel the "manual" movement of that reference instead.
        line.update(dict.fromkeys(unknown_fields, _("unknown field")))
        if line:
            errors.append({"list": "cancel", "index": index, "source_ref": source_ref, "errors": line})
    return errors


def _lines_refuse(errors: list[dict[str, Any]]) -> None:
    if errors:
        raise ValidationFailed(_("%(lines)d planned-movement lines are not valid; nothing was written.")
                               % {"lines": len(errors)},
                               details={"lines": errors})


def _count_check(count: int) -> None:
    if count > BULK_MAX_ITEMS:
        raise ValidationFailed(_("At most %(max)d movements per call.") % {"max": BULK_MAX_ITEMS},
                               details={"count": count})


def _plan_versions_changed(pairs: Iterable[tuple[int, int]]) -> None:
    """Bump the plan version of each (product, location) and schedule their recompute after commit."""
    with connection.cursor() as cursor:
        for location_id, product_ids in _by_location(pairs).items():
            cursor.execute(sql.PLAN_BUMP_SQL, {"ids": product_ids, "location_id": location_id})
            projection_mark_dirty(product_ids=product_ids, location_id=location_id)


@transaction.atomic
def planned_movements_upsert(*, items: Sequence[PlannedMovementInput]) -> list[PlannedMovement]:
    """Create or update planned movements by (source, source_ref); codes resolve to canonical products.

    All lines are checked first and every bad line is reported at once; nothing is written if one is bad.
    """
    if not items:
        return []
    _count_check(len(items))
    places = _locations_of(items)
    resolved, errors = _upsert_check(items, places)
    _lines_refuse(errors)
    return _upsert_write(items, resolved, places)


def _upsert_keys(items: Sequence[PlannedMovementInput]) -> list[tuple[str, str]]:
    return [(i.source.strip(), i.source_ref.strip()) for i in items]


def _upsert_write(items: Sequence[PlannedMovementInput], resolved: dict[str, Product], places: dict[str, int],
                  previous: dict[tuple[str, str], tuple[int, int]] | None = None) -> list[PlannedMovement]:
    """Write the lines; ``previous`` is what _existing_products gave for their keys (read here when None)."""
    keys = _upsert_keys(items)
    if previous is None:
        previous = _existing_products(keys)
    rows = [
        PlannedMovement(
            product=resolved[code_normalise(i.code)], location_id=places[_location_key(i)], date=i.date,
            direction=i.direction,
            quantity=i.quantity, kind=i.kind, firmness=i.firmness, status=i.status,
            source=key[0], source_ref=key[1], note=i.note.strip(), updated_at=timezone.now(),
        )
        for i, key in zip(items, keys)
    ]
    PlannedMovement.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["source", "source_ref"],
        update_fields=["product", "location", "date", "direction", "quantity", "kind", "firmness", "status", "note",
                       "updated_at"],
    )
    # A line that moved to another product or location changes the projection it left too.
    _plan_versions_changed({(r.product_id, r.location_id) for r in rows} | set(previous.values()))
    wanted = set(keys)
    saved = PlannedMovement.objects.select_related("product", "location").filter(
        source__in={k[0] for k in keys}, source_ref__in={k[1] for k in keys}).order_by("pk")
    return [m for m in saved if (m.source, m.source_ref) in wanted]


def _existing_products(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
    """{(source, source_ref): (product_id, location_id)} of the rows that already exist, locked in pk order."""
    wanted = set(keys)
    rows = (
        PlannedMovement.objects.select_for_update(of=("self",))
        .filter(source__in={k[0] for k in keys}, source_ref__in={k[1] for k in keys})
        .order_by("pk").values_list("source", "source_ref", "product_id", "location_id")
    )
    return {(s, r): (p, loc) for s, r, p, loc in list(rows) if (s, r) in wanted}


@transaction.atomic
def planned_movements_cancel(*, keys: Sequence[tuple[str, str]], client=None) -> int:
    """Cancel open movements by (source, source_ref); unknown references are ignored. Returns how many changed.
    LocationForbidden when a client limited to some locations names a movement at another."""
    wanted = {(str(key[0]).strip(), str(key[1]).strip()) for key in keys}
    if not wanted:
        return 0
    rows = [
        (pk, (product_id, location_id)) for pk, s, r, product_id, location_id in list(
            PlannedMovement.objects.select_for_update(of=("self",))
            .filter(source__in={k[0] for k in wanted}, source_ref__in={k[1] for k in wanted})
            .exclude(status=PlannedStatus.CANCELLED)
            .order_by("pk").values_list("pk", "source", "source_ref", "product_id", "location_id"))
        if (s, r) in wanted
    ]
    if not rows:
        return 0
    _client_check(client, {location_id for _pk, (_product_id, location_id) in rows})
    PlannedMovement.objects.filter(pk__in=[pk for pk, _pair in rows]).update(
        status=PlannedStatus.CANCELLED, updated_at=timezone.now())
    _plan_versions_changed(pair for _pk, pair in rows)
    return len(rows)


@transaction.atomic
def planned_movements_changed(*, pairs: Iterable[tuple[int | None, int | None]]) -> None:
    """Count planned movements saved or deleted elsewhere (the admin) in the projections of these
    (product id, location id) pairs; pairs with a None are skipped."""
    _plan_versions_changed({(p, loc) for p, loc in pairs if p and loc})


def projection_summaries_ensure(*, product_ids: Sequence[int], location_id: int | None = None) -> None:
    """Compute the products that have no computed summary at the location yet (a read asked for them before
    any job did)."""
    from projections.models import ProjectionSummary

    location_id = location_id_or_default(location_id)
    done = set(ProjectionSummary.objects.filter(product_id__in=list(product_ids), location_id=location_id,
                                                computed_at__isnull=False).values_list("product_id", flat=True))
    missing = sorted(set(product_ids) - done)
    if missing:
        projection_recompute(product_ids=missing, location_id=location_id)


@transaction.atomic
def planned_movements_apply(*, items: Sequence[PlannedMovementInput], cancel: Sequence[tuple[Any, ...]],
                            client=None) -> tuple[list[PlannedMovement], int]:
    """One bulk call: upserts then cancellations, all or nothing. Returns (upserted rows, cancelled count).

    Every line of both lists is checked before anything is written (the codes of all upsert lines in one
    lookup), and every bad one is reported in one ValidationFailed: ``details.lines`` holds
    ``{"list": "upsert"|"cancel", "index", "source_ref", "errors": {field: message}}`` per bad line.
    ``cancel``: PlannedMovementKey, or plain (source, source_ref) pairs.
    """
    _count_check(len(items) + len(cancel))
    cancel = [PlannedMovementKey(*key) for key in cancel]
    places = _locations_of(items)
    resolved, errors = _upsert_check(items, places)
    _lines_refuse(errors + _cancel_check(cancel))
    rows = []
    if items:
        previous = _existing_products(_upsert_keys(items))
        # A client limited to some locations plans only there (lines without a location: the default one),
        # and may not take over a movement planned at another by re-sending its key.
        _client_check(client, {places[_location_key(i)] for i in items} | {loc for _p, loc in previous.values()})
        rows = _upsert_write(items, resolved, places, previous)
    return rows, planned_movements_cancel(keys=cancel, client=client)


def _client_check(client, location_ids: set[int]) -> None:
    """LocationForbidden when the API client or staff user is limited to some locations and names another;
    no query for the others (the lazy queryset is only read past the limit check)."""
    client_locations_check(client=client, locations=Location.objects.filter(pk__in=location_ids))


# ---------------------------------------------------------------------------------------------
# Reorder suggestions

REORDER_SOURCE = "reorder"


def _purchase_line(suggestion: ReorderSuggestion, *, lead_days: dict[int, int], today: date) -> PlannedMovementInput:
    lead = lead_days.get(suggestion.product_id, (suggestion.arrival_date - today).days)
    return PlannedMovementInput(
        source=REORDER_SOURCE, source_ref=f"suggestion-{suggestion.pk}", code=suggestion.product.code,
        date=today + timedelta(days=max(lead, 0)), direction=Direction.IN, quantity=suggestion.quantity,
        kind=PlannedKind.PURCHASE, firmness=Firmness.FIRM, note=f"reorder suggestion {suggestion.pk}",
        location=suggestion.location.code,
    )


@transaction.atomic
def reorder_suggestions_order(*, ids: Sequence[int], actor: str = "") -> list[ReorderSuggestion]:
    """Order the open suggestions among ``ids``: each becomes one firm purchase planned movement at its location
    (arriving after the product's lead time) and is closed as ordered. Suggestions not open are left as they are;
    returns the ones ordered now."""
    locked = [s for s in suggestions_lock(ids=sorted(set(ids))) if s.state == ReorderState.OPEN]
    if not locked:
        return []
    today, now = projection_today(), timezone.now()
    lead_days = dict(SupplyTerms.objects.filter(product_id__in=[s.product_id for s in locked])
                     .values_list("product_id", "lead_time_days"))
    movements = planned_movements_upsert(items=[_purchase_line(s, lead_days=lead_days, today=today) for s in locked])
    by_ref = {m.source_ref: m for m in movements}
    for suggestion in locked:
        suggestion.state = ReorderState.ORDERED
        suggestion.planned_movement = by_ref[f"suggestion-{suggestion.pk}"]
        suggestion.decided_by, suggestion.decided_at = actor[:150], now
        suggestion.save(update_fields=["state", "planned_movement", "decided_by", "decided_at", "updated_at"])
    return locked


def _one_open(suggestion_id: int, *, client=None) -> ReorderSuggestion:
    """The suggestion locked; NotFound, LocationForbidden for a client limited to other locations, or
    Conflict when it is no longer open."""
    found = suggestions_lock(ids=[suggestion_id]) if 0 < suggestion_id < 2**63 else []
    if not found:
        raise NotFound(_("No reorder suggestion has this id."), details={"id": suggestion_id})
    suggestion = found[0]
    client_locations_check(client=client, locations=[suggestion.location])
    if suggestion.state != ReorderState.OPEN:
        raise Conflict(_("This suggestion is already %(state)s.") % {"state": suggestion.get_state_display()},
                       details={"id": suggestion.pk, "state": suggestion.state})
    return suggestion


@transaction.atomic
def reorder_suggestion_order(*, suggestion_id: int, actor: str = "", client=None) -> ReorderSuggestion:
    """Order one open suggestion (see reorder_suggestions_order); NotFound, LocationForbidden, or Conflict
    when not open."""
    _one_open(suggestion_id, client=client)
    return reorder_suggestions_order(ids=[suggestion_id], actor=actor)[0]


@transaction.atomic
def reorder_suggestion_dismiss(*, suggestion_id: int, actor: str = "", client=None) -> ReorderSuggestion:
    """Close an open suggestion without ordering; the product gets no new suggestion at that location until
    the next store day."""
    suggestion = _one_open(suggestion_id, client=client)
    suggestion.state = ReorderState.DISMISSED
    suggestion.decided_by, suggestion.decided_at = actor[:150], timezone.now()
    suggestion.save(update_fields=["state", "decided_by", "decided_at", "updated_at"])
    return suggestion
