"""Writes for notifications: alert states and outbox rows on stock transitions, the buyers' daily reorder digest,
delivery, driver linking and mutes."""
import hashlib
import logging
import random
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Func, Max, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.metrics import PIPELINE_GAVE_UP
from core.realtime import realtime_publish
from inventory.models import Location, Product, Stock
from inventory.selectors import location_id_or_default
from notifications import locks, selectors, texts
from notifications.models import (
    AlertKind,
    AlertOutbox,
    AlertState,
    Driver,
    DriverMute,
    Level,
    MessageLevel,
    OutboxState,
    TelegramUpdate,
)
from notifications.telegram import (
    TelegramBadRequest,
    TelegramClient,
    TelegramError,
    TelegramMigrated,
    TelegramNotModified,
    TelegramParseError,
    TelegramRateLimited,
    TelegramUnreachable,
    client_default,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertTransition:
    """A product's stock level at one location crossed a boundary in this transaction.

    ``from_level``/``to_level`` are "ok", "low" or "out"; ``available`` is the value that caused it.
    Returned by ``alert_states_evaluate`` for other reactions (webhooks: stock.low, stock.out, stock.back_in).
    """

    product_id: int
    code: str
    from_level: str
    to_level: str
    available: int
    location_id: int | None = None
    location: str = ""


def level_for(*, available: int, threshold: int, previous: str, margin: int | None = None) -> str:
    """OUT at zero, LOW below the threshold, and OK again only at threshold + margin (hysteresis)."""
    margin = settings.ALERT_HYSTERESIS_MARGIN if margin is None else margin
    if available <= 0:
        return Level.OUT
    if available < threshold:
        return Level.LOW
    if previous != Level.OK and available < threshold + margin:
        return Level.LOW
    return Level.OK


StateKey = tuple[int, int]  # (product id, location id)


def alert_states_evaluate(*, stocks: Sequence[Stock]) -> list[AlertTransition]:
    """Called by ``stock_rows_changed`` under the stock row locks, with the changed rows of every location.
    One query when nothing crosses a boundary.

    Each (product, location) has its own level and hysteresis. On a crossing it updates that AlertState,
    writes or updates the outbox rows of that location's drivers in this transaction, and after commit
    queues delivery and publishes ``alert.raised``/``alert.resolved`` to the dashboards.
    """
    if not stocks:
        return []
    # Two IN lists rather than one OR per row (an import changes thousands of rows): a write touches one or
    # two locations, so the few extra states read are cheap, and only the changed rows' are kept.
    keys = {(s.product_id, s.location_id) for s in stocks}
    candidates = AlertState.objects.filter(product_id__in={key[0] for key in keys},
                                           location_id__in={key[1] for key in keys})
    states = {(s.product_id, s.location_id): s for s in candidates if (s.product_id, s.location_id) in keys}
    transitions = []
    for stock in stocks:
        if not stock.product.active:
            continue  # a delisted product is nobody's useless trip
        state = states.get((stock.product_id, stock.location_id))
        previous = state.level if state else Level.OK
        available = stock.on_hand - stock.reserved
        new = level_for(available=available, threshold=stock.product.low_stock_threshold, previous=previous)
        if new != previous:
            transitions.append(AlertTransition(stock.product_id, stock.product.code, previous, new, available,
                                               stock.location_id, stock.location.code))
    if transitions:
        _transitions_record(transitions=transitions, states=states,
                            stocks={(s.product_id, s.location_id): s for s in stocks})
    return transitions


def _transitions_record(*, transitions: list[AlertTransition], states: dict[StateKey, AlertState],
                        stocks: dict[StateKey, Stock]) -> None:
    now = timezone.now()  # when the stock changed: every alert text says so, however late it is delivered
    opened: list[AlertTransition] = []
    changed: list[tuple[AlertTransition, int]] = []
    for tr in transitions:
        key = (tr.product_id, tr.location_id)
        state = states.get(key)
        new_state = state is None
        if new_state:
            state = AlertState(product_id=tr.product_id, location_id=tr.location_id)
            states[key] = state
        if tr.from_level == Level.OK:
            state.episode += 1
            opened.append(tr)
        else:
            changed.append((tr, state.episode))
        state.level = tr.to_level
        state.save(force_insert=new_state)

    stock_level_rows = []
    by_location: dict[int, list[AlertTransition]] = defaultdict(list)
    for tr in opened:
        by_location[tr.location_id].append(tr)
    for location_id, opened_here in by_location.items():
        recipients = selectors.drivers_for_products(
            products=[stocks[(tr.product_id, location_id)].product for tr in opened_here], location_id=location_id)
        for tr in opened_here:
            for driver in recipients[tr.product_id]:
                stock_level_rows.append(AlertOutbox(
                    product_id=tr.product_id, location_id=location_id, driver=driver,
                    episode=states[(tr.product_id, location_id)].episode, kind=AlertKind.STOCK, level=tr.to_level,
                    available=tr.available, chat_id=driver.chat_id, changed_at=now,
                ))
    AlertOutbox.objects.bulk_create(stock_level_rows, ignore_conflicts=True)
    driver_ids = {row.driver_id for row in stock_level_rows}

    for tr, episode in changed:
        level = MessageLevel.RESOLVED if tr.to_level == Level.OK else tr.to_level
        rows = AlertOutbox.objects.filter(product_id=tr.product_id, location_id=tr.location_id, episode=episode,
                                          kind=AlertKind.STOCK)
        driver_ids.update(rows.exclude(state=OutboxState.DEAD).values_list("driver_id", flat=True))
        # Running out rings (a new message replying to the old one); any other change is a silent edit.
        rows.exclude(state=OutboxState.DEAD).update(
            level=level, available=tr.available, revision=F("revision") + 1, state=OutboxState.PENDING,
            next_attempt_at=None, updated_at=now, changed_at=now, ring=tr.to_level == Level.OUT,
        )

    events = [_alert_event(stocks[(tr.product_id, tr.location_id)].product, tr.to_level, tr.available,
                           now.isoformat(), location=tr.location)
              for tr in transitions]
    transaction.on_commit(partial(realtime_publish, events))
    if driver_ids:
        transaction.on_commit(partial(deliveries_queue, sorted(driver_ids)))


def _alert_event(product: Product, level: str, available: int, at: str,
                 stockout_date: date | None = None, *, location: str) -> dict[str, Any]:
    event = {
        "type": "alert.resolved" if level in (Level.OK, MessageLevel.RESOLVED) else "alert.raised",
        "at": at, "code": product.code, "location": location, "name": product.name, "category": product.category,
        "level": level if level != Level.OK else "resolved", "available": available,
    }
    if stockout_date:
        event["stockout_date"] = stockout_date.isoformat()
    return event


def deliveries_queue(driver_ids: Sequence[int], countdown: float | None = None) -> None:
    """Queue one delivery task per driver (after commit). Without a bot token there is nothing to queue."""
    if not settings.TELEGRAM_BOT_TOKEN:
        _log_no_token()
        return
    from notifications.tasks import alert_deliver_task

    for driver_id in driver_ids:
        try:
            alert_deliver_task.apply_async(args=[driver_id], countdown=countdown)
        except Exception:
            # The row is durable; the beat sweep will deliver it.
            logger.exception("could not queue alert delivery", extra={"driver_id": driver_id})


_no_token_logged = False


def _log_no_token() -> None:
    global _no_token_logged
    if not _no_token_logged:
        _no_token_logged = True
        logger.warning("TELEGRAM_BOT_TOKEN is not set: alerts are recorded and shown, Telegram delivery is skipped")


@transaction.atomic
def alert_projected_stockout(*, product_id: int, stockout_date: date | None, location_id: int | None = None,
                             location_code: str | None = None) -> bool:
    """Projections call this when a product enters (date) or leaves (None) the stockout-risk window at a location
    (``location_id``; None: the default location). ``location_code``, the location's code for the event, spares
    a query when the caller already has it (a batch of transitions reads every code at once).

    A lower-priority kind: sent silently, only to that location's drivers, and not at all while the product is
    already LOW or OUT there. Returns True when something changed.
    """
    location_id = location_id_or_default(location_id)
    if location_code is None:
        location_code = Location.objects.values_list("code", flat=True).get(pk=location_id)
    state, _ = AlertState.objects.select_for_update().get_or_create(product_id=product_id, location_id=location_id)
    product = Product.objects.get(pk=product_id)
    changed_at = timezone.now()
    now = changed_at.isoformat()
    episode_rows = AlertOutbox.objects.filter(product_id=product_id, location_id=location_id, kind=AlertKind.PROJECTED)
    if stockout_date is not None:
        if state.projected_stockout == stockout_date:
            return False
        opening = state.projected_stockout is None
        state.projected_stockout = stockout_date
        if opening:
            state.projected_episode += 1
        state.save()
        driver_ids: set[int] = set()
        if opening and state.level == Level.OK:
            recipients = selectors.drivers_for_products(products=[product], location_id=location_id)[product_id]
            rows = [AlertOutbox(product_id=product_id, location_id=location_id, driver=d, episode=state.projected_episode,
                                kind=AlertKind.PROJECTED, level=MessageLevel.PROJECTED, chat_id=d.chat_id,
                                stockout_date=stockout_date, changed_at=changed_at) for d in recipients]
            AlertOutbox.objects.bulk_create(rows, ignore_conflicts=True)
            driver_ids = {d.pk for d in recipients}
        elif not opening:
            rows = episode_rows.filter(episode=state.projected_episode).exclude(state=OutboxState.DEAD)
            driver_ids = set(rows.values_list("driver_id", flat=True))
            rows.update(stockout_date=stockout_date, revision=F("revision") + 1, state=OutboxState.PENDING,
                        updated_at=changed_at, changed_at=changed_at)
        event = _alert_event(product, "projected", _available(product_id, location_id), now, stockout_date,
                             location=location_code)
    else:
        if state.projected_stockout is None:
            return False
        state.projected_stockout = None
        state.save()
        rows = episode_rows.filter(episode=state.projected_episode).exclude(state=OutboxState.DEAD)
        driver_ids = set(rows.values_list("driver_id", flat=True))
        rows.update(level=MessageLevel.RESOLVED, revision=F("revision") + 1, state=OutboxState.PENDING,
                    updated_at=changed_at, changed_at=changed_at)
        event = _alert_event(product, MessageLevel.RESOLVED, _available(product_id, location_id), now,
                             location=location_code)
        event["kind"] = "projected"
    transaction.on_commit(partial(realtime_publish, [event]))
    if driver_ids:
        transaction.on_commit(partial(deliveries_queue, sorted(driver_ids)))
    return True


def _available(product_id: int, location_id: int) -> int:
    return (Stock.objects.filter(product_id=product_id, location_id=location_id)
            .values_list("available", flat=True).first() or 0)


@transaction.atomic
def reorder_digest_write(*, day: date | None = None) -> dict[int, int]:
    """The buyers' daily digest of open reorder suggestions: for every reachable buyer, the outbox rows of one
    message (split in parts within Telegram's limit) listing the suggestions they follow, most urgent first.

    Written once per buyer and day (``day``: the store's date by default): a buyer who already has the day's
    digest is skipped under their row lock, and a unique key (buyer, day, part) backs that up, so a re-run
    the same day writes and sends nothing. A buyer with no suggestion to read gets nothing. A buyer gets
    the suggestions of their locations (the default one when they list none), each line naming its location
    when they have several. Delivery is queued after commit. Returns {buyer id: parts written}.
    """
    day = day or timezone.localdate()
    lines = selectors.reorder_digest_lines()
    if not lines:
        return {}
    written: dict[int, int] = {}
    for buyer in selectors.buyers_reachable():
        places = selectors.driver_locations(buyer)
        own = selectors.reorder_digest_lines_for(buyer, lines, places)
        if not own:
            continue
        locks.driver_lock(driver_id=buyer.pk)
        if AlertOutbox.objects.filter(driver=buyer, kind=AlertKind.REORDER_DIGEST, digest_date=day).exists():
            continue
        parts = texts.reorder_digest_render(buyer.language, own, day=day, with_location=len(places) > 1)
        created = AlertOutbox.objects.bulk_create([
            AlertOutbox(driver=buyer, kind=AlertKind.REORDER_DIGEST, level=MessageLevel.REORDER, episode=0,
                        digest_date=day, part=index, text=text, chat_id=buyer.chat_id)
            for index, text in enumerate(parts)
        ], ignore_conflicts=True)
        written[buyer.pk] = len(created)
    if written:
        transaction.on_commit(partial(deliveries_queue, sorted(written)))
    return written


# --- delivery -------------------------------------------------------------------------------------------------

@dataclass
class DeliveryResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    retry_in: float | None = None


def _quiet_now(driver: Driver, now: datetime) -> bool:
    if driver.quiet_start is None or driver.quiet_end is None:
        return False
    local = timezone.localtime(now).time()
    if driver.quiet_start <= driver.quiet_end:
        return driver.quiet_start <= local < driver.quiet_end
    return local >= driver.quiet_start or local < driver.quiet_end


@transaction.atomic
def _outbox_claim(*, driver_id: int, token: str, limit: int = 200) -> list[AlertOutbox]:
    """Take the driver's due rows for a short lease so a task and the sweep never send the same row twice.

    One chat's messages keep their order: while an earlier row waits out an outage (or a 429), or another
    worker is sending to the chat, nothing is taken, and rows that are due join the wait, so they go out
    with (never before) the earlier ones. Claims of one driver take turns on the driver's row lock.
    """
    now = timezone.now()
    locks.driver_lock(driver_id=driver_id)
    unsettled = AlertOutbox.objects.filter(driver_id=driver_id, state__in=[OutboxState.PENDING, OutboxState.FAILED])
    if unsettled.filter(claimed_until__gte=now).exists():
        return []  # the worker sending now queues the driver again when it is done
    held_until = unsettled.filter(next_attempt_at__gt=now).aggregate(until=Max("next_attempt_at"))["until"]
    if held_until is not None:
        unsettled.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)).update(
            next_attempt_at=held_until)
        return []
    rows = list(
        AlertOutbox.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("product", "location")
        .filter(driver_id=driver_id, state__in=[OutboxState.PENDING, OutboxState.FAILED])
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("pk")[:limit]
    )
    if rows:
        AlertOutbox.objects.filter(pk__in=[r.pk for r in rows]).update(
            claimed_until=now + timedelta(seconds=settings.ALERT_CLAIM_SECONDS), claim_token=token)
    return rows


