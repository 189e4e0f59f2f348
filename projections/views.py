"""Projections REST API: summaries (one, many, ruptures, daily rows, stats), recompute, planned movements and
reorder suggestions; the reads take ``?location=`` (the default location when omitted)."""
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import actor_label, request_location_scope
from core.errors import NotFound
from core.jsoninput import StrictInputSerializer
from core.pagination import StandardPagination, paginated_response
from inventory.selectors import client_location_codes, client_locations_check, location_default_id, location_for_client
from projections import exports, selectors, services
from projections.models import PlannedKind, PlannedMovement, ReorderState
from projections.serializers import (
    PlannedMovementKeySerializer,
    PlannedMovementLineSerializer,
    PlannedMovementOutputSerializer,
    ReorderSuggestionOutputSerializer,
    planned_movement_key_read,
    planned_movement_line_read,
    reorder_output_serializer,
    summary_output,
)

_LOCATION_PARAMETER = OpenApiParameter(
    "location", str, description="Location code; the default location when omitted (the answer then has no "
    "`location` field, as before locations). A client limited to some locations gets 403 location_forbidden "
    "for any other.")


@dataclass(frozen=True)
class Place:
    """The location a request reads: its id, and its code when the request named it (echoed as ``location``)."""

    id: int
    named: str | None = None

    def stamp(self, body: dict) -> dict:
        if self.named is not None:
            body["location"] = self.named
        return body


def _place(request, code: str | None = None) -> Place:
    """``code`` (default: ``?location=``) as a Place; UnknownLocation (400) or LocationForbidden (403).

    The API client's or the signed-in staff user's location limits apply. Without a location and without a
    limit, no query: the default location's id is cached.
    """
    if code is None:
        code = request.query_params.get("location")
    scope = request_location_scope(request)
    named = code is not None and bool(str(code).strip())
    if not named and client_location_codes(scope) is None:
        return Place(id=location_default_id())
    location = location_for_client(client=scope, code=code)
    return Place(id=location.pk, named=location.code if named else None)


def _summary_fields() -> dict[str, serializers.Field]:
    """A summary's fields for the OpenAPI schema (new instances each call: a field binds to one serializer)."""
    return {
        "code": serializers.CharField(), "name": serializers.CharField(), "start_balance": serializers.IntegerField(),
        "threshold": serializers.IntegerField(), "min_balance_7d": serializers.IntegerField(),
        "min_balance_7d_date": serializers.DateField(), "stockout_date": serializers.DateField(allow_null=True),
        "below_threshold_date": serializers.DateField(allow_null=True),
        "days_of_cover": serializers.IntegerField(allow_null=True),
        "demand_rate": serializers.FloatField(help_text="Expected units sold per day (weekday-neutral)."),
        "stockout_date_at_pace": serializers.DateField(
            allow_null=True, help_text="First day below zero with expected demand added to planned movements."),
        "days_of_cover_at_pace": serializers.IntegerField(allow_null=True),
        "at_risk_7d": serializers.BooleanField(),
        "late_movements": serializers.IntegerField(), "as_of": serializers.DateField(),
        "horizon_days": serializers.IntegerField(), "source_version": serializers.IntegerField(),
        "computed_at": serializers.DateTimeField(), "stale": serializers.BooleanField(),
    }


_summary_schema = inline_serializer("ProjectionSummary", _summary_fields())
_rupture_schema = inline_serializer("ProjectionRupture", {
    **_summary_fields(), "out_now": serializers.BooleanField(help_text="Nothing available now."),
})


class ProjectionDailyRowSerializer(serializers.Serializer):
    date = serializers.DateField()
    inbound = serializers.IntegerField()
    outbound = serializers.IntegerField()
    balance = serializers.IntegerField()
    late = serializers.BooleanField()
    expected_outbound = serializers.FloatField(help_text="Expected demand beyond the planned outbound that day.")
    balance_at_pace = serializers.FloatField(help_text="End-of-day balance with the expected outbound taken too.")


def _summary_for(code: str, place: Place) -> selectors.SummaryRow:
    row = selectors.projection_row(code=code, location_id=place.id)
    if not row.computed:
        services.projection_summaries_ensure(product_ids=[row.product_id], location_id=place.id)
        row = selectors.projection_row(code=code, location_id=place.id)
        if not row.computed:
            raise NotFound(_("%(code)s has no stock row to project.") % {"code": row.code}, details={"code": row.code})
    return row


class DaysSerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=settings.PROJECTION_MAX_DAYS, required=False)


class ProjectionDetailApi(APIView):
    """Summary plus daily rows (date, inbound, outbound, balance) over the stored horizon."""

    required_scope = "read"

    @extend_schema(parameters=[_LOCATION_PARAMETER], responses=_summary_schema)
    def get(self, request, code: str):
        place = _place(request)
        summary = _summary_for(code, place)
        today = services.projection_today()
        body = place.stamp(summary_output(summary, today=today, asked_code=code.strip().upper()))
        body["daily"] = selectors.projection_daily(summary=summary, days=summary.horizon_days)
        return Response(body)


