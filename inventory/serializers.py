"""Output shapes of inventory reads, shared by the API views that return stock rows."""
from rest_framework import serializers

from inventory.models import Stock, StockMovement


class StockOutputSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="product.code")
    name = serializers.CharField(source="product.name")
    category = serializers.CharField(source="product.category")
    unit = serializers.CharField(source="product.unit")
    threshold = serializers.IntegerField(source="product.low_stock_threshold")
    available = serializers.SerializerMethodField()

    class Meta:
        model = Stock
        fields = ["code", "name", "category", "unit", "on_hand", "reserved", "available", "threshold",
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

    class Meta:
        model = StockMovement
        fields = ["id", "code", "kind", "quantity", "on_hand_after", "reason", "reference", "reservation_id",
                  "actor", "created_at"]
