"""Inventory REST API: stock list, detail, lookup, snapshot, movements and product management."""
from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import actor_label
from core.pagination import StandardPagination, paginated_response
from inventory import selectors, services
from inventory.models import MovementKind, Unit
from inventory.serializers import (
    MovementOutputSerializer,
    StockDetailOutputSerializer,
    StockOutputSerializer,
    StockProjectionOutputSerializer,
)


class StockListApi(APIView):
    """Paginated stock list. Also served at /estoque, the name the storefront integration already uses."""
    pagination_class = StandardPagination  # the list answer is paged (declared for the schema)

    required_scope = "read"

    class FilterSerializer(serializers.Serializer):
        category = serializers.CharField(required=False, max_length=100)
        below_threshold = serializers.BooleanField(required=False, default=False)
        out_of_stock = serializers.BooleanField(required=False, default=False)
        search = serializers.CharField(required=False, max_length=100)

    @extend_schema(
        parameters=[
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
        queryset = selectors.stock_list(**filters.validated_data)
        return paginated_response(request=request, queryset=queryset, serializer_class=StockOutputSerializer, view=self)


class StockDetailApi(APIView):
    required_scope = "read"

    @extend_schema(responses=StockDetailOutputSerializer)
    def get(self, request, code: str):
        stock = selectors.stock_get_by_code(code=code)
        context = {"requested_code": code.strip().upper()}
        return Response(StockDetailOutputSerializer(stock, context=context).data)


class StockLookupApi(APIView):
    """Many codes at once (aliases resolved) in a constant number of queries."""

    required_scope = "read"

    class InputSerializer(serializers.Serializer):
        codes = serializers.ListField(
            child=serializers.CharField(max_length=64, allow_blank=False),
            min_length=1,
            max_length=settings.STOCK_LOOKUP_MAX_CODES,
        )

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
        found, unknown = selectors.products_resolve_many(codes=data.validated_data["codes"])
        stocks = selectors.stocks_for_products(product_ids=[p.pk for p in found.values()])
        items = [
            StockDetailOutputSerializer(stocks[product.pk], context={"requested_code": asked}).data
            for asked, product in found.items()
            if product.pk in stocks
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

    @extend_schema(
        parameters=[OpenApiParameter("codes", str), OpenApiParameter("category", str),
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
        queryset = selectors.stock_list(category=filters.validated_data.get("category"),
                                        search=filters.validated_data.get("search"))
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


class StockMovementsApi(APIView):
    """GET pages a product's ledger (read); POST records a receipt, adjustment, count or return (manage)."""
    pagination_class = StandardPagination  # the list answer is paged (declared for the schema)

    required_scopes = {"GET": "read", "POST": "manage"}

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=[MovementKind.RECEIPT, MovementKind.ADJUSTMENT,
                                                MovementKind.COUNT, MovementKind.RETURN])
        quantity = serializers.IntegerField(
            help_text="receipt/return: units added (>0); adjustment: signed change (not 0); count: units counted (>=0).",
        )
        reason = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
        reference = serializers.CharField(required=False, allow_blank=True, max_length=128, default="")

    class OutputSerializer(serializers.Serializer):
        movement = MovementOutputSerializer(allow_null=True)
        stock = StockOutputSerializer()

    @extend_schema(responses=MovementOutputSerializer(many=True))
    def get(self, request, code: str):
        product = selectors.product_resolve(code=code)
        return paginated_response(
            request=request, queryset=selectors.movement_list(product=product),
            serializer_class=MovementOutputSerializer, view=self,
        )

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, code: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        stock = services.stock_record_movement(code=code, actor=actor_label(request), **values)
        movement = stock.written_movements[-1] if stock.written_movements else None
        body = {"movement": MovementOutputSerializer(movement).data if movement else None,
                "stock": StockOutputSerializer(stock).data}
        return Response(body, status=status.HTTP_201_CREATED)


class ProductCreateApi(APIView):
    required_scope = "manage"

    class InputSerializer(serializers.Serializer):
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

    class InputSerializer(serializers.Serializer):
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

    class InputSerializer(serializers.Serializer):
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
