"""Reads for projections: summaries by code, the ruptures list, daily rows, stats, planned movements and reorder
suggestions, each at one location (the default one unless a location id is given)."""
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, FilteredRelation, Min, Q, QuerySet
from django.utils.translation import gettext as _

from core.errors import UnknownCode, ValidationFailed
from inventory.codes import code_normalise
from inventory.models import Product, Stock, UnifiedCode
from inventory.selectors import (
    client_location_codes,
    location_default_id,
    location_for_client,
    location_id_or_default,
    location_means_all,
    product_resolve,
)
from projections.models import PlannedMovement, PlannedStatus, ProjectionSummary, ReorderState, ReorderSuggestion


def _today() -> date:
    from projections.services import projection_today

    return projection_today()


def summaries_with_stock(qs: QuerySet[ProjectionSummary] | None = None) -> QuerySet[ProjectionSummary]:
    """``qs`` (default: every summary) with ``stock_here``, the stock row of the product at the summary's own
    location, as a relation to filter or annotate by (one LEFT JOIN on the unique (product, location) index)."""
    qs = ProjectionSummary.objects.all() if qs is None else qs
    return qs.alias(stock_here=FilteredRelation("product__stocks",
                                                condition=Q(product__stocks__location=F("location"))))


def summaries() -> QuerySet[ProjectionSummary]:
    """Every summary (all locations), product loaded, with ``stock_version``: its stock row's version."""
    return summaries_with_stock(ProjectionSummary.objects.select_related("product")).annotate(
        stock_version=F("stock_here__version"))


def _stale(*, as_of: date | None, computed_at: datetime | None, source_version: int, stock_version: int | None,
           plan_version: int, threshold: int, low_stock_threshold: int, today: date) -> bool:
    """The one staleness rule, for model instances and for the hot path's plain rows alike."""
    if as_of is None or computed_at is None or as_of < today:
        return True
    if stock_version is None or source_version != stock_version + plan_version:
        return True
    # A threshold edit does not bump any version, but changes the first day below it.
    return threshold != low_stock_threshold


def summary_is_stale(summary: ProjectionSummary, *, today: date | None = None) -> bool:
    """Stale: never computed, computed for an earlier day, or its inputs changed since (versions, threshold)."""
    return _stale(as_of=summary.as_of, computed_at=summary.computed_at, source_version=summary.source_version,
                  stock_version=getattr(summary, "stock_version", None), plan_version=summary.plan_version,
                  threshold=summary.threshold, low_stock_threshold=summary.product.low_stock_threshold,
                  today=today or _today())


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One product and its summary at one location as the API reads them: a flat row from one SQL statement.

    The summary fields are None when the product has no computed summary yet, and the daily arrays are None
    in the lists (ruptures, a query of codes), which show none. The API's reads are
    hot paths: building three model instances per row through the ORM cost more than the query itself.
    """

    product_id: int
    code: str
    name: str
    low_stock_threshold: int
    stock_version: int | None
    as_of: date | None
    horizon_days: int | None
    start_balance: int | None
    threshold: int | None
    min_balance_7d: int | None
    min_balance_7d_date: date | None
    stockout_date: date | None
    below_threshold_date: date | None
    days_of_cover: int | None
    late_movements: int | None
    daily_inbound: list[int] | None
    daily_outbound: list[int] | None
    daily_balance: list[int] | None
    plan_version: int | None
    source_version: int | None
    computed_at: datetime | None
    demand_rate: float | None
    daily_expected_outbound: list[float] | None
    daily_balance_at_pace: list[float] | None
    stockout_date_at_pace: date | None
    days_of_cover_at_pace: int | None
    location_id: int

    @property
    def computed(self) -> bool:
        return self.computed_at is not None

    def is_stale(self, *, today: date) -> bool:
        return _stale(as_of=self.as_of, computed_at=self.computed_at, source_version=self.source_version,
                      stock_version=self.stock_version, plan_version=self.plan_version, threshold=self.threshold,
                      low_stock_threshold=self.low_stock_threshold, today=today)


_P, _S, _PS, _U = (Product._meta.db_table, Stock._meta.db_table, ProjectionSummary._meta.db_table,
                   UnifiedCode._meta.db_table)
# Column order follows SummaryRow.
_ROW_SELECT_TEMPLATE = """
    SELECT p.id, p.code, p.name, p.low_stock_threshold, st.version,
           ps.as_of, ps.horizon_days, ps.start_balance, ps.threshold, ps.min_balance_7d, ps.min_balance_7d_date,
           ps.stockout_date, ps.below_threshold_date, ps.days_of_cover, ps.late_movements,
           {inbound}, {outbound}, {balance}, ps.plan_version, ps.source_version, ps.computed_at,
           ps.demand_rate, {expected}, {at_pace}, ps.stockout_date_at_pace,
           ps.days_of_cover_at_pace, %(location_id)s::bigint
