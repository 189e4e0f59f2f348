"""Reads for inventory: locations, code resolution (aliases included), stock lists and the ledger."""
import time
from collections.abc import Iterable
from datetime import date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import Case, Count, F, FilteredRelation, Q, QuerySet, Sum, When
from django.utils.translation import gettext as _

from core.errors import LocationForbidden, NotFound, UnknownCode, UnknownLocation
from core.models import ApiClient
from inventory.codes import code_normalise
from inventory.models import (
    SEARCH_ORDER,
    ImportJob,
    Location,
    Product,
    Stock,
    StockMovement,
    Transfer,
    UnifiedCode,
    product_search,
)
from inventory.partitions import month_add, month_start_utc, partition_month, partitions_list

# The default location's id, read once per process: it never changes while the process runs.
_default_location_id: int | None = None


def location_default_id() -> int:
    """The id of the location requests use when they name none (``DEFAULT_LOCATION_CODE``).

    The migrations create it; get_or_create puts it back in a database emptied since (a test flush,
    a restore of data without it), the one write a read here may make, so no caller ever has to.
    """
    global _default_location_id
    if _default_location_id is None:
        location, _created = Location.objects.get_or_create(
            code=settings.DEFAULT_LOCATION_CODE, defaults={"name": settings.DEFAULT_LOCATION_NAME})
        _default_location_id = location.pk
    return _default_location_id


def location_default_forget() -> None:
    """Forget the cached default location id (tests that empty the database call it)."""
    global _default_location_id
    _default_location_id = None


def location_id_or_default(location_id: int | None) -> int:
    """``location_id``, or the default location's for None: what a caller that names no location means."""
    return location_default_id() if location_id is None else location_id


def stock_here(location_id: int | None = None, path: str = "") -> FilteredRelation:
    """The ``{path}stocks`` relation narrowed to one location's row (None: the default location), for
    ``.alias(...)``."""
    return FilteredRelation(f"{path}stocks",
                            condition=Q(**{f"{path}stocks__location_id": location_id_or_default(location_id)}))


def location_default() -> Location:
    return Location.objects.get(pk=location_default_id())


def location_resolve(*, code: str | None) -> Location:
    """The active location a code names; the default location for None or ""; UnknownLocation otherwise."""
    if code is None or not str(code).strip():
        return location_default()
    normalised = code_normalise(code)
    location = Location.objects.filter(code=normalised, active=True).first()
    if location is None:
        raise UnknownLocation(_("No active location has the code %(code)s.") % {"code": normalised},
                              details={"location": normalised})
    return location


def locations_resolve_many(*, codes: Iterable[str]) -> list[Location]:
    """Active locations by code, in the order asked (duplicates dropped); UnknownLocation naming every
    code that is not one."""
    wanted = list(dict.fromkeys(code_normalise(c) for c in codes))
    found = {loc.code: loc for loc in Location.objects.filter(code__in=wanted, active=True)}
    unknown = [c for c in wanted if c not in found]
    if unknown:
        raise UnknownLocation(_("Some codes name no active location."), details={"locations": unknown})
    return [found[c] for c in wanted]


def user_location_codes(user) -> frozenset[str] | None:
    """The location codes a signed-in staff user may see and act at; None: every location (superusers,
    and staff that no location lists). Read once per user object (one query per request)."""
    if user is None or not getattr(user, "is_authenticated", False) or getattr(user, "is_superuser", False):
        return None
    cached = getattr(user, "_stock_location_codes", False)
    if cached is False:
        codes = frozenset(Location.objects.filter(staff_users=user).values_list("code", flat=True))
        cached = codes or None
        user._stock_location_codes = cached
    return cached


def client_location_codes(client) -> frozenset[str] | None:
    """The location codes an API client, or a staff user, may use; None: every location (no client,
    or no limit)."""
    if client is not None and hasattr(client, "location_codes"):
        codes = client.location_codes
        return frozenset(codes) if codes else None
    return user_location_codes(client)