def _line(row: AlertOutbox, *, substitutes: Sequence[tuple[str, str]] = (), named: bool) -> texts.AlertLine:
    """What one alert row shows; ``named``: the install has several active locations, so it says where."""
    location = row.location.name if named and row.location_id else ""
    return texts.AlertLine(row.product_id, row.product.code, row.product.name, row.level, row.available,
                           row.stockout_date, tuple(substitutes), row.changed_at, location)


def _digest_line(row: AlertOutbox, *, named: bool) -> texts.AlertLine:
    """A digest line; one for a product that is out carries what to offer instead (at the alert's location)."""
    out = row.level == MessageLevel.OUT
    subs = selectors.substitutes_for(product=row.product, location_id=row.location_id) if out else ()
    return _line(row, substitutes=subs, named=named)


def _sort_key(row: AlertOutbox) -> tuple:
    order = {MessageLevel.OUT: 0, MessageLevel.LOW: 1, MessageLevel.PROJECTED: 2, MessageLevel.RESOLVED: 3}
    return order.get(row.level, 9), row.product.name


def _message_payload(driver: Driver, rows: list[AlertOutbox]) -> dict[str, Any]:
    named = selectors.locations_several()
    if len(rows) == 1:
        row = rows[0]
        subs = (selectors.substitutes_for(product=row.product, location_id=row.location_id)
                if row.level in (Level.LOW, Level.OUT) else [])
        payload = {"text": texts.alert_render(driver.language, _line(row, named=named), subs)}
        if row.level != MessageLevel.RESOLVED:
            payload["reply_markup"] = texts.alert_buttons(driver.language, row.product_id)
    else:
        lines = [_digest_line(r, named=named) for r in sorted(rows, key=_sort_key)]
        payload = {"text": texts.digest_render(driver.language, lines)}
    payload["parse_mode"] = "HTML"
    return payload


