"""Writes for inventory: products, unified codes, locations and every change of stock counters with its ledger rows."""
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import atomic_with_retry
from core.errors import Conflict, InsufficientStock, NotFound, Unavailable, UnknownCode, ValidationFailed
from core.metrics import STOCK_CHANGES
from inventory.codes import code_is_valid, code_normalise
from inventory.locks import StockKey, stocks_lock, transfer_lock
from inventory.models import (
    Location,
    LocationKind,
    MovementKind,
    Product,
    Stock,
    StockMovement,
    Transfer,
    TransferStatus,
    UnifiedCode,
    Unit,
)
from inventory.selectors import (
    client_locations_check,
    location_default_id,
    location_for_client,
    location_resolve,
    product_resolve,
    products_resolve_many,
)
from inventory.stock_changes import stock_rows_changed
from projections.models import Direction, PlannedKind, PlannedStatus
from projections.services import PlannedMovementInput, planned_movements_upsert, projection_today


@dataclass(frozen=True)
class StockChange:
    """One change to one product's counters at one location (None: the default location).
    ``on_hand`` changes need a movement ``kind`` for the ledger."""

    product_id: int
    on_hand: int = 0
    reserved: int = 0
    kind: str | None = None
    reason: str = ""
    reference: str = ""
    reservation_id: UUID | None = None
    location_id: int | None = None
    transfer_id: int | None = None
    extra: dict = field(default_factory=dict)


def quantity_validate(value: object, *, field_name: str = "quantity", allow_zero: bool = False,
                      allow_negative: bool = False) -> int:
    """A whole number of units within the configured bounds, or ValidationFailed naming the field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(_("%(field)s must be a whole number.") % {"field": field_name},
                               details={field_name: value})
    limit = settings.STOCK_MAX_QUANTITY
    low = -limit if allow_negative else (0 if allow_zero else 1)
    if value < low or value > limit or (value == 0 and not allow_zero):
        message = (_("%(field)s must be between %(min)d and %(max)d.") if allow_zero
                   else _("%(field)s must be between %(min)d and %(max)d, not zero."))
        raise ValidationFailed(message % {"field": field_name, "min": low, "max": limit},
                               details={field_name: value})
    return value


def _stock_rows_ensure(keys: set[StockKey]) -> None:
    """Create the missing Stock rows of these pairs (a product's first units at a location), empty.
    A concurrent creator of the same row wins quietly; the caller then locks it like any other."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO inventory_stock (product_id, location_id, on_hand, reserved, version, updated_at)"
            " SELECT k.product_id, k.location_id, 0, 0, 0, now()"
            "   FROM unnest(%s::bigint[], %s::bigint[]) AS k(product_id, location_id)"
            "   JOIN inventory_product p ON p.id = k.product_id"
            " ON CONFLICT (product_id, location_id) DO NOTHING",
            [[k[0] for k in sorted(keys)], [k[1] for k in sorted(keys)]],
        )


def stock_rows_lock(*, keys: set[StockKey]) -> dict[StockKey, Stock]:
    """Lock the Stock rows of these (product, location) pairs in pk order, creating missing ones first."""
    locked = {(s.product_id, s.location_id): s for s in stocks_lock(keys=keys)}
    missing = keys - set(locked)
    if missing:
        _stock_rows_ensure(missing)
        locked = {(s.product_id, s.location_id): s for s in stocks_lock(keys=keys)}
    return locked