def scope_location_codes(*, scope, client) -> frozenset[str] | None:
    """The location codes a read or action on ``client``'s own reservations and orders is held to: those
    of ``scope`` (core.auth.request_location_scope) when it is someone other than the client, a staff
    session; None (every location) otherwise, a client's own rows being within its locations by
    construction."""
    return client_location_codes(scope) if scope is not None and scope is not client else None


def client_locations_check(*, client, locations: Iterable[Location]) -> None:
    """LocationForbidden naming the locations the client may not use, if any."""
    allowed = client_location_codes(client)
    if allowed is None:
        return
    refused = sorted({loc.code for loc in locations if loc.code not in allowed})
    if refused:
        raise LocationForbidden(_("This client may not use the locations %(codes)s.") % {"codes": ", ".join(refused)},
                                details={"locations": refused, "allowed": sorted(allowed)})


def location_for_client(*, client, code: str | None) -> Location:
    """The location a request names (the default one when None), if the client may use it:
    UnknownLocation or LocationForbidden otherwise."""
    location = location_resolve(code=code)
    client_locations_check(client=client, locations=[location])
    return location


def locations_usable(*, client) -> QuerySet[Location]:
    """Every active location the client may use, by code, as a queryset (form and filter choices)."""
    allowed = client_location_codes(client)
    places = location_list()
    return places if allowed is None else places.filter(code__in=allowed)


def locations_default_first(locations: Iterable[Location]) -> list[Location]:
    """``locations`` in the order answers list them: the default one first, then by code."""
    default_id = location_default_id()
    return sorted(locations, key=lambda loc: (loc.pk != default_id, loc.code))


def locations_for_client(*, client) -> list[Location]:
    """Every active location the client may use, the default one first, then by code."""
    return locations_default_first(locations_usable(client=client))


LOCATION_ALL = "ALL"


def location_means_all(code: str | None) -> bool:
    """Whether a ``location`` parameter asks for every location the client may use (``all``, any case)."""
    return code is not None and code_normalise(code) == LOCATION_ALL


def locations_for_stream(*, client, codes: list[str] | None) -> list[Location]:
    """The locations a live stream or snapshot follows: the ``codes`` asked (UnknownLocation /
    LocationForbidden as for one), every location the client may use for ``["all"]``, or the default
    one when None."""
    if codes is not None and len(codes) == 1 and location_means_all(codes[0]):
        return locations_for_client(client=client)
    if codes is None:
        return [location_for_client(client=client, code=None)]
    location_default_id()  # the default location may be named before anything made sure it exists
    places = locations_resolve_many(codes=codes)
    client_locations_check(client=client, locations=places)
    return places


def location_codes_split(text: str | None) -> list[str]:
    """The codes a comma-separated ``?locations=`` value names, blanks dropped (as typed, not normalised)."""
    return [code.strip() for code in (text or "").split(",") if code.strip()]


def locations_for_query(*, client, text: str | None) -> list[Location] | None:
    """The locations a ``?locations=`` value names (``all``: every one the client may use), checked as
    ``locations_for_stream``; None when it names none, which each route reads its own way."""
    codes = location_codes_split(text)
    return locations_for_stream(client=client, codes=codes) if codes else None


def ws_principal_client(principal: dict):
    """The API client or staff user a WebSocket ticket was issued to ({"kind", "id"}), or None when gone:
    what its socket may follow is what that client may read."""
    model = ApiClient if principal.get("kind") == "client" else get_user_model()
    return model.objects.filter(pk=principal.get("id")).first()


def location_list(*, active_only: bool = True) -> QuerySet[Location]:
    qs = Location.objects.order_by("code")
    return qs.filter(active=True) if active_only else qs


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
    location_id: int | None = None,
    location_ids: list[int] | None = None,
) -> QuerySet[Stock]:
    """Stock rows at one location (the default one when None), by product code; or at several
    (``location_ids``), by product code then location code."""
    if location_ids is not None:
        qs = (Stock.objects.select_related("product", "location").filter(location_id__in=location_ids)
              .order_by("product__code", "location__code"))
    else:
        qs = (Stock.objects.select_related("product", "location")
              .filter(location_id=location_id_or_default(location_id)).order_by("product__code"))
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
        qs = qs.filter(match).annotate(**ranks).order_by(*SEARCH_ORDER, "product__code", "location__code")
    return qs


