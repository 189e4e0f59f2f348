"""Reads for inventory: code resolution (aliases included), stock lists and the ledger."""
from collections.abc import Iterable

from django.db.models import F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from core.errors import UnknownCode
from inventory.codes import code_normalise
from inventory.models import Product, Stock, StockMovement, UnifiedCode


def product_resolve(*, code: str) -> Product:
    """The product a code names, directly or through a unified code; UnknownCode otherwise."""
    normalised = code_normalise(code)
    product = Product.objects.filter(code=normalised).first()
    if product is None:
        alias = UnifiedCode.objects.select_related("product").filter(code=normalised).first()
        product = alias.product if alias else None
    if product is None:
        raise UnknownCode(f"No product has the code {normalised!r}.", details={"code": normalised})
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
    if search:
        ids = Product.objects.search(search).values("id")
        qs = qs.filter(product_id__in=ids)
    return qs


def stock_get_by_code(*, code: str) -> Stock:
    product = product_resolve(code=code)
    return Stock.objects.select_related("product").get(product=product)


def stocks_for_products(*, product_ids: Iterable[int]) -> dict[int, Stock]:
    return {s.product_id: s for s in Stock.objects.select_related("product").filter(product_id__in=list(product_ids))}


def movement_list(*, product: Product) -> QuerySet[StockMovement]:
    return StockMovement.objects.filter(product=product).order_by("-id")


def ledger_drift() -> list[dict]:
    """Products whose ledger does not sum to on_hand: [{code, on_hand, ledger_sum}]."""
    ledger_sum = (
        StockMovement.objects.filter(product_id=OuterRef("product_id"))
        .values("product_id")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    rows = (
        Stock.objects.annotate(ledger_sum=Coalesce(Subquery(ledger_sum), 0))
        .exclude(ledger_sum=F("on_hand"))
        .order_by("product__code")
        .values("product__code", "on_hand", "ledger_sum")
    )
    return [{"code": r["product__code"], "on_hand": r["on_hand"], "ledger_sum": r["ledger_sum"]} for r in rows]


def categories_list() -> list[str]:
    return list(
        Product.objects.active().exclude(category="").order_by("category").values_list("category", flat=True).distinct()
    )