def stock_apply(*, changes: Sequence[StockChange], actor: str = "") -> list[Stock]:
    """Apply changes to counters under row locks (pk order); all or nothing. Must run inside a transaction.

    Merges changes per product and location, refuses any that would take on_hand or reserved below
    zero, writes counters with F() expressions, bumps versions, appends ledger rows and registers
    the after-commit side effects. Returns the changed rows as they now are, each with
    ``written_movements``: the ledger rows this call wrote for it.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("stock_apply must run inside transaction.atomic")
    if not changes:
        return []
    default_id = location_default_id()
    keyed = [(c, (c.product_id, c.location_id or default_id)) for c in changes]
    locked = stock_rows_lock(keys={key for _, key in keyed})
    missing = sorted({key for _, key in keyed} - set(locked))
    if missing:
        raise Conflict(_("Some products have no stock row."), details={"product_ids": [k[0] for k in missing]})

    on_hand_delta: dict[StockKey, int] = {}
    reserved_delta: dict[StockKey, int] = {}
    for change, key in keyed:
        on_hand_delta[key] = on_hand_delta.get(key, 0) + change.on_hand
        reserved_delta[key] = reserved_delta.get(key, 0) + change.reserved
    short = []
    for key, stock in locked.items():
        new_on_hand = stock.on_hand + on_hand_delta[key]
        new_reserved = stock.reserved + reserved_delta[key]
        if new_on_hand < 0 or new_reserved < 0:
            short.append({"code": stock.product.code, "location": stock.location.code, "on_hand": stock.on_hand,
                          "change": on_hand_delta[key]})
    if short:
        raise Conflict(_("The change would take stock below zero."), details={"lines": short})

    # update() skips auto_now: the change's time is set here, as the reservation statements do.
    changed_at = timezone.now()
    # One ledger row per change that moves on_hand (below).
    rows_added = {key: 0 for key in locked}
    for change, key in keyed:
        rows_added[key] += change.on_hand != 0
    for key, stock in sorted(locked.items(), key=lambda item: item[1].pk):
        Stock.objects.filter(pk=stock.pk).update(
            on_hand=F("on_hand") + on_hand_delta[key],
            reserved=F("reserved") + reserved_delta[key],
            version=F("version") + 1,
            movement_count=F("movement_count") + rows_added[key],
            updated_at=changed_at,
        )
        stock.on_hand += on_hand_delta[key]
        stock.reserved += reserved_delta[key]
        stock.version += 1
        stock.movement_count += rows_added[key]
        stock.updated_at = changed_at

    running = {key: s.on_hand - on_hand_delta[key] for key, s in locked.items()}
    movements = []
    for change, key in keyed:
        if change.on_hand == 0:
            continue
        if change.kind is None:
            raise ValueError("a change of on_hand needs a movement kind")
        running[key] += change.on_hand
        movements.append(
            StockMovement(
                product_id=change.product_id,
                location_id=key[1],
                kind=change.kind,
                quantity=change.on_hand,
                on_hand_after=running[key],
                reason=change.reason[:255],
                reference=change.reference[:128],
                reservation_id=change.reservation_id,
                transfer_id=change.transfer_id,
                actor=actor[:150],
            )
        )
        STOCK_CHANGES.labels(change.kind).inc()
    StockMovement.objects.bulk_create(movements)
    stocks = sorted(locked.values(), key=lambda s: s.pk)
    for stock in stocks:
        # Callers that answer with the ledger rows they caused (the movements API) read them here.
        stock.written_movements = [m for m in movements
                                   if (m.product_id, m.location_id) == (stock.product_id, stock.location_id)]
    stock_rows_changed(stocks=stocks)
    return stocks


def _stock_add_units(*, kind: str, code: str, quantity: int, reason: str, reference: str, actor: str,
                     location: str | None) -> Stock:
    quantity_validate(quantity)
    product = product_resolve(code=code)
    place = location_resolve(code=location)
    change = StockChange(product_id=product.pk, on_hand=quantity, kind=kind, reason=reason or kind,
                         reference=reference, location_id=place.pk)
    return stock_apply(changes=[change], actor=actor)[0]


@atomic_with_retry()
def stock_receive(*, code: str, quantity: int, reason: str = "", reference: str = "", actor: str = "",
                  location: str | None = None) -> Stock:
    """Units arrive (a supplier delivery) at a location (the default one when None)."""
    return _stock_add_units(kind=MovementKind.RECEIPT, code=code, quantity=quantity, reason=reason,
                            reference=reference, actor=actor, location=location)


@atomic_with_retry()
def stock_return(*, code: str, quantity: int, reason: str = "", reference: str = "", actor: str = "",
                 location: str | None = None) -> Stock:
    """Units come back from a customer and are sellable again."""
    return _stock_add_units(kind=MovementKind.RETURN, code=code, quantity=quantity, reason=reason,
                            reference=reference, actor=actor, location=location)


@atomic_with_retry()
def stock_adjust(*, code: str, delta: int, reason: str, reference: str = "", actor: str = "",
                 location: str | None = None) -> Stock:
    """Add or remove units (damage, loss, found stock). The reason is required and kept in the ledger."""
    quantity_validate(delta, field_name="quantity", allow_negative=True)
    if not reason or not reason.strip():
        raise ValidationFailed(_("An adjustment needs a reason."), details={"reason": "required"})
    product = product_resolve(code=code)
    place = location_resolve(code=location)
    change = StockChange(product_id=product.pk, on_hand=delta, kind=MovementKind.ADJUSTMENT,
                         reason=reason.strip(), reference=reference, location_id=place.pk)
    return stock_apply(changes=[change], actor=actor)[0]


@atomic_with_retry()
def stock_count(*, code: str, counted: int, reason: str = "", reference: str = "", actor: str = "",
                location: str | None = None) -> Stock:
    """A physical count sets on_hand; the ledger records the difference (even zero differences are not written)."""
    quantity_validate(counted, field_name="quantity", allow_zero=True)
    product = product_resolve(code=code)
    place = location_resolve(code=location)
    key = (product.pk, place.pk)
    current = stock_rows_lock(keys={key})[key]
    delta = counted - current.on_hand
    if delta == 0:
        current.written_movements = []
        return current
    change = StockChange(product_id=product.pk, on_hand=delta, kind=MovementKind.COUNT,
                         reason=reason or "physical count", reference=reference, location_id=place.pk)
    return stock_apply(changes=[change], actor=actor)[0]


def stock_record_movement(*, code: str, kind: str, quantity: int, reason: str = "", reference: str = "",
                          actor: str = "", location: str | None = None, client=None) -> Stock:
    """One entry point for staff and API movements: ``quantity`` means units added (receipt, return),
    a signed change (adjustment) or the units counted (count), at ``location`` (the default when None),
    which ``client`` (an API client or staff user, when given) must be allowed to use."""
    if client is not None:
        location_for_client(client=client, code=location)
    common = {"code": code, "reason": reason, "reference": reference, "actor": actor, "location": location}
    if kind == MovementKind.RECEIPT:
        return stock_receive(quantity=quantity, **common)
    if kind == MovementKind.RETURN:
        return stock_return(quantity=quantity, **common)
    if kind == MovementKind.ADJUSTMENT:
        return stock_adjust(delta=quantity, **common)
    if kind == MovementKind.COUNT:
        return stock_count(counted=quantity, **common)
    raise ValidationFailed(_("Unknown movement kind %(kind)r.") % {"kind": kind}, details={"kind": kind})


def code_check_free(*, code: str, lock: bool = False) -> str:
    """The new code normalised; ValidationFailed if malformed, Conflict if it is already a product or
    unified code. Forms call it to show the problem beside what was typed; the services call it with
    ``lock`` (a transaction lock on the code), so a product code and an alias with the same text cannot
    be created at once."""
    normalised = code_normalise(code)
    if not code_is_valid(normalised):
        raise ValidationFailed(
            _("A code is 1-64 characters: letters, digits and . _ -, starting with a letter or digit."),
            details={"code": normalised},
        )
    if lock:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"code:{normalised}"])
    if Product.objects.filter(code=normalised).exists():
        raise Conflict(_("%(code)s is already a product code.") % {"code": normalised}, details={"code": normalised})
    if UnifiedCode.objects.filter(code=normalised).exists():
        raise Conflict(_("%(code)s is already a unified code.") % {"code": normalised}, details={"code": normalised})
    return normalised


def _code_claim(code: str) -> str:
    return code_check_free(code=code, lock=True)


def _product_fields_validate(*, name: str, category: str, unit: str, low_stock_threshold: int) -> None:
    if not name or not name.strip():
        raise ValidationFailed(_("A product needs a name."), details={"name": "required"})
    if unit not in Unit.values:
        raise ValidationFailed(_("Unknown unit %(unit)r.") % {"unit": unit},
                               details={"unit": unit, "allowed": Unit.values})
    if isinstance(low_stock_threshold, bool) or not isinstance(low_stock_threshold, int) or low_stock_threshold < 0:
        raise ValidationFailed(_("The low-stock threshold is a whole number, zero or more."),
                               details={"low_stock_threshold": low_stock_threshold})


@transaction.atomic
def product_create(
    *,
    code: str,
    name: str,
    category: str = "",
    unit: str = Unit.UNIT,
    low_stock_threshold: int | None = None,
    active: bool = True,
    aliases: Sequence[str] = (),
) -> Product:
    """Create a product with its (empty) stock row and any unified codes."""
    threshold = settings.STOCK_DEFAULT_LOW_THRESHOLD if low_stock_threshold is None else low_stock_threshold
    _product_fields_validate(name=name, category=category, unit=unit, low_stock_threshold=threshold)
    normalised = _code_claim(code)
    product = Product.objects.create(
        code=normalised, name=name.strip(), category=category.strip(), unit=unit,
        low_stock_threshold=threshold, active=active,
    )
    Stock.objects.create(product=product, location_id=location_default_id())
    for alias in aliases:
        unified_code_create(code=alias, product=product)
    return product


@transaction.atomic
def product_update(
    *,
    product: Product,
    name: str | None = None,
    category: str | None = None,
    unit: str | None = None,
    low_stock_threshold: int | None = None,
    active: bool | None = None,
) -> Product:
    """Change a product's descriptive fields; the code itself never changes (aliases cover renames)."""
    values = {
        "name": product.name if name is None else name,
        "category": product.category if category is None else category,
        "unit": product.unit if unit is None else unit,
        "low_stock_threshold": product.low_stock_threshold if low_stock_threshold is None else low_stock_threshold,
    }
    _product_fields_validate(**values)
    product.name = values["name"].strip()
    product.category = values["category"].strip()
    product.unit = values["unit"]
    product.low_stock_threshold = values["low_stock_threshold"]
    if active is not None:
        product.active = active
    product.save()
    return product