def stock_with_projection(qs: QuerySet[Stock]) -> QuerySet[Stock]:
    """``qs`` with each product's stockout day and lowest balance in 7 days from its projection summary at the
    row's location (``stockout_date``, ``min_balance_7d``), None while there is no computed summary: one LEFT JOIN."""
    computed = {"projection_here__computed_at__isnull": False}
    return qs.alias(projection_here=FilteredRelation(
        "product__projections", condition=Q(product__projections__location=F("location")))).annotate(
        stockout_date=Case(When(**computed, then=F("projection_here__stockout_date")), default=None),
        min_balance_7d=Case(When(**computed, then=F("projection_here__min_balance_7d")), default=None),
    )


def movement_recent(*, limit: int, location_ids: list[int] | None = None) -> list[StockMovement]:
    """The newest ``limit`` ledger rows of all products (at these locations, or anywhere when None),
    newest first, product and location loaded (created_at index)."""
    qs = StockMovement.objects.select_related("product", "location").order_by("-created_at", "-id")
    if location_ids is not None:
        qs = qs.filter(location_id__in=location_ids)
    return list(qs[:limit])


def stock_empty(*, product: Product, location: Location) -> Stock:
    """An unsaved empty Stock row: how a product reads at a location where it was never stocked."""
    return Stock(product=product, location=location, on_hand=0, reserved=0, version=0)


def stock_at(*, product: Product, location: Location) -> Stock:
    """The product's Stock row at the location; an empty one when none was ever needed there."""
    stock = Stock.objects.select_related("product", "location").filter(product=product, location=location).first()
    return stock or stock_empty(product=product, location=location)


def stock_get_by_code(*, code: str, location: Location | None = None) -> Stock:
    product = product_resolve(code=code)
    return stock_at(product=product, location=location or location_default())


def stocks_of_product(*, product: Product, locations: Iterable[Location]) -> list[Stock]:
    """The product's Stock rows at each of these locations, in their order (empty unsaved rows where none)."""
    places = list(locations)
    rows = {s.location_id: s for s in Stock.objects.select_related("location")
            .filter(product=product, location__in=places)}
    return [rows.get(place.pk) or stock_empty(product=product, location=place) for place in places]


def stocks_for_products(*, product_ids: Iterable[int], location_id: int | None = None) -> dict[int, Stock]:
    """{product id: its Stock row at the location (the default one when None)}."""
    return {s.product_id: s for s in Stock.objects.select_related("product", "location")
            .filter(product_id__in=list(product_ids), location_id=location_id_or_default(location_id))}


# The months the ledger's partitions cover, read at most once per LEDGER_SPAN_SECONDS per process: a new
# month's partition is added weeks ahead, and a stale span costs speed, never a row (see movement_page).
LEDGER_SPAN_SECONDS = 300
_ledger_span: tuple[float, tuple[datetime, datetime] | None] | None = None


def ledger_months() -> list[date]:
    """The months the ledger has a partition for, oldest first (one catalogue query)."""
    with connections[StockMovement.objects.db].cursor() as cursor:
        return sorted(filter(None, map(partition_month, partitions_list(cursor))))


def ledger_months_span() -> tuple[datetime, datetime] | None:
    """[start, end) of the newest unbroken run of the ledger's monthly partitions; None when it has none."""
    global _ledger_span
    if _ledger_span is None or _ledger_span[0] < time.monotonic():
        months = ledger_months()
        span = None
        if months:
            first = months[-1]
            while month_add(first, -1) in months:
                first = month_add(first, -1)
            span = (month_start_utc(first), month_start_utc(month_add(months[-1], 1)))
        _ledger_span = (time.monotonic() + LEDGER_SPAN_SECONDS, span)
    return _ledger_span[1]


