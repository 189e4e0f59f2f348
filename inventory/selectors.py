"""Reads for inventory: code resolution (aliases included), stock lists and the ledger."""
from collections.abc import Iterable

from django.db.models import Case, F, QuerySet, Sum, When
from django.utils.translation import gettext as _

from core.errors import UnknownCode
from inventory.codes import code_normalise
from inventory.models import SEARCH_ORDER, Product, Stock, StockMovement, UnifiedCode, product_search


def product_resolve(*, code: str) -> Product:
    """The product a code names, directly or through a unified code; UnknownCode otherwise."""
    normalised = code_normalise(code)
    product = Product.objects.filter(code=normalised).first()
    if product is None:
        alias = UnifiedCode.objects.select_related("product").filter(code=normalised).first()
        product = alias.product if alias else None
    if product is None:
        raise UnknownCode(_("No product has the code %(code)s.") % {"code": normalised}, details={"code": normalised})
    return product


def products_resolve_many(*, codes: Iterable[str]) -> tuple[dict[str, Product], list[str]]:
    """Resolve many codes in two queries: ({asked code (normalised): product}, [unknown codes])."""
    wanted = list(dict.fromkeys(code_normalise(c) for c in codes))
    found: dict[str, Product] = {p.code: p for p in Product.objects.filter(code__in=wanted)}
    missing = [c for c in wanted if c not in found]
    if missing:
        for alias in UnifiedCode.objects.select_related("product").filter(code__in=missing):
            found[alias.code] = alias.product
    return found, [c for c in wanted if c not in found]


def stock_list(
    *,
    category: str | None = None,
    below_threshold: bool = False,
    out_of_stock: bool = False,
    search: str | None = None,
    active_only: bool = True,
) -> QuerySet[Stock]:
    qs = Stock.objects.select_related("product").order_by("product__code")
    if active_only:
        qs = qs.filter(product__active=True)
    if category:
        qs = qs.filter(product__category__iexact=category)
    if below_threshold:
        qs = qs.below_threshold()
    if out_of_stock:
        qs = qs.out_of_stock()
    if search and search.strip():
        # Best match first (see inventory.models.product_search), then by code as without a search.
        match, ranks = product_search(search, path="product__")
        qs = qs.filter(match).annotate(**ranks).order_by(*SEARCH_ORDER, "product__code")
    return qs


def stock_with_projection(qs: QuerySet[Stock]) -> QuerySet[Stock]:
    """``qs`` with each product's stockout day and lowest balance in 7 days from its projection summary
    (``stockout_date``, ``min_balance_7d``), None while the product has no computed summary: one LEFT JOIN."""
    computed = {"product__projection__computed_at__isnull": False}
    return qs.annotate(
        stockout_date=Case(When(**computed, then=F("product__projection__stockout_date")), default=None),
        min_balance_7d=Case(When(**computed, then=F("product__projection__min_balance_7d")), default=None),
    )


def movement_recent(*, limit: int) -> list[StockMovement]:
    """The newest ``limit`` ledger rows of all products, newest first, product loaded (created_at index)."""
    return list(StockMovement.objects.select_related("product").order_by("-created_at", "-id")[:limit])


def stock_get_by_code(*, code: str) -> Stock:
    product = product_resolve(code=code)
    return Stock.objects.select_related("product").get(product=product)


def stocks_for_products(*, product_ids: Iterable[int]) -> dict[int, Stock]:
    return {s.product_id: s for s in Stock.objects.select_related("product").filter(product_id__in=list(product_ids))}


def movement_list(*, product: Product) -> QuerySet[StockMovement]:
    return StockMovement.objects.filter(product=product).order_by("-id")


def stock_counter_drift(*, counter: str, totals: dict[int, int]) -> list[tuple[str, int, int]]:
    """(code, counter value, expected) for every product whose Stock ``counter`` differs from
    ``totals[product_id]`` (0 when absent), by code.

    The audits compute their totals in one aggregate and compare here in one pass over the stock
    rows: a correlated subquery per stock row walks a hot product's rows once per row of the table
    under a bad plan.
    """
    rows = Stock.objects.order_by("product__code").values_list("product_id", "product__code", counter)
    return [(code, value, totals.get(pid, 0)) for pid, code, value in rows if totals.get(pid, 0) != value]


def ledger_drift() -> list[dict]:
    """Products whose ledger does not sum to on_hand: [{code, on_hand, ledger_sum}]."""
    totals = dict(StockMovement.objects.values("product_id").annotate(total=Sum("quantity"))
                  .values_list("product_id", "total"))
    return [{"code": code, "on_hand": on_hand, "ledger_sum": total}
            for code, on_hand, total in stock_counter_drift(counter="on_hand", totals=totals)]


def categories_list() -> list[str]:
    return list(
        Product.objects.active().exclude(category="").order_by("category").values_list("category", flat=True).distinct()
    )