@transaction.atomic
def unified_code_create(*, code: str, product: Product, note: str = "") -> UnifiedCode:
    """Make ``code`` count as ``product``'s stock. ``product`` must be canonical: aliases never chain."""
    if UnifiedCode.objects.filter(code=product.code).exists():
        raise ValidationFailed(_("Unified codes point at a product code, never at another unified code."))
    normalised = _code_claim(code)
    return UnifiedCode.objects.create(code=normalised, product=product, note=note.strip())


@transaction.atomic
def unified_code_delete(*, unified_code: UnifiedCode) -> None:
    unified_code.delete()


# ---------------------------------------------------------------- transfers between locations

TRANSFER_PLAN_SOURCE = "transfer"


def _transfer_plan(transfer: Transfer, *, status: str) -> None:
    """The planned inbound at the destination that stands for a transfer in transit (projections count
    it there), created while it is shipped and closed (done or cancelled) when it ends."""
    planned_movements_upsert(items=[PlannedMovementInput(
        source=TRANSFER_PLAN_SOURCE, source_ref=str(transfer.pk), code=transfer.product.code,
        date=max(transfer.expected_on or projection_today(), projection_today()), direction=Direction.IN,
        quantity=int(transfer.quantity), kind=PlannedKind.TRANSFER, location=transfer.destination.code,
        status={TransferStatus.SHIPPED: PlannedStatus.OPEN, TransferStatus.RECEIVED: PlannedStatus.DONE}.get(
            status, PlannedStatus.CANCELLED),
        note=f"{transfer.source.code} → {transfer.destination.code}",
    )])


