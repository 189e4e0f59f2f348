"""Output shapes of the projections API (plain dicts: the single read is a hot path), planned-movement lines and
reorder suggestions."""
from datetime import date
from typing import Any

from django.conf import settings
from rest_framework import serializers

from core.jsoninput import keys_unknown
from projections.models import Direction, Firmness, PlannedKind, PlannedMovement, PlannedStatus, ReorderSuggestion
from projections.selectors import SummaryRow
from projections.services import PLANNED_KEY_FIELDS, PLANNED_LINE_FIELDS, PlannedMovementInput, PlannedMovementKey


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
        "demand_rate": round(summary.demand_rate, 2) if summary.demand_rate is not None else None,
        "stockout_date_at_pace": _iso(summary.stockout_date_at_pace),
        "days_of_cover_at_pace": summary.days_of_cover_at_pace,
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
    location = serializers.CharField(source="location.code")
    late = serializers.SerializerMethodField()

    class Meta:
        model = PlannedMovement
        fields = ["id", "source", "source_ref", "code", "location", "date", "direction", "quantity", "kind", "firmness",
                  "status", "late", "note", "created_at", "updated_at"]

    def get_late(self, obj: PlannedMovement) -> bool:
        return obj.status == PlannedStatus.OPEN and obj.date < self.context["today"]


class PlannedMovementLineSerializer(serializers.Serializer):
    """The shape of one ``upsert`` line, for the OpenAPI schema. Requests are not validated with it:
    ``planned_movement_line_read`` reads each line and the service judges them all at once."""

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
    location = serializers.CharField(max_length=64, required=False,
                                     help_text="Location code; the default location when omitted.")


class PlannedMovementKeySerializer(serializers.Serializer):
    """The shape of one ``cancel`` line, for the OpenAPI schema (read by ``planned_movement_key_read``)."""

    source = serializers.CharField(max_length=64, required=False, default="manual")
    source_ref = serializers.CharField(max_length=128)


def _date_read(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return value
    return value


def _whole_read(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def planned_movement_line_read(raw: Any) -> PlannedMovementInput:
    """One ``upsert`` line as sent, never refused here: ISO dates and digit strings are converted, absent
    optional fields take their defaults, and anything else is kept as given (a line that is not an
    object has no fields), so the service judges every line of a call at once and in one shape."""
    line = raw if isinstance(raw, dict) else {}
    return PlannedMovementInput(
        source_ref=line.get("source_ref"), code=line.get("code"), date=_date_read(line.get("date")),
        direction=line.get("direction"), quantity=_whole_read(line.get("quantity")), kind=line.get("kind"),
        source=line.get("source", "manual"), firmness=line.get("firmness", Firmness.FIRM),
        status=line.get("status", PlannedStatus.OPEN), note=line.get("note", ""), location=line.get("location"),
        unknown_fields=keys_unknown(line, PLANNED_LINE_FIELDS),
    )


def planned_movement_key_read(raw: Any) -> PlannedMovementKey:
    """One ``cancel`` line as sent, ``source`` defaulting to ``manual``."""
    line = raw if isinstance(raw, dict) else {}
    return PlannedMovementKey(line.get("source", "manual"), line.get("source_ref"),
                              keys_unknown(line, PLANNED_KEY_FIELDS))


class ReorderSuggestionOutputSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="product.code")
    name = serializers.CharField(source="product.name")
    planned_movement = serializers.IntegerField(source="planned_movement_id", allow_null=True)

    class Meta:
        model = ReorderSuggestion
        fields = ["id", "code", "name", "state", "quantity", "demand", "safety_stock", "available", "firm_inbound",
                  "cover_days", "arrival_date", "planned_movement", "decided_by", "decided_at", "created_at",
                  "updated_at"]


class LocatedReorderSuggestionOutputSerializer(ReorderSuggestionOutputSerializer):
    """A suggestion with its location code: the answer to a request that named a location."""

    location = serializers.CharField(source="location.code")

    class Meta(ReorderSuggestionOutputSerializer.Meta):
        fields = [*ReorderSuggestionOutputSerializer.Meta.fields[:3], "location",
                  *ReorderSuggestionOutputSerializer.Meta.fields[3:]]


def reorder_output_serializer(*, located: bool) -> type[ReorderSuggestionOutputSerializer]:
    """Suggestions carry ``location`` when the request named one; without, the shape is the one from before
    locations."""
    return LocatedReorderSuggestionOutputSerializer if located else ReorderSuggestionOutputSerializer