def alert_deliver(*, driver_id: int, client: TelegramClient | None = None) -> DeliveryResult:
    """Send (or edit) every due alert of one driver. Network calls happen outside any transaction or lock.

    New rows go out as one message (a digest when several are due at once); rows that ran out since their
    message was sent go out as a new message replying to it (so the phone rings; the old message is left
    as it was, a record of the earlier level with its time); other rows already sent are re-rendered into
    the message they belong to with editMessageText, which Telegram never notifies.
    """
    client = client or client_default()
    result = DeliveryResult()
    if not client.configured:
        _log_no_token()
        return result
    token = secrets.token_hex(8)
    driver = Driver.objects.filter(pk=driver_id).first()
    if driver is None or not driver.active or driver.unreachable or driver.chat_id is None:
        rows = _outbox_claim(driver_id=driver_id, token=token)
        _rows_finish(rows, token, state=OutboxState.DEAD, error="driver inactive, unlinked or unreachable")
        result.dead += len(rows)
        return result
    # Take the chat's send slot before claiming: rows that arrive while we wait join this message as a
    # digest, and a worker never sleeps on a busy chat (the task comes back when the slot is free).
    wait = client.limiter.acquire_wait(chat_id=driver.chat_id, is_group=driver.is_group)
    if wait > 0:
        if client.limiter.defer_once(driver_id=driver_id, seconds=wait):
            deliveries_queue([driver_id], countdown=wait)
        result.retry_in = wait
        return result
    rows = _outbox_claim(driver_id=driver_id, token=token)
    if not rows:
        return result

    digests = [r for r in rows if r.kind == AlertKind.REORDER_DIGEST]
    rows = [r for r in rows if r.kind != AlertKind.REORDER_DIGEST]
    new_rows = [r for r in rows if r.message_id is None]
    rings: dict[int, list[AlertOutbox]] = defaultdict(list)
    edits: dict[int, list[AlertOutbox]] = defaultdict(list)
    for row in rows:
        if row.message_id is not None:
            (rings if row.ring and row.level == MessageLevel.OUT else edits)[row.message_id].append(row)

    slot = True
    if new_rows:
        payload = _message_payload(driver, new_rows)
        payload["disable_notification"] = _silent(driver, new_rows)
        _deliver_one(client, driver, new_rows, "sendMessage", payload, token, result, slot_taken=slot)
        slot = False
    for message_id, claimed in rings.items():
        # The old message and its copies stay as they were; edits from now on go to the new one.
        AlertOutbox.objects.filter(pk__in=[r.pk for r in claimed]).update(copy_message_ids=[])
        payload = _message_payload(driver, claimed)
        payload["disable_notification"] = _silent(driver, claimed)
        payload["reply_parameters"] = {"message_id": message_id, "allow_sending_without_reply": True}
        _deliver_one(client, driver, claimed, "sendMessage", payload, token, result, slot_taken=slot)
        slot = False
    for message_id, claimed in edits.items():
        members = list(AlertOutbox.objects.select_related("product", "location")
                       .filter(driver=driver, message_id=message_id)
                       .exclude(kind=AlertKind.REORDER_DIGEST))
        current = {r.pk: r for r in claimed}
        members = [current.get(r.pk, r) for r in members]
        payload = _message_payload(driver, members)
        payload["message_id"] = message_id
        copies = sorted({copy for r in members for copy in r.copy_message_ids})
        _deliver_one(client, driver, claimed, "editMessageText", payload, token, result, slot_taken=slot,
                     copies=copies)
        slot = False
    if digests:
        _digest_part_deliver(client, driver, digests, token, result, slot_taken=slot)

    still_pending = (AlertOutbox.objects.filter(driver_id=driver_id, state=OutboxState.PENDING,
                                                claimed_until__isnull=True)
                     .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())).exists())
    if result.retry_in is not None:
        if client.limiter.defer_once(driver_id=driver_id, seconds=result.retry_in):
            deliveries_queue([driver_id], countdown=result.retry_in)
    elif still_pending:
        deliveries_queue([driver_id])
    return result


