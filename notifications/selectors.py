"""Reads for notifications: who gets an alert or the reorder digest (per location), substitutes, the bot's stock
look-ups, outbox rows due and the backlog, bot updates left unprocessed."""
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.contrib.postgres.search import TrigramSimilarity
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Case, Count, F, IntegerField, Min, Q, QuerySet, Sum, TextField, Value, When, Window
from django.db.models.functions import Coalesce, Concat, RowNumber
from django.utils import timezone

from core.errors import UnknownCode
from core.pipelines import Backlog
from inventory.models import Location, Product, Stock, search_fold, search_key
from inventory.selectors import (
    location_default,
    location_default_id,
    location_id_or_default,
    location_list,
    locations_default_first,
    product_resolve,
    stock_here,
    stock_list,
)
from notifications import texts
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
SUGGESTIONS_MAX = 5
# How far (in word similarity, 0-1) the best name match must lead the next one to be taken as meant.
CLEAR_LEAD = 0.2


def drivers_reachable() -> QuerySet[Driver]:
    """Who stock alerts can go to: reachable recipients with the driver role (buyers only get the digest)."""
    return Driver.objects.reachable().drivers()


def buyers_reachable() -> QuerySet[Driver]:
    """Who the daily reorder digest goes to: reachable recipients with the buyer role, by id."""
    return Driver.objects.reachable().buyers().prefetch_related("products", "locations").order_by("pk")


def driver_follows(driver: Driver, *, product_id: int, category: str) -> bool:
    """Whether a recipient's subscription covers this product (its ``products`` prefetched, or one query)."""
    if driver.subscription == Subscription.ALL:
        return True
    if driver.subscription == Subscription.CATEGORIES:
        return category.strip().lower() in {c.strip().lower() for c in driver.categories or []}
    return any(p.pk == product_id for p in driver.products.all())


def drivers_for_products(*, products: Iterable[Product], location_id: int | None = None,
                         now: datetime | None = None) -> dict[int, list[Driver]]:
    """{product id: drivers of the location (None: the default one) subscribed to it and not muting it}, in three
    queries for any number of products. Recipients without the driver role are never among them."""
    products = list(products)
    now = now or timezone.now()
    location_id = location_id_or_default(location_id)
    drivers = list(drivers_reachable().at_location(location_id, default=location_id == location_default_id())
                   .prefetch_related("products"))
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
            if driver_follows(driver, product_id=product.pk, category=product.category):
                chosen.append(driver)
        result[product.pk] = chosen
    return result


def driver_locations(driver: Driver) -> list[Location]:
    """The active locations a recipient belongs to, the default one first, then by code; a recipient listed at
    none (or only at inactive ones) belongs to the default location."""
    # One query (none when ``locations`` is prefetched, as for the digest's buyers).
    chosen = [place for place in driver.locations.all() if place.active]
    return locations_default_first(chosen) if chosen else [location_default()]


def locations_several() -> bool:
    """Whether more than one location is active: only then do alerts and answers name their location."""
    return location_list().count() > 1


def reorder_digest_lines() -> list[texts.ReorderLine]:
    """Every open reorder suggestion as a digest line, the most urgent first, with its location id (one query)."""
    from projections.selectors import reorder_suggestions_by_urgency

    lines = []
    for suggestion in reorder_suggestions_by_urgency():
        product, projection = suggestion.product, suggestion.projection_here
        terms = _related(product, "supply_terms")
        lines.append(texts.ReorderLine(
            product_id=product.pk, code=product.code, name=product.name, category=product.category,
            quantity=suggestion.quantity, pack_size=terms.pack_size if terms else None,
            stockout_date=projection.stockout_date_at_pace if projection else None,
            location_id=suggestion.location_id,
        ))
    return lines


def reorder_digest_lines_for(driver: Driver, lines: Iterable[texts.ReorderLine],
                             locations: Iterable[Location] | None = None) -> list[texts.ReorderLine]:
    """The lines a recipient follows, each with its location's name: at its locations (``locations``, else
    ``driver_locations``), within its subscription (everything, categories or chosen products)."""
    here = {place.pk: place.name for place in (driver_locations(driver) if locations is None else locations)}
    return [replace(line, location=here[line.location_id]) for line in lines if line.location_id in here
            and driver_follows(driver, product_id=line.product_id, category=line.category)]


def _related(instance: Any, relation: str) -> Any:
    """A reverse one-to-one loaded by select_related, or None when there is no such row (no query either way)."""
    try:
        return getattr(instance, relation)
    except ObjectDoesNotExist:
        return None


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


def _head_word(name: str) -> str:
    """The first word of a product name, letters and digits only ("Sal refinado 1kg" → "Sal")."""
    words = name.split()
    return re.sub(r"\W", "", words[0]) if words else ""