"""
_DAILY_COLUMNS = {"inbound": "daily_inbound", "outbound": "daily_outbound", "balance": "daily_balance",
                  "expected": "daily_expected_outbound", "at_pace": "daily_balance_at_pace"}
_ROW_SELECT = _ROW_SELECT_TEMPLATE.format(**{key: f"ps.{column}" for key, column in _DAILY_COLUMNS.items()})
# The lists (ruptures, a query of codes) show no daily rows: their arrays stay in the table. Turning five
# arrays a row (two of floats) into text and back took more than half of a ruptures page.
_LIST_ROW_SELECT = _ROW_SELECT_TEMPLATE.format(**{key: "NULL" for key in _DAILY_COLUMNS})
# Only a computed summary joins: an uncomputed one reads as "none yet" and the view computes it.
_ROW_JOINS = f"""
    LEFT JOIN {_S} st ON st.product_id = p.id AND st.location_id = %(location_id)s
    LEFT JOIN {_PS} ps ON ps.product_id = p.id AND ps.location_id = %(location_id)s AND ps.computed_at IS NOT NULL
"""
# A product code first, else a unified code: the same order as inventory.selectors.product_resolve.
_ROW_BY_CODE = f"""{_ROW_SELECT} FROM {_P} p {_ROW_JOINS}
    WHERE p.id = COALESCE((SELECT id FROM {_P} WHERE code = %(code)s),
                          (SELECT product_id FROM {_U} WHERE code = %(code)s))
"""
_ROWS_BY_CODES = f"""{_LIST_ROW_SELECT}, asked.code FROM unnest(%(codes)s::text[]) WITH ORDINALITY AS asked(code, ord)
    JOIN {_P} p ON p.id = COALESCE((SELECT id FROM {_P} WHERE code = asked.code),
                                   (SELECT product_id FROM {_U} WHERE code = asked.code))
    {_ROW_JOINS}
    ORDER BY asked.ord