def ledger_months_span_forget() -> None:
    global _ledger_span
    _ledger_span = None


def movement_page_sql(*, product_id: int, location_ids: list[int], start: int, stop: int) -> tuple[str, list]:
    """The statement (and its parameters) that reads rows ``start`` to ``stop`` of a product's ledger at these
    locations, newest first (time, then id).

    Ordered by time, the ledger's partition key, PostgreSQL reads the monthly partitions newest first and
    stops in the month that fills the page: a page of a product sold every day touches one or two
    months' index, where an order by id made it start a scan in every month (docs/ledger-partitioning.md).
    It does so only when the default partition is out of the plan, so the span of the months is written
    into the text (a prepared statement's generic plan knows no parameter's value); the rows outside it
    (written while their month had no partition yet, kept in the default partition) are read by a second
    branch and merged. The branches never share a row, so a stale span only makes the first one read the
    default partition too. Written out rather than built by the ORM: building this union cost twice as
    long as running it, on every page read.
    """
    columns = ", ".join(f'"{field.column}"' for field in StockMovement._meta.concrete_fields)
    table = StockMovement._meta.db_table
    if len(location_ids) == 1:
        # "= ANY" with one element would read the index as unordered: a sort of every row of the pair.
        where, params = "product_id = %s AND location_id = %s", [product_id, location_ids[0]]
    else:
        where, params = "product_id = %s AND location_id = ANY(%s)", [product_id, list(location_ids)]
    newest_first = "ORDER BY created_at DESC, id DESC"
    start, stop = int(start), int(stop)
    span = ledger_months_span()
    if span is None:
        return f"SELECT {columns} FROM {table} WHERE {where} {newest_first} LIMIT {stop - start} OFFSET {start}", params
    first, end = (f"'{bound.isoformat()}'::timestamptz" for bound in span)
    return (f"(SELECT {columns} FROM {table} WHERE {where} AND created_at >= {first} AND created_at < {end}"
            f" {newest_first} LIMIT {stop})"
            f" UNION ALL (SELECT {columns} FROM {table} WHERE {where} AND (created_at < {first} OR created_at >= {end})"
            f" {newest_first} LIMIT {stop})"
            f" {newest_first} LIMIT {stop - start} OFFSET {start}"), params * 2


def movement_page(*, product: Product, locations: list[Location], start: int, stop: int) -> list[StockMovement]:
    """Rows ``start`` to ``stop`` of the product's ledger at these locations, newest first (time, then id),
    each carrying its product and location (the serializer reads their codes) with no join or query more."""
    if stop <= start:
        return []
    places = {place.pk: place for place in locations}
    sql, params = movement_page_sql(product_id=product.pk, location_ids=list(places), start=start, stop=stop)
    page = list(StockMovement.objects.raw(sql, params))
    for row in page:
        row.product, row.location = product, places[row.location_id]
    return page


class LedgerNewestFirst:
    """A product's ledger at some locations, newest first, as the paginator slices it (``movement_page``)."""

    def __init__(self, *, product: Product, locations: list[Location]) -> None:
        self.product, self.locations = product, locations

    def __getitem__(self, key: slice) -> list[StockMovement]:
        return movement_page(product=self.product, locations=self.locations, start=key.start or 0, stop=key.stop)


def stock_counter_drift(*, counter: str,
                        totals: dict[tuple[int, int], int]) -> list[tuple[str, str, int, int]]:
    """(code, location code, counter value, expected) for every Stock row whose ``counter`` differs
    from ``totals[(product_id, location_id)]`` (0 when absent), by code and location.

    The audits compute their totals in one aggregate and compare here in one pass over the stock
    rows: a correlated subquery per stock row walks a hot product's rows once per row of the table
    under a bad plan.
    """
    rows = Stock.objects.order_by("product__code", "location__code").values_list(
        "product_id", "location_id", "product__code", "location__code", counter)
    return [(code, loc_code, value, totals.get((pid, lid), 0)) for pid, lid, code, loc_code, value in rows
            if totals.get((pid, lid), 0) != value]