def substitutes_for(*, product: Product, location_id: int | None = None) -> list[tuple[str, str]]:
    """Up to three (code, name) to offer instead of ``product``, judged by their stock at the location (None: the
    default one).

    Staff's choices win: when staff chose any, only those with stock are offered, in their order.
    Otherwise: active products of the same category that are neither low nor out themselves and whose
    name has the product's first word (accents and case aside: "Sal refinado" → "Sal grosso", never
    "Arroz"), the closest name first, then the most available.
    """
    chosen = list(
        Substitute.objects.alias(here=stock_here(location_id, "substitute__"))
        .filter(product=product, substitute__active=True, here__available__gt=0)
        .order_by("position", "id")
        .values_list("substitute__code", "substitute__name")[:SUBSTITUTES_MAX]
    )
    if chosen or Substitute.objects.filter(product=product).exists():
        return chosen
    head = _head_word(product.name)
    if not product.category or not head:
        return []
    return list(
        Product.objects.active()
        .alias(here=stock_here(location_id))
        .filter(category=product.category, here__available__gte=F("low_stock_threshold"), here__available__gt=0)
        .exclude(pk=product.pk)
        .alias(head_pattern=Concat(Value(r"\m"), search_key(Value(head)), Value(r"\M"), output_field=TextField()))
        .filter(search_name__regex=F("head_pattern"))
        .annotate(closeness=TrigramSimilarity("search_name", search_key(Value(product.name))))
        .order_by("-closeness", "-here__available", "code")
        .values_list("code", "name")[:SUBSTITUTES_MAX]
    )


def driver_by_chat(*, chat_id: int) -> Driver | None:
    return Driver.objects.filter(chat_id=chat_id, active=True).first()


def driver_low_stocks(*, driver: Driver, locations: list[Location], limit: int = 40) -> list[Stock]:
    """Stock rows below threshold at these locations, among what the driver follows: location by location in the
    order given, each the emptiest first and cut at ``limit`` rows, in one query."""
    qs = stock_list(below_threshold=True, location_ids=[place.pk for place in locations])
    query = driver_product_filter(driver)
    if query is not None:
        qs = qs.filter(product__in=Product.objects.filter(query))
    emptiest = [F("available").asc(), F("product__code").asc()]
    position = Case(*[When(location_id=place.pk, then=Value(index)) for index, place in enumerate(locations)],
                    output_field=IntegerField())
    return list(qs.annotate(rank=Window(RowNumber(), partition_by=F("location_id"), order_by=emptiest))
                .filter(rank__lte=limit).order_by(position, *emptiest))


def product_find(*, term: str, locations: Iterable[Location] | None = None) -> tuple[Product | None, list[Product]]:
    """What the bot's look-ups answer for ``term``, over the whole active catalogue.

    (the product, []) when the term is a code, a unified code, a name (accents and case aside), the only
    match, or a match clearly ahead of the next; else (None, up to five matches best first, each with
    ``available``: the units available at these locations together, the default one when None).
    (None, []) means nothing is close.
    """
    term = term.strip()
    try:
        return product_resolve(code=term), []
    except UnknownCode:
        pass
    # The few matches' stock rows come in a second query: joining stock into the ranked search would
    # make PostgreSQL join (and read) the whole stock table for a term that matches thousands of names.
    matches = list(Product.objects.active().search(term)[:SUGGESTIONS_MAX + 1])
    if not matches:
        return None, []
    location_ids = [location_default_id()] if locations is None else [place.pk for place in locations]
    available = dict(Stock.objects.filter(product__in=matches, location_id__in=location_ids)
                     .values("product_id").annotate(units=Sum("available")).values_list("product_id", "units"))
    for product in matches:
        product.available = available.get(product.pk, 0)
    best = matches[0]
    exact_name = best.search_name == search_fold(term)
    if len(matches) == 1 or exact_name or best.search_rank - matches[1].search_rank >= CLEAR_LEAD:
        return best, []
    return None, matches[:SUGGESTIONS_MAX]


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


def telegram_updates_unanswered(*, received_before: datetime, now: datetime, limit: int = 200) -> list[int]:
    """Update ids stored before ``received_before`` and never processed, or processed with a reply that
    nobody is sending, oldest first: their task was lost."""
    waiting = Q(processed_at__isnull=True) | Q(
        reply__isnull=False, replied_at__isnull=True, chat_id__isnull=False,
    ) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    return list(
        TelegramUpdate.objects.filter(waiting, received_at__lt=received_before)
        .order_by("update_id").values_list("update_id", flat=True)[:limit]
    )


def telegram_chat_next(*, chat_id: int) -> TelegramUpdate | None:
    """The update of this chat to answer next: the oldest one not processed, or processed with its reply
    still to go out. Later updates wait behind it, so replies keep the order the commands were sent in."""
    return (TelegramUpdate.objects.filter(chat_id=chat_id, replied_at__isnull=True)
            .filter(Q(processed_at__isnull=True) | Q(reply__isnull=False))
            .order_by("update_id").first())


def telegram_update_chat_id(*, update_id: int) -> int | None:
    return TelegramUpdate.objects.filter(update_id=update_id).values_list("chat_id", flat=True).first()
