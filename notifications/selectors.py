"""Reads for notifications: who gets an alert, substitutes, the bot's stock look-ups, outbox rows due and the backlog,
bot updates left unprocessed."""
import difflib
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.errors import UnknownCode
from core.pipelines import Backlog
from inventory.models import Product, Stock
from inventory.selectors import product_resolve, stock_list
from notifications.models import (
    AlertOutbox,
    Driver,
    DriverMute,
    OutboxState,
    Subscription,
    Substitute,
    TelegramUpdate,
)

SUBSTITUTES_MAX = 3
FUZZY_CANDIDATES_MAX = 5000


def drivers_reachable() -> QuerySet[Driver]:
    return Driver.objects.filter(active=True, unreachable=False, chat_id__isnull=False)


def drivers_for_products(*, products: Iterable[Product], now: datetime | None = None) -> dict[int, list[Driver]]:
    """{product id: drivers subscribed to it and not muting it}, in two queries for any number of products."""
    products = list(products)
    now = now or timezone.now()
    drivers = list(drivers_reachable().prefetch_related("products"))
    if not drivers or not products:
        return {p.pk: [] for p in products}
    muted = set(
        DriverMute.objects.filter(product_id__in=[p.pk for p in products], until__gt=now)
        .values_list("driver_id", "product_id")
    )
    result: dict[int, list[Driver]] = {}
    for product in products:
        chosen = []
        for driver in drivers:
            if (driver.pk, product.pk) in muted:
                continue
            if driver.subscription == Subscription.ALL:
                chosen.append(driver)
            elif driver.subscription == Subscription.CATEGORIES:
                wanted = {c.strip().lower() for c in driver.categories or []}
                if product.category.strip().lower() in wanted:
                    chosen.append(driver)
            elif any(p.pk == product.pk for p in driver.products.all()):
                chosen.append(driver)
        result[product.pk] = chosen
    return result


def driver_product_filter(driver: Driver) -> Q | None:
    """The products a driver follows, as a filter on Product; None means everything."""
    if driver.subscription == Subscription.CATEGORIES:
        query = Q(pk__in=[])
        for category in driver.categories or []:
            query |= Q(category__iexact=category.strip())
        return query
    if driver.subscription == Subscription.PRODUCTS:
        return Q(pk__in=driver.products.values("pk"))
    return None


def substitutes_for(*, product: Product) -> list[tuple[str, str]]:
    """Up to three (code, name): the ones staff chose that have stock, else in-stock products of the category."""
    chosen = list(
        Substitute.objects.filter(product=product, substitute__active=True, substitute__stock__available__gt=0)
        .order_by("position", "id")
        .values_list("substitute__code", "substitute__name")[:SUBSTITUTES_MAX]
    )
    if chosen or Substitute.objects.filter(product=product).exists():
        return chosen
    if not product.category:
        return []
    return list(
        Product.objects.active()
        .filter(category=product.category, stock__available__gte=product.low_stock_threshold, stock__available__gt=0)
        .exclude(pk=product.pk)
        .order_by("-stock__available", "code")
        .values_list("code", "name")[:SUBSTITUTES_MAX]
    )


def driver_by_chat(*, chat_id: int) -> Driver | None:
    return Driver.objects.filter(chat_id=chat_id, active=True).first()


def driver_low_stocks(*, driver: Driver, limit: int = 40) -> list[Stock]:
    qs = stock_list(below_threshold=True)
    query = driver_product_filter(driver)
    if query is not None:
        qs = qs.filter(product__in=Product.objects.filter(query))
    return list(qs.order_by("available", "product__code")[:limit])


def product_find(*, term: str) -> tuple[Product | None, list[Product]]:
    """(the product, []) when the term is a code, an alias or one clear name match; else (None, suggestions)."""
    term = term.strip()
    try:
        return product_resolve(code=term), []
    except UnknownCode:
        pass
    matches = list(Product.objects.active().filter(name__icontains=term).order_by("name")[:6])
    if len(matches) == 1:
        return matches[0], []
    exact = [p for p in matches if p.name.lower() == term.lower()]
    if exact:
        return exact[0], []
    if matches:
        return None, matches[:5]
    names = dict(Product.objects.active().values_list("name", "pk")[:FUZZY_CANDIDATES_MAX])
    lowered = {name.lower(): name for name in names}
    close = difflib.get_close_matches(term.lower(), list(lowered), n=5, cutoff=0.6)
    found = [names[lowered[name]] for name in close]
    if not found:
        return None, []
    products = {p.pk: p for p in Product.objects.filter(pk__in=found)}
    ordered = [products[pk] for pk in found if pk in products]
    if len(ordered) == 1 or difflib.SequenceMatcher(None, term.lower(), ordered[0].name.lower()).ratio() >= 0.8:
        return ordered[0], []
    return None, ordered


def outbox_driver_ids_due(*, now: datetime, grace_seconds: float, limit: int = 500) -> list[int]:
    """Drivers with rows to deliver that nobody is working on: what the sweep queues."""
    cutoff = now - timezone.timedelta(seconds=grace_seconds)
    return list(
        AlertOutbox.objects.filter(state__in=[OutboxState.PENDING, OutboxState.FAILED], updated_at__lte=cutoff)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("driver_id")
        .values_list("driver_id", flat=True)
        .distinct()[:limit]
    )


def alert_outbox_backlog(*, now: datetime) -> Backlog:
    """Alert messages still to deliver (pending, or failed and to be tried again), and since when the oldest
    due one has been due: a row without a retry time is due from its last change."""
    figures = AlertOutbox.objects.filter(state__in=[OutboxState.PENDING, OutboxState.FAILED]).aggregate(
        waiting=Count("pk"),
        oldest_due_at=Min(Coalesce("next_attempt_at", "updated_at"),
                          filter=Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)),
    )
    return Backlog(**figures)


def telegram_updates_unprocessed(*, received_before: datetime, limit: int = 200) -> list[int]:
    """Update ids stored before ``received_before`` and never processed, oldest first: their task was lost."""
    return list(
        TelegramUpdate.objects.filter(processed_at__isnull=True, received_at__lt=received_before)
        .order_by("update_id").values_list("update_id", flat=True)[:limit]
    )
