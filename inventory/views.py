"""Inventory REST API: stock list, detail, lookup, snapshot, movements and product management."""
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import actor_label, request_location_scope
from core.db import statements_prepared
from core.jsoninput import StrictInputSerializer
from core.pagination import StandardPagination, paginated_response
from inventory import selectors, services
from inventory.models import MovementKind, StockMovement, TransferStatus, Unit
from inventory.serializers import (
    LocationOutputSerializer,
    MovementOutputSerializer,
    StockAllLocationsOutputSerializer,
    StockDetailOutputSerializer,
    StockOutputSerializer,
    StockProjectionOutputSerializer,
    TransferOutputSerializer,
    stock_all_locations_output,
)

_LOCATION_PARAM = OpenApiParameter(
    "location", str, description="Location code; the default location when omitted. A client limited to some "
    "locations gets 403 location_forbidden for any other.")


def _location(request, code: str | None):
    """The location a request names (the default one when None), if its client or staff user may use it."""
    return selectors.location_for_client(client=request_location_scope(request), code=code)


def _every_allowed_location(request):
    """Every active location the request's client or staff user may use, the default one first."""
    return selectors.locations_for_client(client=request_location_scope(request))


class StockListApi(APIView):
    """Paginated stock list. Also served at /estoque, the name the storefront integration already uses."""
    pagination_class = StandardPagination  # the list answer is paged (declared for the schema)

    required_scope = "read"

    class FilterSerializer(serializers.Serializer):
        category = serializers.CharField(required=False, max_length=100)
        below_threshold = serializers.BooleanField(required=False, default=False)
        out_of_stock = serializers.BooleanField(required=False, default=False)
        search = serializers.CharField(required=False, max_length=100)
        location = serializers.CharField(required=False, max_length=64)

    @extend_schema(
        parameters=[
            _LOCATION_PARAM,
            OpenApiParameter("category", str, description="Exact category, case-insensitive."),
            OpenApiParameter("below_threshold", bool, description="Only products below their low-stock threshold."),
            OpenApiParameter("out_of_stock", bool, description="Only products with nothing available."),
            OpenApiParameter("search", str, description="Part of a code, unified code or name (accents and typos "
                             "aside). Best match first."),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=StockOutputSerializer(many=True),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = dict(filters.validated_data)
        location = _location(request, values.pop("location", None))
        queryset = selectors.stock_list(location_id=location.pk, **values)
        return paginated_response(request=request, queryset=queryset, serializer_class=StockOutputSerializer, view=self)


class StockDetailApi(APIView):
    required_scope = "read"

    @extend_schema(
        parameters=[OpenApiParameter(
            "location", str, description="Location code (the default location when omitted), or `all`: the product "
            "at every location the client may use, and the sum (answered with the second shape).")],
        responses=PolymorphicProxySerializer(
            component_name="StockDetailAnswer", serializers=[StockDetailOutputSerializer,
                                                             StockAllLocationsOutputSerializer],
            resource_type_field_name=None),
    )
    def get(self, request, code: str):
        asked = request.query_params.get("location")
        requested_code = code.strip().upper()
        if selectors.location_means_all(asked):
            product = selectors.product_resolve(code=code)
            places = _every_allowed_location(request)
            stocks = selectors.stocks_of_product(product=product, locations=places)
            return Response(stock_all_locations_output(requested_code=requested_code, product=product, stocks=stocks))
        stock = selectors.stock_get_by_code(code=code, location=_location(request, asked))
        return Response(StockDetailOutputSerializer(stock, context={"requested_code": requested_code}).data)


class StockLookupApi(APIView):
    """Many codes at once (aliases resolved) in a constant number of queries."""

    required_scope = "read"

    class InputSerializer(StrictInputSerializer):
        codes = serializers.ListField(
            child=serializers.CharField(max_length=64, allow_blank=False),
            min_length=1,
            max_length=settings.STOCK_LOOKUP_MAX_CODES,
        )
        location = serializers.CharField(required=False, max_length=64,
                                         help_text="Location code; the default location when omitted.")

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            "StockLookupOutput",
            {"items": StockDetailOutputSerializer(many=True), "unknown": serializers.ListField(child=serializers.CharField())},
        ),
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        location = _location(request, data.validated_data.get("location"))
        found, unknown = selectors.products_resolve_many(codes=data.validated_data["codes"])
        stocks = selectors.stocks_for_products(product_ids=[p.pk for p in found.values()], location_id=location.pk)
        items = [
            StockDetailOutputSerializer(stocks.get(product.pk) or selectors.stock_empty(product=product, location=location),
                                        context={"requested_code": asked}).data
            for asked, product in found.items()
        ]
        return Response({"items": items, "unknown": unknown})


class StockSnapshotApi(APIView):
    """Every stock row (or those asked for) with its version and the server time, for clients that resync."""

    required_scope = "read"

    class FilterSerializer(serializers.Serializer):
        codes = serializers.CharField(required=False, help_text="Comma-separated codes or unified codes.")
        category = serializers.CharField(required=False, max_length=100)
        search = serializers.CharField(required=False, max_length=100)
        fields = serializers.ChoiceField(required=False, choices=["projection"])
        location = serializers.CharField(required=False, max_length=64)
        locations = serializers.CharField(required=False, max_length=2000)

        def validate(self, attrs):
            if "location" in attrs and "locations" in attrs:
                raise serializers.ValidationError({"locations": _("Name location or locations, not both.")})
            if "locations" in attrs and not selectors.location_codes_split(attrs["locations"]):
                raise serializers.ValidationError({"locations": _('Name at least one location, or "all".')})
            return attrs

    @extend_schema(
        parameters=[_LOCATION_PARAM, OpenApiParameter(
                        "locations", str, description="Comma-separated location codes, or `all` (every location the "
                        "client may use): one row per product and location, each with its own version. The live "
                        "stream's ?locations= takes the same values."),
                    OpenApiParameter("codes", str), OpenApiParameter("category", str),
                    OpenApiParameter("search", str, description="Part of a code, unified code or name (accents "
                                     "and typos aside): the dashboard's search box. Best match first."),
                    OpenApiParameter("fields", str, enum=["projection"],
                                     description="projection: each item also has stockout_date and min_balance_7d "
                                     "from its projection summary (null while none is computed).")],
        responses=inline_serializer(
            "StockSnapshotOutput",
            {"server_time": serializers.DateTimeField(), "items": StockProjectionOutputSerializer(many=True),
             "unknown": serializers.ListField(child=serializers.CharField())},
        ),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        server_time = timezone.now()
        places = self._locations(request, filters.validated_data)
        queryset = selectors.stock_list(category=filters.validated_data.get("category"),
                                        search=filters.validated_data.get("search"), **places)
        unknown: list[str] = []
        if "codes" in filters.validated_data:
            codes = [c for c in filters.validated_data["codes"].split(",") if c.strip()]
            found, unknown = selectors.products_resolve_many(codes=codes[: settings.STOCK_LOOKUP_MAX_CODES])
            queryset = queryset.filter(product_id__in=[p.pk for p in found.values()])
        serializer_class = StockOutputSerializer
        if filters.validated_data.get("fields") == "projection":
            queryset, serializer_class = selectors.stock_with_projection(queryset), StockProjectionOutputSerializer
        items = serializer_class(queryset, many=True).data
        return Response({"server_time": server_time, "items": items, "unknown": unknown})

    @staticmethod
    def _locations(request, values: dict) -> dict:
        """``stock_list``'s location argument: one location (as before) or the set ``locations`` names."""
        if "locations" not in values:
            return {"location_id": _location(request, values.get("location")).pk}
        places = selectors.locations_for_query(client=request_location_scope(request), text=values["locations"])
        return {"location_ids": [place.pk for place in places]}


class StockMovementsApi(APIView):
    """GET pages a product's ledger (read); POST records a receipt, adjustment, count or return (manage)."""
    pagination_class = StandardPagination  # the list answer is paged (declared for the schema)

    required_scopes = {"GET": "read", "POST": "manage"}

    class InputSerializer(StrictInputSerializer):
        kind = serializers.ChoiceField(choices=[MovementKind.RECEIPT, MovementKind.ADJUSTMENT,
                                                MovementKind.COUNT, MovementKind.RETURN])
        quantity = serializers.IntegerField(
            help_text="receipt/return: units added (>0); adjustment: signed change (not 0); count: units counted (>=0).",
        )
        reason = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
        reference = serializers.CharField(required=False, allow_blank=True, max_length=128, default="")
        location = serializers.CharField(required=False, max_length=64,
                                         help_text="Location code; the default location when omitted.")

    class OutputSerializer(serializers.Serializer):
        movement = MovementOutputSerializer(allow_null=True)
        stock = StockOutputSerializer()

    @extend_schema(description="The product's ledger, newest first (by time, then id), a page at a time.",
                   parameters=[OpenApiParameter(
                       "location", str, description="Location code; the default location when omitted; `all`: every "
                       "location the client may use.")], responses=MovementOutputSerializer(many=True))
    def get(self, request, code: str):
        product = selectors.product_resolve(code=code)
        asked = request.query_params.get("location")
        if selectors.location_means_all(asked):
            places = list(_every_allowed_location(request))
        else:
            places = [_location(request, asked)]
        # The count comes from the stock rows' counters: counting would open every monthly partition. The
        # page is planned over all of them: prepared, once per connection.
        count = selectors.movement_count(product=product, locations=places)
        with statements_prepared(StockMovement.objects.db):
            return paginated_response(
                request=request, queryset=selectors.LedgerNewestFirst(product=product, locations=places),
                count=count, serializer_class=MovementOutputSerializer, view=self,
            )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        location = _location(request, values.pop("location", None))
        stock = services.stock_record_movement(code=code, actor=actor_label(request), location=location.code, **values)
        movement = stock.written_movements[-1] if stock.written_movements else None
        body = {"movement": MovementOutputSerializer(movement).data if movement else None,
                "stock": StockOutputSerializer(stock).data}
        return Response(body, status=status.HTTP_201_CREATED)


class ProductCreateApi(APIView):
    required_scope = "manage"

    class InputSerializer(StrictInputSerializer):
        code = serializers.CharField(max_length=64)
        name = serializers.CharField(max_length=200)
        category = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        unit = serializers.ChoiceField(choices=Unit.choices, required=False, default=Unit.UNIT)
        low_stock_threshold = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)
        active = serializers.BooleanField(required=False, default=True)
        aliases = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list,
                                        max_length=100)

    @extend_schema(request=InputSerializer, responses={201: StockDetailOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = services.product_create(**data.validated_data)
        stock = selectors.stock_get_by_code(code=product.code)
        return Response(StockDetailOutputSerializer(stock).data, status=status.HTTP_201_CREATED)


class ProductUpdateApi(APIView):
    required_scope = "manage"

    class InputSerializer(StrictInputSerializer):
        name = serializers.CharField(max_length=200, required=False)
        category = serializers.CharField(max_length=100, required=False, allow_blank=True)
        unit = serializers.ChoiceField(choices=Unit.choices, required=False)
        low_stock_threshold = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)
        active = serializers.BooleanField(required=False)

    @extend_schema(request=InputSerializer, responses=StockDetailOutputSerializer)
    def patch(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = selectors.product_resolve(code=code)
        services.product_update(product=product, **data.validated_data)
        stock = selectors.stock_get_by_code(code=product.code)
        return Response(StockDetailOutputSerializer(stock, context={"requested_code": code.strip().upper()}).data)


class UnifiedCodeCreateApi(APIView):
    required_scope = "manage"

    class InputSerializer(StrictInputSerializer):
        code = serializers.CharField(max_length=64)
        note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    @extend_schema(
        request=InputSerializer,
        responses={201: inline_serializer("UnifiedCodeOutput", {"code": serializers.CharField(),
                                                                "product_code": serializers.CharField()})},
    )
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = selectors.product_resolve(code=code)
        alias = services.unified_code_create(product=product, **data.validated_data)
        return Response({"code": alias.code, "product_code": product.code}, status=status.HTTP_201_CREATED)


class LocationListApi(APIView):
    """The active locations the client may use, the default one first."""

    required_scope = "read"

    @extend_schema(responses=LocationOutputSerializer(many=True))
    def get(self, request):
        places = _every_allowed_location(request)
        return Response(LocationOutputSerializer(places, many=True).data)


class TransferListCreateApi(APIView):
    """POST moves units between two locations (received at once, or in transit); GET lists transfers."""
    pagination_class = StandardPagination  # the list answer is paged (declared for the schema)

    required_scopes = {"GET": "read", "POST": "manage"}

    class InputSerializer(StrictInputSerializer):
        code = serializers.CharField(max_length=64)
        # "from" is a Python keyword: the field is declared under another name and renamed below.
        source = serializers.CharField(max_length=64, help_text="Location the units leave.")
        destination = serializers.CharField(max_length=64, help_text="Location the units reach.")
        quantity = serializers.IntegerField()
        in_transit = serializers.BooleanField(required=False, default=False, help_text=(
            "true: the units leave the source now and reach the destination when the transfer is received; "
            "meanwhile they are a planned inbound there."))
        expected_on = serializers.DateField(required=False, allow_null=True, default=None,
                                            help_text="In transit: the day the units are expected.")
        reference = serializers.CharField(required=False, allow_blank=True, max_length=128, default="")

    class FilterSerializer(serializers.Serializer):
        location = serializers.CharField(required=False, max_length=64)
        status = serializers.ChoiceField(required=False, choices=TransferStatus.choices)
        code = serializers.CharField(required=False, max_length=64)

    @extend_schema(request=InputSerializer, responses={201: TransferOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfer = services.transfer_create(actor=actor_label(request), client=request_location_scope(request),
                                            **data.validated_data)
        return Response(TransferOutputSerializer(transfer).data, status=status.HTTP_201_CREATED,
                        headers={"Location": f"/api/v1/transfers/{transfer.pk}"})

    @extend_schema(parameters=[OpenApiParameter("location", str, description=(
                                   "From or to this location. Without it, or with `all`, every location the "
                                   "client may use.")),
                               OpenApiParameter("status", str, enum=TransferStatus.values),
                               OpenApiParameter("code", str), OpenApiParameter("page", int),
                               OpenApiParameter("page_size", int)],
                   responses=TransferOutputSerializer(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = filters.validated_data
        queryset = selectors.transfer_list(client=request_location_scope(request), location=values.get("location"),
                                           status=values.get("status"), code=values.get("code"))
        return paginated_response(request=request, queryset=queryset, serializer_class=TransferOutputSerializer,
                                  view=self)


class TransferDetailApi(APIView):
    required_scope = "read"

    @extend_schema(responses=TransferOutputSerializer)
    def get(self, request, pk: int):
        transfer = selectors.transfer_get(transfer_id=pk, client=request_location_scope(request))
        return Response(TransferOutputSerializer(transfer).data)


class TransferReceiveApi(APIView):
    """The units of a transfer in transit arrive at its destination."""

    required_scope = "manage"

    @extend_schema(request=None, responses=TransferOutputSerializer)
    def post(self, request, pk: int):
        transfer = services.transfer_receive(transfer_id=pk, actor=actor_label(request),
                                             client=request_location_scope(request))
        return Response(TransferOutputSerializer(transfer).data)


class TransferCancelApi(APIView):
    """A transfer in transit that will not arrive: its units return to the source."""

    required_scope = "manage"

    @extend_schema(request=None, responses=TransferOutputSerializer)
    def post(self, request, pk: int):
        transfer = services.transfer_cancel(transfer_id=pk, actor=actor_label(request),
                                            client=request_location_scope(request))
        return Response(TransferOutputSerializer(transfer).data)