def _digest_part_deliver(client: TelegramClient, driver: Driver, rows: list[AlertOutbox], token: str,
                         result: DeliveryResult, *, slot_taken: bool) -> None:
    """Send the first claimed part of a reorder digest, as its own message with the text written for it, in the
    chat slot this pass took. Only when the slot is still free and nothing of this pass is waiting out a
    failure: otherwise, and for the parts after it, the claims are handed back, so the parts go out in order,
    one per slot, each on a later pass (the task is queued again, never sleeping on the chat)."""
    first, *later = sorted(rows, key=lambda r: (r.digest_date, r.part, r.pk))
    if slot_taken and result.retry_in is None:
        payload = {"text": first.text, "parse_mode": "HTML", "disable_notification": _quiet_now(driver, timezone.now())}
        _deliver_one(client, driver, [first], "sendMessage", payload, token, result, slot_taken=True)
    else:
        later = rows
    AlertOutbox.objects.filter(pk__in=[r.pk for r in later], claim_token=token).update(
        claimed_until=None, claim_token="")


def _silent(driver: Driver, rows: Sequence[AlertOutbox]) -> bool:
    """A new message rings unless the driver is in quiet hours or nothing in it needs them now (projected
    stockouts, back in stock)."""
    quiet_levels = (MessageLevel.PROJECTED, MessageLevel.RESOLVED)
    return _quiet_now(driver, timezone.now()) or all(r.level in quiet_levels for r in rows)