def _transfer_ends(*, source: str, destination: str, client) -> tuple[Location, Location]:
    """The source and destination locations a transfer names (the default one for ""): two different
    ones, both usable by ``client``."""
    origin, target = location_resolve(code=source or None), location_resolve(code=destination or None)
    if origin.pk == target.pk:
        raise ValidationFailed(_("A transfer goes between two different locations."),
                               details={"source": origin.code, "destination": target.code})
    client_locations_check(client=client, locations=[origin, target])
    return origin, target


def _transfers_write(*, wanted: dict[Product, int], origin: Location, target: Location, in_transit: bool,
                     expected_on: date | None, reference: str, actor: str) -> list[Transfer]:
    """One transfer per product of ``wanted`` ({product: quantity}), checks passed: every Stock row it
    touches is locked in ONE pk-ordered call (so opposite transfers never wait on each other in a
    cycle), then every short product is named at once, else the transfers and ledger rows are written."""
    keys = {(product.pk, origin.pk) for product in wanted}
    if not in_transit:
        keys |= {(product.pk, target.pk) for product in wanted}
    locked = stock_rows_lock(keys=keys)
    short = []
    for product, quantity in wanted.items():
        free = locked[(product.pk, origin.pk)].on_hand - locked[(product.pk, origin.pk)].reserved
        if free < quantity:
            short.append({"code": product.code, "requested": quantity, "available": max(free, 0),
                          "location": origin.code})
    if short:
        raise InsufficientStock(lines=short)
    inactive = [product.code for product in wanted if not product.active]
    if inactive:
        raise Conflict(_("Some products are not sold any more."), details={"codes": inactive})
    note = f"{origin.code} → {target.code}"
    transfers, changes = [], []
    for product, quantity in wanted.items():
        transfer = Transfer.objects.create(
            product=product, source=origin, destination=target, quantity=quantity,
            status=TransferStatus.SHIPPED if in_transit else TransferStatus.RECEIVED, expected_on=expected_on,
            reference=reference.strip(), actor=actor[:150], received_at=None if in_transit else timezone.now())
        transfers.append(transfer)
        changes.append(StockChange(product_id=product.pk, location_id=origin.pk, on_hand=-quantity,
                                   kind=MovementKind.TRANSFER_OUT, reason=note, reference=reference,
                                   transfer_id=transfer.pk))
        if not in_transit:
            changes.append(StockChange(product_id=product.pk, location_id=target.pk, on_hand=quantity,
                                       kind=MovementKind.TRANSFER_IN, reason=note, reference=reference,
                                       transfer_id=transfer.pk))
    stock_apply(changes=changes, actor=actor)
    if in_transit:
        for transfer in transfers:
            _transfer_plan(transfer, status=TransferStatus.SHIPPED)
    return transfers