def ledger_drift() -> list[dict]:
    """Stock rows whose ledger (at their location) does not sum to on_hand: [{code, location, on_hand, ledger_sum}]."""
    return ledger_audit()["sum"]


def ledger_audit() -> dict[str, list[dict]]:
    """The ledger against the stock rows, in one pass over the ledger: ``sum``, the rows whose ledger does not
    sum to on_hand ([{code, location, on_hand, ledger_sum}]), and ``count``, those whose movement_count is
    not their number of ledger rows ([{code, location, movement_count, ledger_rows}])."""
    sums, counts = {}, {}
    for pid, lid, total, rows in (StockMovement.objects.values("product_id", "location_id")
                                  .annotate(total=Sum("quantity"), rows=Count("id"))
                                  .values_list("product_id", "location_id", "total", "rows")):
        sums[(pid, lid)], counts[(pid, lid)] = total, rows
    return {
        "sum": [{"code": code, "location": loc_code, "on_hand": on_hand, "ledger_sum": total}
                for code, loc_code, on_hand, total in stock_counter_drift(counter="on_hand", totals=sums)],
        "count": [{"code": code, "location": loc_code, "movement_count": kept, "ledger_rows": rows}
                  for code, loc_code, kept, rows in stock_counter_drift(counter="movement_count", totals=counts)],
    }


def movement_count(*, product: Product, locations: list[Location]) -> int:
    """How many ledger rows the product has at these locations, from its stock rows' counters (one index
    read, where counting the rows would open every monthly partition)."""
    # In SQL: building the ORM's aggregate cost three times the read itself on every movements page.
    with connections[Stock.objects.db].cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(SUM(movement_count), 0)::bigint FROM {Stock._meta.db_table}"
                       " WHERE product_id = %s AND location_id = ANY(%s)", [product.pk, [p.pk for p in locations]])
        return cursor.fetchone()[0]


def categories_list() -> list[str]:
    return list(
        Product.objects.active().exclude(category="").order_by("category").values_list("category", flat=True).distinct()
    )



def transfer_list(*, client=None, location: str | None = None, status: str | None = None,
                  code: str | None = None) -> QuerySet[Transfer]:
    """Transfers from or to ``location`` (a code), or, without one or with ``all``, to or from any location the
    client may use (every transfer for a client without limits), newest first; optionally of one status and
    one product."""
    qs = Transfer.objects.select_related("product", "source", "destination").order_by("-created_at", "-id")
    if location and not location_means_all(location):
        places = [location_for_client(client=client, code=location)]
    else:
        places = locations_for_client(client=client) if client_location_codes(client) else None
    if places is not None:
        qs = qs.filter(Q(source__in=places) | Q(destination__in=places))
    if status:
        qs = qs.filter(status=status)
    if code:
        qs = qs.filter(product=product_resolve(code=code))
    return qs


def import_job_get(*, job_id: object, client=None) -> ImportJob:
    """An import job (its file left unread) at a location the client may use, a job naming none being at
    the default one; NotFound otherwise, as for an id that names no job."""
    text = str(job_id)
    job = ImportJob.objects.select_related("location").defer("content").filter(
        pk=int(text) if text.isdigit() and len(text) <= 18 else 0).first()
    try:
        if job is not None:
            client_locations_check(client=client, locations=[job.location or location_default()])
    except LocationForbidden:
        job = None
    if job is None:
        raise NotFound(_("No import job has this id."), details={"id": text})
    return job


def transfer_get(*, transfer_id: int, client=None) -> Transfer:
    """One transfer the client may see (both its locations allowed); NotFound otherwise."""
    transfer = Transfer.objects.select_related("product", "source", "destination").filter(pk=transfer_id).first()
    allowed = client_location_codes(client)
    if transfer is None or (allowed is not None and not {transfer.source.code, transfer.destination.code} <= allowed):
        raise NotFound(_("No transfer has this id."), details={"id": transfer_id})
    return transfer