def _deliver_one(client: TelegramClient, driver: Driver, rows: list[AlertOutbox], method: str,
                 payload: dict[str, Any], token: str, result: DeliveryResult, slot_taken: bool = False,
                 copies: Sequence[int] = ()) -> None:
    payload["chat_id"] = driver.chat_id
    already = max(r.attempts for r in rows)
    # Quick retries on the first try only; a chat already failing is tried once per pass, on the backoff.
    allowed = 1 + settings.TELEGRAM_MAX_RETRIES if already == 0 else 1
    late = partial(_late_copy_record, [r.pk for r in rows]) if method == "sendMessage" else None
    for _ in range(2):  # a second round only after a chat migration
        try:
            try:
                answer = client.chat_call(method, payload, is_group=driver.is_group, attempts_allowed=allowed,
                                          slot_taken=slot_taken, on_late_answer=late)
            except TelegramNotModified:
                answer = None
            slot_taken = False
            if copies:
                _copies_edit(client, driver, rows, payload, copies)
        except TelegramMigrated as exc:
            driver_chat_migrate(driver=driver, new_chat_id=exc.new_chat_id)
            payload["chat_id"] = driver.chat_id
            continue
        except TelegramRateLimited as exc:
            _rows_finish(rows, token, state=OutboxState.FAILED, error=f"429: {exc.description}",
                         retry_in=exc.retry_after, attempts=0)
            result.failed += len(rows)
            result.retry_in = max(result.retry_in or 0, exc.retry_after)
            return
        except TelegramUnreachable as exc:
            driver_mark_unreachable(driver=driver, reason=exc.description)
            _rows_finish(rows, token, state=OutboxState.DEAD, error=f"unreachable: {exc.description}", attempts=1)
            result.dead += len(rows)
            return
        except (TelegramBadRequest, TelegramParseError) as exc:
            if method == "editMessageText" and _edit_target_gone(exc):
                # The chat lost the old message: send the current text as a new one.
                AlertOutbox.objects.filter(pk__in=[r.pk for r in rows]).update(message_id=None, copy_message_ids=[])
                payload.pop("message_id", None)
                payload["disable_notification"] = _silent(driver, rows)
                method, copies = "sendMessage", ()
                late = partial(_late_copy_record, [r.pk for r in rows])
                continue
            _rows_finish(rows, token, state=OutboxState.DEAD, error=f"{exc.status}: {exc.description}", attempts=1)
            result.dead += len(rows)
            return
        except TelegramError as exc:
            _rows_outage(rows, token, exc, already=already, result=result, driver=driver)
            return
        message_id = answer.get("message_id") if isinstance(answer, dict) else payload.get("message_id")
        _rows_sent(rows, token, chat_id=driver.chat_id, message_id=message_id)
        result.sent += len(rows)
        return