class ProjectionDailyApi(APIView):
    """Daily rows for a chart: ``days`` up to 90 (beyond the stored horizon they are computed on the fly)."""

    required_scope = "read"

    @extend_schema(parameters=[OpenApiParameter("days", int, description="1-90, default 28."), _LOCATION_PARAMETER],
                   responses=inline_serializer("ProjectionDailyOutput", {
                       "code": serializers.CharField(), "name": serializers.CharField(),
                       "threshold": serializers.IntegerField(), "start_balance": serializers.IntegerField(),
                       "stockout_date": serializers.DateField(allow_null=True),
                       "stockout_date_at_pace": serializers.DateField(allow_null=True),
                       "computed_at": serializers.DateTimeField(), "stale": serializers.BooleanField(),
                       "days": ProjectionDailyRowSerializer(many=True)}))
    def get(self, request, code: str):
        params = DaysSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        days = params.validated_data.get("days", settings.PROJECTION_HORIZON_DAYS)
        place = _place(request)
        summary = _summary_for(code, place)
        today = services.projection_today()
        return Response(place.stamp({
            "code": summary.code,
            "name": summary.name,
            "threshold": summary.low_stock_threshold,
            "start_balance": summary.start_balance,
            "stockout_date": summary.stockout_date.isoformat() if summary.stockout_date else None,
            "stockout_date_at_pace": (summary.stockout_date_at_pace.isoformat()
                                      if summary.stockout_date_at_pace else None),
            "computed_at": summary.computed_at.isoformat() if summary.computed_at else None,
            "stale": summary.is_stale(today=today),
            "days": selectors.projection_daily(summary=summary, days=days),
        }))


class ProjectionRecalculateApi(APIView):
    """Recompute one product at one location now and return its fresh summary."""

    required_scope = "read"

    @extend_schema(parameters=[_LOCATION_PARAMETER], request=None, responses=_summary_schema)
    def post(self, request, code: str):
        place = _place(request)
        product_id = selectors.projection_row(code=code, location_id=place.id).product_id
        services.projection_recompute(product_ids=[product_id], location_id=place.id)
        summary = _summary_for(code, place)
        return Response(place.stamp(summary_output(summary, today=services.projection_today(),
                                                   asked_code=code.strip().upper())))


class ProjectionQueryApi(APIView):
    """Many products in one call (aliases resolved); unknown codes are listed, not fatal."""

    required_scope = "read"

    class ProjectionQueryInputSerializer(StrictInputSerializer):
        codes = serializers.ListField(
            child=serializers.CharField(max_length=64), min_length=1, max_length=settings.STOCK_LOOKUP_MAX_CODES)
        location = serializers.CharField(required=False, max_length=64,
                                         help_text="Location code (or ?location=); the default location when omitted.")

    @extend_schema(parameters=[_LOCATION_PARAMETER], request=ProjectionQueryInputSerializer,
                   responses=inline_serializer("ProjectionQueryOutput", {
        "items": _summary_schema.__class__(many=True), "unknown": serializers.ListField(child=serializers.CharField()),
        "computed_at": serializers.DateTimeField(), "stale": serializers.BooleanField()}))
    def post(self, request):
        data = self.ProjectionQueryInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        codes = data.validated_data["codes"]
        place = _place(request, data.validated_data.get("location"))
        found, unknown = selectors.projection_rows_for_codes(codes=codes, location_id=place.id)
        missing = [row.product_id for _, row in found if not row.computed]
        if missing:
            services.projection_summaries_ensure(product_ids=missing, location_id=place.id)
            found, unknown = selectors.projection_rows_for_codes(codes=codes, location_id=place.id)
        today = services.projection_today()
        items = [summary_output(row, today=today, asked_code=asked) for asked, row in found if row.computed]
        return Response(place.stamp({"items": items, "unknown": unknown, "computed_at": timezone.now().isoformat(),
                                     "stale": any(i["stale"] for i in items)}))