@atomic_with_retry()
def transfer_create(*, code: str, source: str, destination: str, quantity: int, in_transit: bool = False,
                    expected_on: date | None = None, reference: str = "", actor: str = "",
                    client=None) -> Transfer:
    """Move units of one product from ``source`` to ``destination`` (location codes).

    Both ledger rows are written in this transaction, each naming the transfer: ``transfer_out`` at the
    source and, unless ``in_transit``, ``transfer_in`` at the destination. In transit, the units leave
    the source now and reach the destination when ``transfer_receive`` is called; meanwhile they are a
    planned inbound there. Only available units move (reserved ones stay): InsufficientStock otherwise.
    """
    quantity_validate(quantity)
    _transfer_reference_validate(reference)
    product = product_resolve(code=code)
    if not product.active:
        raise Conflict(_("Some products are not sold any more."), details={"codes": [product.code]})
    origin, target = _transfer_ends(source=source, destination=destination, client=client)
    return _transfers_write(wanted={product: quantity}, origin=origin, target=target, in_transit=in_transit,
                            expected_on=expected_on, reference=reference, actor=actor)[0]


@atomic_with_retry()
def transfers_create(*, lines: Sequence[tuple[str, int]], source: str, destination: str, in_transit: bool = False,
                     expected_on: date | None = None, reference: str = "", actor: str = "",
                     client=None) -> list[Transfer]:
    """Several products, ``lines`` of (code, quantity), moved between the same two locations: one transfer
    each (as ``transfer_create``), all or none. Every unknown code, and every product short at the
    source, is reported at once; a product named twice (or by a unified code) moves the sum."""
    asked = [(code_normalise(code), quantity_validate(quantity)) for code, quantity in lines]
    if not asked:
        raise ValidationFailed(_("A transfer needs at least one product."), details={"lines": []})
    _transfer_reference_validate(reference)
    found, unknown = products_resolve_many(codes=[code for code, _quantity in asked])
    if unknown:
        raise UnknownCode(_("Some codes name no product."), details={"codes": unknown})
    wanted: dict[Product, int] = {}
    for code, quantity in asked:
        wanted[found[code]] = wanted.get(found[code], 0) + quantity
    origin, target = _transfer_ends(source=source, destination=destination, client=client)
    return _transfers_write(wanted=wanted, origin=origin, target=target, in_transit=in_transit,
                            expected_on=expected_on, reference=reference, actor=actor)


