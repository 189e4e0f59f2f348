"""Writes for inventory: products, unified codes and every change of stock counters with its ledger rows."""
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import atomic_with_retry
from core.errors import Conflict, ValidationFailed
from core.metrics import STOCK_CHANGES
from inventory.codes import code_is_valid, code_normalise
from inventory.locks import stocks_lock
from inventory.models import MovementKind, Product, Stock, StockMovement, UnifiedCode, Unit
from inventory.selectors import product_resolve
from inventory.stock_changes import stock_rows_changed


@dataclass(frozen=True)
class StockChange:
    """One change to one product's counters. ``on_hand`` changes need a movement ``kind`` for the ledger."""

    product_id: int
    on_hand: int = 0
    reserved: int = 0
    kind: str | None = None
    reason: str = ""
    reference: str = ""
    reservation_id: UUID | None = None
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


def stock_apply(*, changes: Sequence[StockChange], actor: str = "") -> list[Stock]:
    """Apply changes to counters under row locks (pk order); all or nothing. Must run inside a transaction.

    Merges changes per product, refuses any that would take on_hand or reserved below zero,
    writes counters with F() expressions, bumps versions, appends ledger rows and registers
    the after-commit side effects. Returns the changed rows as they now are, each with
    ``written_movements``: the ledger rows this call wrote for it.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("stock_apply must run inside transaction.atomic")
    if not changes:
        return []
    locked = {s.product_id: s for s in stocks_lock(product_ids=[c.product_id for c in changes])}
    missing = sorted({c.product_id for c in changes} - set(locked))
    if missing:
        raise Conflict(_("Some products have no stock row."), details={"product_ids": missing})

    on_hand_delta: dict[int, int] = {}
    reserved_delta: dict[int, int] = {}
    for change in changes:
        on_hand_delta[change.product_id] = on_hand_delta.get(change.product_id, 0) + change.on_hand
        reserved_delta[change.product_id] = reserved_delta.get(change.product_id, 0) + change.reserved
    short = []
    for product_id, stock in locked.items():
        new_on_hand = stock.on_hand + on_hand_delta[product_id]
        new_reserved = stock.reserved + reserved_delta[product_id]
        if new_on_hand < 0 or new_reserved < 0:
            short.append({"code": stock.product.code, "on_hand": stock.on_hand, "change": on_hand_delta[product_id]})
    if short:
        raise Conflict(_("The change would take stock below zero."), details={"lines": short})

    # update() skips auto_now: the change's time is set here, as the reservation statements do.
    changed_at = timezone.now()
    for product_id, stock in sorted(locked.items(), key=lambda item: item[1].pk):
        Stock.objects.filter(pk=stock.pk).update(
            on_hand=F("on_hand") + on_hand_delta[product_id],
            reserved=F("reserved") + reserved_delta[product_id],
            version=F("version") + 1,
            updated_at=changed_at,
        )
        stock.on_hand += on_hand_delta[product_id]
        stock.reserved += reserved_delta[product_id]
        stock.version += 1
        stock.updated_at = changed_at

    running = {pid: s.on_hand - on_hand_delta[pid] for pid, s in locked.items()}
    movements = []
    for change in changes:
        if change.on_hand == 0:
            continue
        if change.kind is None:
            raise ValueError("a change of on_hand needs a movement kind")
        running[change.product_id] += change.on_hand
        movements.append(
            StockMovement(
                product_id=change.product_id,
                kind=change.kind,
                quantity=change.on_hand,
                on_hand_after=running[change.product_id],
                reason=change.reason[:255],
                reference=change.reference[:128],
                reservation_id=change.reservation_id,
                actor=actor[:150],
            )
        )
        STOCK_CHANGES.labels(change.kind).inc()
    StockMovement.objects.bulk_create(movements)
    stocks = sorted(locked.values(), key=lambda s: s.pk)
    for stock in stocks:
        # Callers that answer with the ledger rows they caused (the movements API) read them here.
        stock.written_movements = [m for m in movements if m.product_id == stock.product_id]
    stock_rows_changed(stocks=stocks)
    return stocks


def _stock_add_units(*, kind: str, code: str, quantity: int, reason: str, reference: str, actor: str) -> Stock:
    quantity_validate(quantity)
    product = product_resolve(code=code)
    change = StockChange(product_id=product.pk, on_hand=quantity, kind=kind, reason=reason or kind,
                         reference=reference)
    return stock_apply(changes=[change], actor=actor)[0]


@atomic_with_retry()
def stock_receive(*, code: str, quantity: int, reason: str = "", reference: str = "", actor: str = "") -> Stock:
    """Units arrive (a supplier delivery)."""
    return _stock_add_units(kind=MovementKind.RECEIPT, code=code, quantity=quantity, reason=reason,
                            reference=reference, actor=actor)


@atomic_with_retry()
def stock_return(*, code: str, quantity: int, reason: str = "", reference: str = "", actor: str = "") -> Stock:
    """Units come back from a customer and are sellable again."""
    return _stock_add_units(kind=MovementKind.RETURN, code=code, quantity=quantity, reason=reason,
                            reference=reference, actor=actor)


@atomic_with_retry()
def stock_adjust(*, code: str, delta: int, reason: str, reference: str = "", actor: str = "") -> Stock:
    """Add or remove units (damage, loss, found stock). The reason is required and kept in the ledger."""
    quantity_validate(delta, field_name="quantity", allow_negative=True)
    if not reason or not reason.strip():
        raise ValidationFailed(_("An adjustment needs a reason."), details={"reason": "required"})
    product = product_resolve(code=code)
    change = StockChange(product_id=product.pk, on_hand=delta, kind=MovementKind.ADJUSTMENT,
                         reason=reason.strip(), reference=reference)
    return stock_apply(changes=[change], actor=actor)[0]


@atomic_with_retry()
def stock_count(*, code: str, counted: int, reason: str = "", reference: str = "", actor: str = "") -> Stock:
    """A physical count sets on_hand; the ledger records the difference (even zero differences are not written)."""
    quantity_validate(counted, field_name="quantity", allow_zero=True)
    product = product_resolve(code=code)
    current = stocks_lock(product_ids=[product.pk])[0]
    delta = counted - current.on_hand
    if delta == 0:
        current.written_movements = []
        return current
    change = StockChange(product_id=product.pk, on_hand=delta, kind=MovementKind.COUNT,
                         reason=reason or "physical count", reference=reference)
    return stock_apply(changes=[change], actor=actor)[0]


def stock_record_movement(*, code: str, kind: str, quantity: int, reason: str = "", reference: str = "",
                          actor: str = "") -> Stock:
    """One entry point for staff and API movements: ``quantity`` means units added (receipt, return),
    a signed change (adjustment) or the units counted (count)."""
    common = {"code": code, "reason": reason, "reference": reference, "actor": actor}
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
    Stock.objects.create(product=product)
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