class ProjectionRupturesApi(APIView):
    """Products out of stock now (``out_now``), then those with a projected stockout within ``days`` days
    (default 7), soonest first.

    Paged by ``limit``/``offset`` without a total: counting thousands of rows would cost more than the
    page itself (the total at risk in 7 days is in /stats).
    """

    required_scope = "read"

    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=settings.PROJECTION_MAX_DAYS, required=False, default=7)
        limit = serializers.IntegerField(min_value=1, max_value=500, required=False, default=50)
        offset = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False, default=0)
        basis = serializers.ChoiceField(choices=list(selectors.RUPTURE_BASES), required=False, default="planned")

    @extend_schema(parameters=[OpenApiParameter("days", int), OpenApiParameter("limit", int),
                               OpenApiParameter("offset", int),
                               OpenApiParameter("basis", str, enum=list(selectors.RUPTURE_BASES), description=(
                                   "planned (default): planned movements only; pace: blended with expected demand.")),
                               _LOCATION_PARAMETER],
                   responses=inline_serializer("ProjectionRupturesOutput", {
                       "basis": serializers.CharField(),
                       "days": serializers.IntegerField(), "limit": serializers.IntegerField(),
                       "offset": serializers.IntegerField(), "next_offset": serializers.IntegerField(allow_null=True),
                       "results": _rupture_schema.__class__(many=True),
                       "computed_at": serializers.DateTimeField(allow_null=True), "stale": serializers.BooleanField()}))
    def get(self, request):
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        days, limit, offset, basis = (params.validated_data[k] for k in ("days", "limit", "offset", "basis"))
        place = _place(request)
        page = {"days": days, "limit": limit + 1, "offset": offset, "basis": basis, "location_id": place.id}
        rows = selectors.projection_ruptures_page(**page)
        missing = [row.product_id for row, _ in rows if not row.computed]
        if missing:
            # A product that ran out without planned movements may never have been projected.
            services.projection_summaries_ensure(product_ids=missing, location_id=place.id)
            rows = selectors.projection_ruptures_page(**page)
        today = services.projection_today()
        results = [{**summary_output(row, today=today), "out_now": out_now} for row, out_now in rows[:limit]]
        return Response(place.stamp({
            "basis": basis, "days": days, "limit": limit, "offset": offset,
            "next_offset": offset + limit if len(rows) > limit else None,
            "results": results,
            "computed_at": min((r["computed_at"] for r in results if r["computed_at"]), default=None),
            "stale": any(r["stale"] for r in results),
        }))


class ProjectionStatsApi(APIView):
    required_scope = "read"

    @extend_schema(parameters=[_LOCATION_PARAMETER], responses=inline_serializer("ProjectionStatsOutput", {
        "products": serializers.IntegerField(), "at_risk_7d": serializers.IntegerField(),
        "stale_rows": serializers.IntegerField(), "oldest_computed_at": serializers.DateTimeField(allow_null=True),
        "computed_at": serializers.DateTimeField(), "stale": serializers.BooleanField()}))
    def get(self, request):
        place = _place(request)
        stats = selectors.projection_stats(location_id=place.id)
        oldest = stats["oldest_computed_at"]
        return Response(place.stamp({**stats, "oldest_computed_at": oldest.isoformat() if oldest else None,
                                     "computed_at": timezone.now().isoformat(), "stale": stats["stale_rows"] > 0}))


class PlannedMovementBulkApi(APIView):
    """Upsert by (source, source_ref) and cancel by the same key, all in one transaction.

    Only the envelope is checked here; every line goes to the service, which reports every bad line of
    both lists (fields and unknown codes) in one 400.
    """

    required_scope = "manage"

    class PlannedMovementBulkInputSerializer(StrictInputSerializer):
        upsert = serializers.ListField(child=serializers.JSONField(), required=False, default=list)
        cancel = serializers.ListField(child=serializers.JSONField(), required=False, default=list)

        def validate(self, attrs):
            if not attrs["upsert"] and not attrs["cancel"]:
                raise serializers.ValidationError(_("Send at least one line in 'upsert' or 'cancel'."))
            if len(attrs["upsert"]) + len(attrs["cancel"]) > services.BULK_MAX_ITEMS:
                raise serializers.ValidationError(
                    _("At most %(max)d lines per call.") % {"max": services.BULK_MAX_ITEMS})
            return attrs

    @extend_schema(request=inline_serializer("PlannedMovementBulkInput", {
        "upsert": PlannedMovementLineSerializer(many=True, required=False),
        "cancel": PlannedMovementKeySerializer(many=True, required=False)}),
        responses=inline_serializer("PlannedMovementBulkOutput", {
            "upserted": PlannedMovementOutputSerializer(many=True), "cancelled": serializers.IntegerField()}))
    def post(self, request):
        data = self.PlannedMovementBulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = [planned_movement_line_read(line) for line in data.validated_data["upsert"]]
        keys = [planned_movement_key_read(line) for line in data.validated_data["cancel"]]
        rows, cancelled = services.planned_movements_apply(items=items, cancel=keys,
                                                           client=request_location_scope(request))
        context = {"today": services.projection_today()}
        return Response({
            "upserted": PlannedMovementOutputSerializer(rows, many=True, context=context).data,
            "cancelled": cancelled,
        })


