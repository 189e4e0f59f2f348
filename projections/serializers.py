"""Output shapes of the projections API (plain dicts: the single read is a hot path) and planned-movement serializers."""
from datetime import date
from typing import Any

from django.conf import settings
from rest_framework import serializers

from projections.models import Direction, Firmness, PlannedKind, PlannedMovement, PlannedStatus
from projections.selectors import SummaryRow


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def summary_output(summary: SummaryRow, *, today: date, asked_code: str | None = None) -> dict[str, Any]:
    """One summary; ``start_balance`` is the available quantity (on hand minus reserved) when computed."""
    at_risk = summary.stockout_date is not None and (summary.stockout_date - today).days < settings.PROJECTION_RISK_DAYS
    out = {
        "code": summary.code,
        "name": summary.name,
        "start_balance": summary.start_balance,
        "threshold": summary.low_stock_threshold,
        "min_balance_7d": summary.min_balance_7d,
        "min_balance_7d_date": _iso(summary.min_balance_7d_date),
        "stockout_date": _iso(summary.stockout_date),
        "below_threshold_date": _iso(summary.below_threshold_date),
        "days_of_cover": summary.days_of_cover,
        "at_risk_7d": at_risk,
        "late_movements": summary.late_movements,
        "as_of": _iso(summary.as_of),
        "horizon_days": summary.horizon_days,
        "source_version": summary.source_version,
        "computed_at": _iso(summary.computed_at),
        "stale": summary.is_stale(today=today),
    }
    if asked_code is not None and asked_code != summary.code:
        out["requested_code"] = asked_code
    return out


class PlannedMovementOutputSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="product.code")
    late = serializers.SerializerMethodField()

    class Meta:
        model = PlannedMovement
        fields = ["id", "source", "source_ref", "code", "date", "direction", "quantity", "kind", "firmness",
                  "status", "late", "note", "created_at", "updated_at"]

    def get_late(self, obj: PlannedMovement) -> bool:
        return obj.status == PlannedStatus.OPEN and obj.date < self.context["today"]


class PlannedMovementLineSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=64, required=False, default="manual")
    source_ref = serializers.CharField(max_length=128)
    code = serializers.CharField(max_length=64)
    date = serializers.DateField()
    direction = serializers.ChoiceField(choices=Direction.choices)
    quantity = serializers.IntegerField(min_value=1, max_value=settings.STOCK_MAX_QUANTITY)
    kind = serializers.ChoiceField(choices=PlannedKind.choices)
    firmness = serializers.ChoiceField(choices=Firmness.choices, required=False, default=Firmness.FIRM)
    status = serializers.ChoiceField(choices=PlannedStatus.choices, required=False, default=PlannedStatus.OPEN)
    note = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)


class PlannedMovementKeySerializer(serializers.Serializer):
    source = serializers.CharField(max_length=64, required=False, default="manual")
    source_ref = serializers.CharField(max_length=128)