def _edit_target_gone(exc: TelegramError) -> bool:
    return "message to edit not found" in exc.description.lower()


def _copies_edit(client: TelegramClient, driver: Driver, rows: list[AlertOutbox], payload: dict[str, Any],
                 copies: Sequence[int]) -> None:
    """The same edit for every extra copy of the message; a copy the chat deleted is forgotten."""
    for copy in copies:
        try:
            client.chat_call("editMessageText", {**payload, "message_id": copy}, is_group=driver.is_group,
                             attempts_allowed=1)
        except TelegramNotModified:
            pass
        except TelegramBadRequest as exc:
            if not _edit_target_gone(exc):
                raise
            AlertOutbox.objects.filter(pk__in=[r.pk for r in rows]).update(
                copy_message_ids=Func(F("copy_message_ids"), Value(copy), function="array_remove"))


def _late_copy_record(row_ids: list[int], answer: Any) -> None:
    """Telegram accepted a sendMessage after our client had timed out: that message is a copy of these
    alerts too, and later edits must reach it. Runs on the request's own thread."""
    message_id = answer.get("message_id") if isinstance(answer, dict) else None
    if message_id is None:
        return
    try:
        AlertOutbox.objects.filter(pk__in=row_ids).exclude(message_id=message_id).exclude(
            copy_message_ids__contains=[message_id]).update(
            copy_message_ids=Func(F("copy_message_ids"), Value(int(message_id)), function="array_append"))
    finally:
        connection.close()  # this thread's own connection; the thread ends here


def retry_delay(*, attempts: int) -> float:
    """Seconds until an alert that failed ``attempts`` times in an outage is tried again: the base doubling
    with each attempt up to ALERT_RETRY_MAX_SECONDS, then a random point in its upper half (jitter), so
    the chats of one outage do not all come back in the same second."""
    delay = min(settings.ALERT_RETRY_MAX_SECONDS,
                settings.ALERT_RETRY_BASE_SECONDS * 2.0 ** min(max(attempts - 1, 0), 32))
    return random.uniform(delay / 2, delay)


def _rows_outage(rows: list[AlertOutbox], token: str, exc: TelegramError, *, already: int,
                 result: DeliveryResult, driver: Driver) -> None:
    """A 5xx, timeout or connection error: an outage, not a verdict. Back off and try again; a row is dead
    once it has been failing for ALERT_GIVE_UP_AFTER (each row by its own clock: one that joined the
    chat's wait later gets its full time)."""
    attempts = getattr(exc, "attempts", 1)
    now = timezone.now()
    give_up = timedelta(seconds=settings.ALERT_GIVE_UP_AFTER)
    expired = [r for r in rows if r.failing_since and now - r.failing_since >= give_up]
    going_on = [r for r in rows if r not in expired]
    if expired:
        _rows_finish(expired, token, state=OutboxState.DEAD, error=exc.description, attempts=attempts)
        result.dead += len(expired)
        logger.error("alert delivery gave up", extra={"driver_id": driver.pk, "rows": [r.pk for r in expired]})
    if going_on:
        # The last try falls on the earliest give-up time rather than after it.
        give_up_in = min(((r.failing_since or now) + give_up - now).total_seconds() for r in going_on)
        retry_in = min(retry_delay(attempts=already + attempts), give_up_in)
        _rows_finish(going_on, token, state=OutboxState.FAILED, error=exc.description, attempts=attempts,
                     retry_in=retry_in, failing_since=now, now=now)
        result.failed += len(going_on)
        result.retry_in = max(result.retry_in or 0, retry_in)


def _rows_sent(rows: list[AlertOutbox], token: str, *, chat_id: int, message_id: int | None) -> None:
    now = timezone.now()
    with transaction.atomic():
        for row in rows:
            base = AlertOutbox.objects.filter(pk=row.pk, claim_token=token)
            fields = dict(chat_id=chat_id, claimed_until=None, claim_token="", last_error="", attempts=0,
                          next_attempt_at=None, failing_since=None)
            if message_id is not None:
                fields["message_id"] = message_id
            # A change that arrived while we were sending keeps the row pending for the next pass.
            # A ring is done once its revision went out; a newer change keeps its own ring flag.
            base.filter(revision=row.revision).update(state=OutboxState.SENT, delivered_revision=row.revision,
                                                      sent_at=now, ring=False, **fields)
            base.exclude(revision=row.revision).update(delivered_revision=row.revision,
                                                       state=OutboxState.PENDING, **fields)