class PlannedMovementListApi(APIView):
    pagination_class = StandardPagination  # the list answer is paged (declared for the schema)
    required_scope = "manage"

    class FilterSerializer(serializers.Serializer):
        code = serializers.CharField(required=False, max_length=64)
        source = serializers.CharField(required=False, max_length=64)
        status = serializers.CharField(required=False, max_length=16)
        kind = serializers.ChoiceField(choices=PlannedKind.choices, required=False)
        date_from = serializers.DateField(required=False)
        date_to = serializers.DateField(required=False)
        location = serializers.CharField(required=False, max_length=64)

    @extend_schema(parameters=[*(OpenApiParameter(n, str) for n in
                                 ("code", "source", "status", "kind", "date_from", "date_to")),
                               OpenApiParameter("location", str, description=(
                                   "Location code: only the movements there; the default location when "
                                   "omitted, as before locations; `all`: every location the client may use."))],
                   responses=PlannedMovementOutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = selectors.planned_movement_list(**filters.validated_data, client=request_location_scope(request))
        return paginated_response(request=request, queryset=queryset, serializer_class=PlannedMovementOutputSerializer,
                                  view=self, context={"today": services.projection_today()})


class PlannedMovementDetailApi(APIView):
    required_scope = "manage"

    @extend_schema(responses=PlannedMovementOutputSerializer)
    def get(self, request, pk: int):
        movement = PlannedMovement.objects.select_related("product", "location").filter(pk=pk).first()
        if movement is None:
            raise NotFound(_("No planned movement has this id."), details={"id": pk})
        client_locations_check(client=request_location_scope(request), locations=[movement.location])
        return Response(PlannedMovementOutputSerializer(movement, context={"today": services.projection_today()}).data)


class ReorderSuggestionListApi(APIView):
    """Reorder suggestions at one location in one state (default ``open``), most recently updated first; ``code``
    filters a product."""

    pagination_class = StandardPagination
    required_scope = "read"

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=ReorderState.choices, required=False, default=ReorderState.OPEN)
        code = serializers.CharField(required=False, max_length=64)

    @extend_schema(parameters=[OpenApiParameter("state", str, enum=ReorderState.values),
                               OpenApiParameter("code", str), _LOCATION_PARAMETER],
                   responses=ReorderSuggestionOutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        place = _place(request)
        queryset = selectors.reorder_suggestion_list(**filters.validated_data, location_id=place.id)
        return paginated_response(request=request, queryset=queryset, view=self,
                                  serializer_class=reorder_output_serializer(located=place.named is not None))


class ReorderSuggestionOrderApi(APIView):
    """Order an open suggestion: one firm purchase planned movement, arriving after the lead time; 409 if not open."""

    required_scope = "manage"

    @extend_schema(request=None, responses=ReorderSuggestionOutputSerializer)
    def post(self, request, pk: int):
        suggestion = services.reorder_suggestion_order(suggestion_id=pk, actor=actor_label(request),
                                                       client=request_location_scope(request))
        return Response(ReorderSuggestionOutputSerializer(suggestion).data)


class ReorderSuggestionDismissApi(APIView):
    """Dismiss an open suggestion (no new one for the product until the next store day); 409 if not open."""

    required_scope = "manage"

    @extend_schema(request=None, responses=ReorderSuggestionOutputSerializer)
    def post(self, request, pk: int):
        suggestion = services.reorder_suggestion_dismiss(suggestion_id=pk, actor=actor_label(request),
                                                         client=request_location_scope(request))
        return Response(ReorderSuggestionOutputSerializer(suggestion).data)


class ReorderSuggestionExportApi(APIView):
    """Suggestions in one state (default ``open``) as a file for buyers: ``type=csv`` (default) or ``xlsx``."""

    required_scope = "read"
    EXPORT_MAX_ROWS = 100_000

    class FilterSerializer(ReorderSuggestionListApi.FilterSerializer):
        type = serializers.ChoiceField(choices=["csv", "xlsx"], required=False, default="csv")

    @extend_schema(parameters=[OpenApiParameter("state", str, enum=ReorderState.values),
                               OpenApiParameter("code", str), OpenApiParameter("type", str, enum=["csv", "xlsx"]),
                               _LOCATION_PARAMETER],
                   responses={(200, "text/csv"): OpenApiTypes.BINARY, (200, exports.XLSX_TYPE): OpenApiTypes.BINARY})
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        kind = filters.validated_data.pop("type")
        place = _place(request)
        rows = selectors.reorder_suggestion_list(**filters.validated_data, location_id=place.id)[:self.EXPORT_MAX_ROWS]
        if kind == "xlsx":
            body, content_type = exports.suggestions_xlsx(rows), exports.XLSX_TYPE
        else:
            body, content_type = exports.suggestions_csv(rows), exports.CSV_TYPE
        response = HttpResponse(body, content_type=content_type)
        day = services.projection_today().isoformat()
        response["Content-Disposition"] = f'attachment; filename="reorder-suggestions-{day}.{kind}"'
        return response