def _transfer_reference_validate(reference: object) -> None:
    if not isinstance(reference, str) or len(reference) > 128:
        raise ValidationFailed(_("reference is at most 128 characters."), details={"reference": "too long"})


def _transfer_locked(transfer_id: object) -> Transfer:
    try:
        pk = int(transfer_id)
    except (TypeError, ValueError):
        pk = None
    transfer = transfer_lock(transfer_id=pk) if pk is not None else None
    if transfer is None:
        raise NotFound(_("No transfer has this id."), details={"id": str(transfer_id)})
    return transfer


@atomic_with_retry()
def transfer_receive(*, transfer_id: int, actor: str = "", client=None) -> Transfer:
    """The units of a transfer in transit arrive at its destination (a ``transfer_in`` ledger row there).
    Receiving a received transfer again changes nothing; a cancelled one is a Conflict."""
    transfer = _transfer_locked(transfer_id)
    client_locations_check(client=client, locations=[transfer.source, transfer.destination])
    if transfer.status == TransferStatus.RECEIVED:
        return transfer
    if transfer.status == TransferStatus.CANCELLED:
        raise Conflict(_("This transfer was cancelled."), details={"id": transfer.pk, "status": transfer.status})
    stock_apply(changes=[StockChange(
        product_id=transfer.product_id, location_id=transfer.destination_id, on_hand=int(transfer.quantity),
        kind=MovementKind.TRANSFER_IN, reason=f"{transfer.source.code} → {transfer.destination.code}",
        reference=transfer.reference, transfer_id=transfer.pk)], actor=actor)
    transfer.status, transfer.received_at = TransferStatus.RECEIVED, timezone.now()
    transfer.save(update_fields=["status", "received_at", "updated_at"])
    _transfer_plan(transfer, status=TransferStatus.RECEIVED)
    return transfer


@atomic_with_retry()
def transfer_cancel(*, transfer_id: int, actor: str = "", client=None) -> Transfer:
    """A transfer in transit that will not arrive: its units go back on hand at the source (a
    ``transfer_in`` row there). Cancelling again changes nothing; a received one is a Conflict."""
    transfer = _transfer_locked(transfer_id)
    client_locations_check(client=client, locations=[transfer.source, transfer.destination])
    if transfer.status == TransferStatus.CANCELLED:
        return transfer
    if transfer.status == TransferStatus.RECEIVED:
        raise Conflict(_("This transfer was received; it can no longer be cancelled."),
                       details={"id": transfer.pk, "status": transfer.status})
    stock_apply(changes=[StockChange(
        product_id=transfer.product_id, location_id=transfer.source_id, on_hand=int(transfer.quantity),
        kind=MovementKind.TRANSFER_IN, reason=f"{transfer.source.code} → {transfer.destination.code} cancelled",
        reference=transfer.reference, transfer_id=transfer.pk)], actor=actor)
    transfer.status = TransferStatus.CANCELLED
    transfer.save(update_fields=["status", "updated_at"])
    _transfer_plan(transfer, status=TransferStatus.CANCELLED)
    return transfer


# ---------------------------------------------------------------- locations

