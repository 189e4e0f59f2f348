"""Output shapes of inventory reads, shared by the API views that return stock rows."""
from django.conf import settings
from rest_framework import serializers

from inventory.models import Stock, StockMovement


class StockOutputSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="product.code")
    name = serializers.CharField(source="product.name")
    category = serializers.CharField(source="product.category")
    unit = serializers.CharField(source="product.unit")
    threshold = serializers.IntegerField(source="product.low_stock_threshold")
    location = serializers.CharField(source="location.code")
    available = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField(allow_null=True, read_only=True,
                                           help_text="null where the product was never stocked at this location.")

    class Meta:
        model = Stock
        fields = ["code", "name", "category", "unit", "location", "on_hand", "reserved", "available", "threshold",
                  "version", "updated_at"]

    def get_available(self, stock: Stock) -> int:
        return stock.on_hand - stock.reserved


class StockProjectionOutputSerializer(StockOutputSerializer):
    """A stock row with its projection's stockout day and lowest balance in 7 days (null: none computed yet)."""

    # Not read_only: the schema would then call them required, and the snapshot has them only when asked.
    stockout_date = serializers.DateField(allow_null=True, required=False,
                                          help_text="Only with fields=projection: the first day below zero.")
    min_balance_7d = serializers.IntegerField(allow_null=True, required=False,
                                              help_text="Only with fields=projection: the lowest balance in 7 days.")

    class Meta(StockOutputSerializer.Meta):
        fields = [*StockOutputSerializer.Meta.fields, "stockout_date", "min_balance_7d"]


class StockDetailOutputSerializer(StockOutputSerializer):
    """A stock row as asked for by a code that may be an alias: says which code was asked and which is canonical."""

    requested_code = serializers.SerializerMethodField()
    canonical_code = serializers.CharField(source="product.code")

    class Meta(StockOutputSerializer.Meta):
        fields = ["requested_code", "canonical_code", *StockOutputSerializer.Meta.fields]

    def get_requested_code(self, stock: Stock) -> str:
        return self.context.get("requested_code", stock.product.code)


class MovementOutputSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="product.code")
    location = serializers.CharField(source="location.code")
    transfer_id = serializers.IntegerField(allow_null=True, read_only=True,
                                           help_text="The transfer this row belongs to, if any.")

    class Meta:
        model = StockMovement
        fields = ["id", "code", "location", "kind", "quantity", "on_hand_after", "reason", "reference",
                  "reservation_id", "transfer_id", "actor", "created_at"]


class LocationStockRowSerializer(serializers.Serializer):
    location = serializers.CharField(source="location.code")
    location_name = serializers.CharField(source="location.name")
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.SerializerMethodField()
    version = serializers.IntegerField()

    def get_available(self, stock: Stock) -> int:
        return stock.on_hand - stock.reserved


class StockAllLocationsOutputSerializer(serializers.Serializer):
    """``GET /api/v1/stock/{code}?location=all``: the product at every location the client may see, and the sum."""

    requested_code = serializers.CharField()
    canonical_code = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    unit = serializers.CharField()
    threshold = serializers.IntegerField()
    locations = LocationStockRowSerializer(many=True)
    total = serializers.DictField(child=serializers.IntegerField(),
                                  help_text="on_hand, reserved and available summed over those locations.")


def stock_all_locations_output(*, requested_code: str, product, stocks: list[Stock]) -> dict:
    rows = LocationStockRowSerializer(stocks, many=True).data
    return {
        "requested_code": requested_code, "canonical_code": product.code, "name": product.name,
        "category": product.category, "unit": product.unit, "threshold": product.low_stock_threshold,
        "locations": rows,
        "total": {key: sum(row[key] for row in rows) for key in ("on_hand", "reserved", "available")},
    }


class LocationOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    address = serializers.CharField()
    time_zone = serializers.CharField()
    active = serializers.BooleanField()
    is_default = serializers.SerializerMethodField()

    def get_is_default(self, location) -> bool:
        return location.code == settings.DEFAULT_LOCATION_CODE


class TransferOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(source="product.code")
    source = serializers.CharField(source="source.code", help_text="Location the units leave.")
    destination = serializers.CharField(source="destination.code", help_text="Location the units reach.")
    quantity = serializers.IntegerField()
    status = serializers.CharField(help_text="shipped (in transit), received or cancelled.")
    expected_on = serializers.DateField(allow_null=True)
    reference = serializers.CharField()
    actor = serializers.CharField()
    created_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField(allow_null=True)