"""
# Out now (nothing available) first, by name, then projected stockouts, soonest first: the order of
# projection_out_now() followed by projection_ruptures(). Each branch sorts and cuts on its own (the
# second through the stockout_date filter), so a page never sorts the whole catalogue; the stock rows
# have no index on their counters (HOT updates, see inventory.models.Stock), so the first branch
# reads them all, which costs a few milliseconds at 100,000 products.
_RUPTURES_PAGE_TEMPLATE = f"""SELECT * FROM (
    ({_LIST_ROW_SELECT}, TRUE AS out_now, 0 AS part, p.name AS part_name, NULL::date AS part_date
      FROM {_S} st
      JOIN {_P} p ON p.id = st.product_id
      LEFT JOIN {_PS} ps ON ps.product_id = p.id AND ps.location_id = st.location_id AND ps.computed_at IS NOT NULL
     WHERE st.available <= 0 AND p.active AND st.location_id = %(location_id)s
     ORDER BY p.name, p.code LIMIT %(end)s)
    UNION ALL
    ({_LIST_ROW_SELECT}, FALSE, 1, NULL, ps.{{stockout}}
      FROM {_PS} ps
      JOIN {_P} p ON p.id = ps.product_id
      JOIN {_S} st ON st.product_id = ps.product_id AND st.location_id = %(location_id)s
     WHERE ps.location_id = %(location_id)s AND ps.{{stockout}} IS NOT NULL AND ps.{{stockout}} < %(limit_date)s
       AND p.active AND st.available > 0
     ORDER BY ps.{{stockout}}, ps.product_id LIMIT %(end)s)
) page
ORDER BY part, part_name, CASE WHEN part = 0 THEN code END, part_date, id
LIMIT %(limit)s OFFSET %(offset)s
"""
# The stockout day each ruptures basis sorts and cuts by: planned movements only, or blended with the
# expected demand (the pace). Each has its own partial index.
RUPTURE_BASES = {"planned": "stockout_date", "pace": "stockout_date_at_pace"}
_RUPTURES_PAGES = {basis: _RUPTURES_PAGE_TEMPLATE.format(stockout=column) for basis, column in RUPTURE_BASES.items()}


def projection_row(*, code: str, location_id: int | None = None) -> SummaryRow:
    """The product a code names (aliases resolve) with its summary at the location, in one query; UnknownCode
    otherwise."""
    normalised = code_normalise(code)
    with connection.cursor() as cursor:
        cursor.execute(_ROW_BY_CODE, {"code": normalised, "location_id": location_id_or_default(location_id)})
        values = cursor.fetchone()
    if values is None:
        raise UnknownCode(_("No product has the code %(code)s.") % {"code": normalised}, details={"code": normalised})
    return SummaryRow(*values)


def projection_rows_for_codes(*, codes: Iterable[str],
                              location_id: int | None = None) -> tuple[list[tuple[str, SummaryRow]], list[str]]:
    """([(asked code, row)], [unknown codes]) in asked order, duplicates (after normalising) once, in one query."""
    wanted = list(dict.fromkeys(code_normalise(c) for c in codes))
    with connection.cursor() as cursor:
        cursor.execute(_ROWS_BY_CODES, {"codes": wanted, "location_id": location_id_or_default(location_id)})
        found = [(values[-1], SummaryRow(*values[:-1])) for values in cursor.fetchall()]
    known = {asked for asked, _ in found}
    return found, [c for c in wanted if c not in known]


def projection_ruptures_page(*, days: int, limit: int, offset: int = 0, basis: str = "planned",
                             location_id: int | None = None) -> list[tuple[SummaryRow, bool]]:
    """One page of the ruptures list as (row, out now) pairs, in one query: ``projection_out_now()``
    then ``projection_ruptures(days=..., basis=...)``, same filters and order. A product out now may have
    no computed summary yet (its summary fields are None)."""
    with connection.cursor() as cursor:
        cursor.execute(_RUPTURES_PAGES[basis], {"limit_date": _today() + timedelta(days=days), "limit": limit,
                                        "offset": offset, "end": offset + limit,
                                        "location_id": location_id_or_default(location_id)})
        return [(SummaryRow(*values[:-4]), values[-4]) for values in cursor.fetchall()]


def _location_ids(location_ids: list[int] | None) -> list[int]:
    """The locations a ruptures read covers: these, or the default one for None."""
    return [location_default_id()] if location_ids is None else list(location_ids)


def projection_out_now(*, location_ids: list[int] | None = None) -> QuerySet[Stock]:
    """Active products with nothing available now at these locations (None: the default one), by name, then
    location code, product and location loaded: the ruptures that already happened."""
    return (Stock.objects.select_related("product", "location")
            .filter(product__active=True, location_id__in=_location_ids(location_ids)).out_of_stock()
            .order_by("product__name", "product__code", "location__code"))


def projection_ruptures(*, days: int = 7, basis: str = "planned",
                        location_ids: list[int] | None = None) -> QuerySet[ProjectionSummary]:
    """Summaries at these locations (None: the default one) with a stockout within ``days`` days from today,
    soonest first, product and location loaded (and stock_here: the stock row at the summary's location).
    Products already out (see projection_out_now) are not here: they come before these. ``basis`` picks
    the stockout day: ``planned`` (planned movements only) or ``pace`` (blended with expected demand)."""
    limit = _today() + timedelta(days=days)
    column = RUPTURE_BASES[basis]
    return (
        summaries().select_related("location")
        .filter(**{f"{column}__isnull": False, f"{column}__lt": limit}, product__active=True,
                location_id__in=_location_ids(location_ids), stock_here__available__gt=0)
        .order_by(column, "product_id", "location__code")
    )


def projection_daily(*, summary: SummaryRow, days: int) -> list[dict[str, Any]]:
    """The first ``days`` daily rows; beyond the stored horizon they are computed on the fly, not stored."""
    if days > summary.horizon_days or summary.as_of is None:
        from projections.services import projection_compute_rows

        rows = projection_compute_rows(product_ids=[summary.product_id], horizon=days, location_id=summary.location_id)
        if not rows:
            return []
        row = rows[0]
        start, inbound, outbound, balance = _today(), row["daily_inbound"], row["daily_outbound"], row["daily_balance"]
        late, expected, paced = row["late"], row["daily_expected"], row["daily_pace"]
    else:
        start, inbound, outbound, balance = (summary.as_of, summary.daily_inbound, summary.daily_outbound,
                                             summary.daily_balance)
        late, expected, paced = summary.late_movements, summary.daily_expected_outbound, summary.daily_balance_at_pace
    # A summary computed before demand estimates existed has no blend yet: planned only until recomputed.
    expected = expected or [0.0] * len(balance)
    paced = paced or [float(b) for b in balance]
    out = []
    for n in range(min(days, len(balance))):
        out.append({
            "date": (start + timedelta(days=n)).isoformat(),
            "inbound": inbound[n],
            "outbound": outbound[n],
            "balance": balance[n],
            "late": bool(late) and n == 0,
            "expected_outbound": expected[n],
            "balance_at_pace": paced[n],
        })
    return out


def projection_stats(*, location_id: int | None = None) -> dict[str, Any]:
    """Counts of the summaries at the location: products, at risk in 7 days, stale rows, the oldest compute."""
    location_id = location_id_or_default(location_id)
    today = _today()
    risk_limit = today + timedelta(days=settings.PROJECTION_RISK_DAYS)
    stale = (
        Q(as_of__isnull=True) | Q(as_of__lt=today)
        | ~Q(source_version=F("stock_here__version") + F("plan_version"))
        | ~Q(threshold=F("product__low_stock_threshold"))
    )
    totals = summaries_with_stock(ProjectionSummary.objects.filter(location_id=location_id)).aggregate(
        products=Count("pk"),
        at_risk=Count("pk", filter=Q(stockout_date__isnull=False, stockout_date__lt=risk_limit)),
        stale=Count("pk", filter=stale),
        oldest=Min("computed_at"),
    )
    without_row = Stock.objects.filter(location_id=location_id).exclude(
        product__projections__location_id=location_id).count()
    return {
        "products": totals["products"] + without_row,
        "at_risk_7d": totals["at_risk"],
        "stale_rows": totals["stale"] + without_row,
        "oldest_computed_at": totals["oldest"],
    }


def planned_movement_list(
    *,
    code: str | None = None,
    source: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    location: str | None = None,
    client=None,
) -> QuerySet[PlannedMovement]:
    """Planned movements by date at the ``location`` named, or at the default one when None, as before
    locations (UnknownLocation, or LocationForbidden when the API client or staff user may not use it); with
    ``all``, at every location ``client`` may use."""
    qs = PlannedMovement.objects.select_related("product", "location").order_by("date", "id")
    if not location_means_all(location):
        qs = qs.filter(location=location_for_client(client=client, code=(location or "").strip() or None))
    elif (allowed := client_location_codes(client)) is not None:
        # By code, not locations_for_client: that lists active locations only, and a movement planned at a
        # location since deactivated stays listed to whoever may use it.
        qs = qs.filter(location__code__in=sorted(allowed))
    if code:
        qs = qs.filter(product=product_resolve(code=code))
    if source:
        qs = qs.filter(source=source)
    if status:
        if status not in PlannedStatus.values:
            raise ValidationFailed(_("status must be one of %(allowed)s.") % {"allowed": ", ".join(PlannedStatus.values)},
                                   details={"status": status})
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if date_from:
        qs = qs.filter(date__gte=date_from)
    if date_to:
        qs = qs.filter(date__lte=date_to)
    return qs


def reorder_suggestion_list(*, state: str = ReorderState.OPEN, code: str | None = None,
                            location_id: int | None = None) -> QuerySet[ReorderSuggestion]:
    """Suggestions at the location in one state (open by default), most recently updated first; ``code`` may
    be an alias."""
    qs = (ReorderSuggestion.objects.select_related("product", "location")
          .filter(state=state, location_id=location_id_or_default(location_id)).order_by("-updated_at", "-id"))
    if code:
        qs = qs.filter(product=product_resolve(code=code))
    return qs


def reorder_suggestions_by_urgency() -> list[ReorderSuggestion]:
    """Open suggestions of every location, the most urgent first: the earliest stockout day at the current pace
    at the suggestion's location (none last), then the largest quantity, then the code, then the location.

    One query loads product, location, supply terms and ``projection_here``: the summary at the suggestion's
    location (None when there is none), the one projection a digest line reads.
    """
    return list(
        ReorderSuggestion.objects.filter(state=ReorderState.OPEN)
        .annotate(projection_here=FilteredRelation(
            "product__projections", condition=Q(product__projections__location=F("location"))))
        .select_related("product", "location", "product__supply_terms", "projection_here")
        .order_by(F("projection_here__stockout_date_at_pace").asc(nulls_last=True), "-quantity",
                  "product__code", "location__code", "pk"))