def _rows_finish(rows: list[AlertOutbox], token: str, *, state: str, error: str, attempts: int = 0,
                 retry_in: float | None = None, failing_since: datetime | None = None,
                 now: datetime | None = None) -> None:
    next_at = (now or timezone.now()) + timedelta(seconds=retry_in) if retry_in is not None else None
    # A row's outage start is set once and kept (through a 429 in between too); success (_rows_sent) clears it.
    outage = {"failing_since": Coalesce("failing_since", Value(failing_since))} if failing_since is not None else {}
    finished = AlertOutbox.objects.filter(pk__in=[r.pk for r in rows], claim_token=token).update(
        state=state, last_error=error[:300], attempts=F("attempts") + attempts, next_attempt_at=next_at,
        claimed_until=None, claim_token="", **outage,
    )
    if state == OutboxState.DEAD and finished:
        transaction.on_commit(partial(PIPELINE_GAVE_UP.labels("alerts").inc, finished))


def alert_outbox_sweep(*, now: datetime | None = None) -> list[int]:
    """Queue delivery for rows whose task was lost (worker killed, broker hiccup). Returns the driver ids."""
    if not settings.TELEGRAM_BOT_TOKEN:
        _log_no_token()
        return []
    driver_ids = selectors.outbox_driver_ids_due(now=now or timezone.now(),
                                                 grace_seconds=settings.ALERT_SWEEP_GRACE_SECONDS)
    deliveries_queue(driver_ids)
    return driver_ids


@transaction.atomic
def outbox_resend(*, ids: Sequence[int]) -> int:
    """Staff asked to send these alerts again (as new messages), whatever happened to them before."""
    ids = list(ids)
    count = AlertOutbox.objects.filter(pk__in=ids).update(
        state=OutboxState.PENDING, attempts=0, next_attempt_at=None, claimed_until=None, claim_token="",
        message_id=None, copy_message_ids=[], failing_since=None, delivered_revision=0, last_error="",
        updated_at=timezone.now(),
    )
    driver_ids = sorted(set(AlertOutbox.objects.filter(pk__in=ids).values_list("driver_id", flat=True)))
    transaction.on_commit(partial(deliveries_queue, driver_ids))
    return count


# --- drivers ----------------------------------------------------------------------------------------------------

def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def driver_link_create(*, driver: Driver) -> str:
    """A one-time deep link ``https://t.me/<bot>?start=<token>``; a new link replaces the previous one."""
    raw = secrets.token_urlsafe(24)
    driver.link_token_hash = _token_hash(raw)
    driver.link_token_expires_at = timezone.now() + timedelta(hours=settings.ALERT_LINK_TOKEN_HOURS)
    driver.save(update_fields=["link_token_hash", "link_token_expires_at"])
    return f"https://t.me/{settings.TELEGRAM_BOT_USERNAME}?start={raw}"


@transaction.atomic
def driver_link_redeem(*, token: str, chat_id: int, is_group: bool = False) -> Driver | None:
    """``/start <token>``: link this chat to the driver the token was made for; the token then stops working."""
    if not token or len(token) > 64:
        return None
    driver = (Driver.objects.select_for_update()
              .filter(link_token_hash=_token_hash(token), link_token_expires_at__gt=timezone.now()).first())
    if driver is None:
        return None
    Driver.objects.filter(chat_id=chat_id).exclude(pk=driver.pk).update(chat_id=None)
    driver.chat_id = chat_id
    driver.is_group = is_group
    driver.unreachable = False
    driver.unreachable_reason = ""
    driver.link_token_hash = ""
    driver.link_token_expires_at = None
    driver.linked_at = timezone.now()
    driver.save()
    return driver


@transaction.atomic
def driver_mark_unreachable(*, driver: Driver, reason: str) -> None:
    driver.unreachable = True
    driver.unreachable_reason = reason[:200]
    Driver.objects.filter(pk=driver.pk).update(unreachable=True, unreachable_reason=reason[:200])


@transaction.atomic
def driver_chat_migrate(*, driver: Driver, new_chat_id: int) -> None:
    """A group became a supergroup: alerts follow it to the new chat id."""
    Driver.objects.filter(chat_id=new_chat_id).exclude(pk=driver.pk).update(chat_id=None)
    driver.chat_id = new_chat_id
    Driver.objects.filter(pk=driver.pk).update(chat_id=new_chat_id, is_group=True)
    AlertOutbox.objects.filter(driver=driver).update(chat_id=new_chat_id)