def _location_fields_validate(*, name: str, kind: str, time_zone: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed(_("A location needs a name."), details={"name": "required"})
    if kind not in LocationKind.values:
        raise ValidationFailed(_("Unknown location kind %(kind)r.") % {"kind": kind},
                               details={"kind": kind, "allowed": LocationKind.values})
    try:
        ZoneInfo(time_zone)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValidationFailed(_("Unknown time zone %(tz)r.") % {"tz": time_zone}, details={"time_zone": time_zone}) \
            from None


@transaction.atomic
def location_create(*, code: str, name: str, kind: str = LocationKind.STORE, address: str = "",
                    time_zone: str | None = None, active: bool = True) -> Location:
    """A new location. Its code follows the product code rules and never changes; it holds no stock until
    units are received, counted or transferred there."""
    time_zone = time_zone or settings.TIME_ZONE
    _location_fields_validate(name=name, kind=kind, time_zone=time_zone)
    normalised = code_normalise(code)
    if not code_is_valid(normalised):
        raise ValidationFailed(
            _("A code is 1-64 characters: letters, digits and . _ -, starting with a letter or digit."),
            details={"code": normalised})
    if Location.objects.filter(code=normalised).exists():
        raise Conflict(_("%(code)s is already a location.") % {"code": normalised}, details={"code": normalised})
    return Location.objects.create(code=normalised, name=name.strip(), kind=kind, address=address.strip(),
                                   time_zone=time_zone, active=active)


@transaction.atomic
def ledger_partitions_ensure(*, months_ahead: int | None = None, today: date | None = None) -> list[str]:
    """Give the ledger a partition for this month and the ``months_ahead`` coming ones (setting
    LEDGER_PARTITION_MONTHS_AHEAD when None), UTC months; returns the partitions created. Idempotent,
    and safe to run twice at once (an advisory lock); rows the default partition caught for a month
    move into its new partition."""
    from inventory.partitions import month_add, month_start, partitions_add

    ahead = settings.LEDGER_PARTITION_MONTHS_AHEAD if months_ahead is None else months_ahead
    if isinstance(ahead, bool) or not isinstance(ahead, int) or not 0 <= ahead <= 120:
        raise ValidationFailed(_("months ahead must be a whole number from 0 to 120."),
                               details={"months_ahead": ahead})
    first = month_start(today or timezone.now().date())  # timezone.now() is in UTC
    with connection.cursor() as cursor:
        return partitions_add(cursor, first=first, last=month_add(first, ahead))


def ledger_partitions_cluster(*, limit: int | None = None, today: date | None = None) -> list[str]:
    """Rewrite the closed months' partitions (before this UTC month) not done yet in (product, location,
    id) order, newest first, at most ``limit`` of them (all when None); returns those rewritten. Each
    month in its own transaction, then vacuumed; reads and writes go on (inventory.partitions.partition_cluster).
    Raises Unavailable when the ledger stayed too busy for a month's swap: that month is left as it was."""
    from inventory.partitions import (PARTITIONS_LOCK_KEY, PartitionSwapBusy, month_start, partition_cluster,
                                      partition_month, partition_name, partitions_described)

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValidationFailed(_("the number of months must be a whole number, 0 or more."), details={"limit": limit})
    this_month = month_start(today or timezone.now().date())  # timezone.now() is in UTC
    with connection.cursor() as cursor:
        not_rewritten = [partition_month(partition.name) for partition in partitions_described(cursor)
                         if not partition.clustered]
    to_do = sorted((month for month in not_rewritten if month is not None and month < this_month), reverse=True)
    done = []
    for month in to_do[:limit]:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # The same lock as the upkeep that adds partitions: one change of the ledger's layout at a time.
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITIONS_LOCK_KEY])
                rewritten = partition_cluster(cursor, month=month)
        except PartitionSwapBusy as exc:
            raise Unavailable(_("The ledger stayed too busy to swap the month %(month)s in; nothing of it "
                                "changed. Run it again later.") % {"month": month.strftime("%Y-%m")},
                              retry_after=60, details={"done": done}) from exc
        if rewritten:
            with connection.cursor() as cursor:
                # Outside any transaction (VACUUM's rule): index-only reads need the new table's visibility map.
                cursor.execute(f'VACUUM (ANALYZE) "{partition_name(month)}"')
            done.append(partition_name(month))
    return done