@transaction.atomic
def driver_mute(*, driver: Driver, product: Product, hours: float) -> DriverMute:
    until = timezone.now() + timedelta(hours=hours)
    mute, _ = DriverMute.objects.update_or_create(driver=driver, product=product, defaults={"until": until})
    return mute


# --- bot updates ------------------------------------------------------------------------------------------------

def update_chat(update: dict[str, Any]) -> dict[str, Any]:
    """The chat an update came from (a message's, or the message under a pressed button); {} without one."""
    message = update.get("message")
    if not isinstance(message, dict):
        query = update.get("callback_query")
        message = query.get("message") if isinstance(query, dict) else None
    chat = message.get("chat") if isinstance(message, dict) else None
    return chat if isinstance(chat, dict) else {}


@transaction.atomic
def telegram_update_record(*, update: dict[str, Any]) -> bool:
    """Remember an update; False when its update_id was seen before (Telegram redelivers on errors)."""
    chat_id = update_chat(update).get("id")
    if not isinstance(chat_id, int) or isinstance(chat_id, bool):
        chat_id = None  # nothing to answer in order
    _, created = TelegramUpdate.objects.get_or_create(update_id=int(update["update_id"]),
                                                      defaults={"payload": update, "chat_id": chat_id})
    return created


@transaction.atomic
def telegram_update_answer(*, update_id: int, answer: Callable[..., Any]) -> Any:
    """Process an update of a chat's queue exactly once: ``answer(update=payload)`` runs in this transaction (its
    writes, e.g. a link or a mute, commit with the update marked processed) and returns what the bot says,
    whose ``reply`` (a sendMessage payload, or None) is stored to go out in the chat's turn.

    Returns None when another worker holds the update or it was processed already. No network I/O here:
    a worker killed meanwhile leaves the update unprocessed, for the sweep.
    """
    taken = list(TelegramUpdate.objects.select_for_update(skip_locked=True)
                 .filter(update_id=update_id, processed_at__isnull=True).values_list("payload", flat=True))
    if not taken:
        return None
    result = answer(update=taken[0])
    now = timezone.now()
    TelegramUpdate.objects.filter(update_id=update_id).update(
        processed_at=now, reply=result.reply, replied_at=None if result.reply else now)
    return result


def telegram_update_drop(*, update_id: int) -> None:
    """Processing this update failed (its writes were rolled back): it is given up, without a reply."""
    now = timezone.now()
    TelegramUpdate.objects.filter(update_id=update_id, processed_at__isnull=True).update(
        processed_at=now, replied_at=now)


def telegram_reply_claim(*, update_id: int) -> datetime | None:
    """A lease on sending this update's stored reply (its end, to hand back); None if someone else holds it
    or it went out."""
    now = timezone.now()
    until = now + timedelta(seconds=settings.ALERT_CLAIM_SECONDS)
    won = (TelegramUpdate.objects.filter(update_id=update_id, replied_at__isnull=True, reply__isnull=False)
           .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).update(claimed_until=until))
    return until if won else None


def telegram_reply_release(*, update_id: int, lease: datetime) -> None:
    """The reply could not go yet (the chat's slot is taken): it stays first in the chat's queue."""
    TelegramUpdate.objects.filter(update_id=update_id, claimed_until=lease).update(claimed_until=None)


def telegram_reply_done(*, update_id: int) -> None:
    """The reply went out (or can never go): the chat's next update comes up."""
    TelegramUpdate.objects.filter(update_id=update_id).update(replied_at=timezone.now(), claimed_until=None)


def telegram_update_claim(*, update_id: int) -> dict[str, Any] | None:
    """The payload if this caller is the one to process the update, else None (exactly one caller wins)."""
    with transaction.atomic():
        now = timezone.now()  # answered right away by the caller, outside any chat queue
        won = TelegramUpdate.objects.filter(update_id=update_id, processed_at__isnull=True).update(
            processed_at=now, replied_at=now)
        if not won:
            return None
        return TelegramUpdate.objects.values_list("payload", flat=True).get(update_id=update_id)


def telegram_updates_sweep(*, now: datetime | None = None) -> list[int]:
    """Queue processing of updates the webhook stored but could not hand to Celery (the broker was down),
    and of replies whose chat's task was lost, oldest first. Returns their ids; what was answered
    meanwhile is skipped by its claim."""
    from notifications.tasks import telegram_update_process_task

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ALERT_SWEEP_GRACE_SECONDS)
    update_ids = selectors.telegram_updates_unanswered(received_before=cutoff, now=now)
    for update_id in update_ids:
        telegram_update_process_task.delay(update_id)
    return update_ids


def telegram_updates_prune(*, older_than: timedelta = timedelta(hours=48)) -> int:
    deleted, _ = TelegramUpdate.objects.filter(received_at__lt=timezone.now() - older_than).delete()
    return deleted
