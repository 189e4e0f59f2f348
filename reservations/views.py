"""Reservations REST API: create, read, confirm, release, extend, and the storefront's /stock routes (seed 001)."""
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import actor_label, request_client, request_location_scope
from core.errors import ValidationFailed
from core.jsoninput import StrictInputSerializer, fields_unknown_refuse
from core.pagination import StandardPagination, paginated_response
from reservations import selectors, services
from reservations.models import Reservation, ReservationStatus


def reservation_output(reservation: Reservation) -> dict[str, Any]:
    # A plain dict rather than a ModelSerializer: this runs on every reservation request.
    return {
        "id": str(reservation.pk),
        "status": selectors.reservation_effective_status(reservation),
        "expires_at": reservation.expires_at.isoformat(),
        "created_at": reservation.created_at.isoformat(),
        "reference": reservation.reference,
        "lines": [{"code": line.product.code, "location": line.location.code, "quantity": line.quantity}
                  for line in reservation.lines.all()],
    }


def stock_reserve_output(reservation: Reservation) -> dict[str, Any]:
    """Seed 001's answer to POST /stock/{sku}/reserve."""
    line = reservation.lines.all()[0]
    return {"reservation_id": str(reservation.pk), "expires_at": reservation.expires_at.isoformat(),
            "sku": line.product.code, "quantity": line.quantity}


class LineSerializer(StrictInputSerializer):
    code = serializers.CharField(max_length=64)
    location = serializers.CharField(max_length=64, required=False,
                                     help_text="Location code of this line; the cart's location when omitted.")
    quantity = serializers.IntegerField()


class ReservationOutputSerializer(serializers.Serializer):
    """Documents ``reservation_output`` for the schema."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=ReservationStatus.choices)
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    reference = serializers.CharField()
    lines = LineSerializer(many=True)


class PlacementInputSerializer(StrictInputSerializer):
    """Where the lines of a cart (or of an order placed from lines) are reserved: docs/locations.md."""

    lines = LineSerializer(many=True)
    location = serializers.CharField(
        required=False, max_length=64,
        help_text='Location code of every line without its own; the default location when omitted; "auto": '
                  "the first location (of `locations`, or of every active one) that can serve the whole cart.")
    locations = serializers.ListField(child=serializers.CharField(max_length=64), required=False,
                                      help_text='With "location": "auto": the locations to try, in order.')
    allow_split = serializers.BooleanField(required=False,
                                           help_text='With "location": "auto": a line may come from several '
                                                     "locations when no one location can serve the cart.")


class ReservationCreateInputSerializer(PlacementInputSerializer):
    ttl_seconds = serializers.IntegerField(required=False, min_value=30, max_value=86400)
    reference = serializers.CharField(required=False, allow_blank=True, max_length=128)


class ReservationExtendInputSerializer(StrictInputSerializer):
    ttl_seconds = serializers.IntegerField(help_text="Hold until now + ttl_seconds (never shortens).")


def _body(request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise ValidationFailed(_("The body must be a JSON object."))
    return data


class ReservationListCreateApi(APIView):
    """POST reserves every line or none; GET lists the client's own reservations."""
    pagination_class = StandardPagination  # the list answer is paged (declared for the schema)

    required_scope = "reserve"

    InputSerializer = ReservationCreateInputSerializer

    @extend_schema(
        request=InputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER,
                                     description="Same key and body give back the same reservation.")],
        responses={201: ReservationOutputSerializer},
    )
    def post(self, request):
        # The service validates every field itself (it is called from other code too), so the
        # view only checks the shape instead of running the serializer on the hot path.
        data = _body(request)
        fields_unknown_refuse(data, allowed=services.CART_FIELDS)
        lines = data.get("lines")
        if not isinstance(lines, list):
            raise ValidationFailed(_("lines must be a list of {code, quantity}."), details={"lines": "required"})
        reference = data.get("reference") or ""
        if not isinstance(reference, str):
            raise ValidationFailed(_("reference must be a string."), details={"reference": reference})
        reservation = services.reservation_create(
            client=request_client(request), scope=request_location_scope(request), lines=lines, ttl=services.ttl_from_seconds(data.get("ttl_seconds")),
            idempotency_key=request.headers.get("Idempotency-Key"), reference=reference,
            location=data.get("location"), locations=data.get("locations"), allow_split=data.get("allow_split", False),
        )
        return Response(reservation_output(reservation), status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=ReservationStatus.values), OpenApiParameter("page", int)],
        responses=ReservationOutputSerializer(many=True),
    )
    def get(self, request):
        wanted = request.query_params.get("status") or None
        if wanted is not None and wanted not in ReservationStatus.values:
            raise ValidationFailed(_("Unknown status."),
                                   details={"status": wanted, "allowed": ReservationStatus.values})
        queryset = selectors.reservation_list(client=request_client(request), scope=request_location_scope(request), status=wanted)
        return paginated_response(request=request, queryset=queryset, serializer_class=_PlainOutput, view=self)


class _PlainOutput:
    """Adapter so the shared paginator can use ``reservation_output``."""

    def __init__(self, items, many=True, **kwargs):
        self.data = [reservation_output(item) for item in items]


class ReservationDetailApi(APIView):
    required_scope = "reserve"

    @extend_schema(responses=ReservationOutputSerializer)
    def get(self, request, reservation_id):
        reservation = selectors.reservation_get(reservation_id=reservation_id, client=request_client(request), scope=request_location_scope(request))
        return Response(reservation_output(reservation))


class ReservationConfirmApi(APIView):
    """200 confirmed (again: same body), 409 released, 410 expired (its units are back on sale)."""

    required_scope = "reserve"

    @extend_schema(request=None, responses=ReservationOutputSerializer)
    def post(self, request, reservation_id):
        reservation = services.reservation_confirm(
            reservation_id=reservation_id, client=request_client(request), scope=request_location_scope(request), actor=actor_label(request))
        return Response(reservation_output(reservation))


class ReservationReleaseApi(APIView):
    required_scope = "reserve"

    @extend_schema(request=None, responses=ReservationOutputSerializer)
    def post(self, request, reservation_id):
        reservation = services.reservation_release(
            reservation_id=reservation_id, client=request_client(request), scope=request_location_scope(request), actor=actor_label(request))
        return Response(reservation_output(reservation))


class ReservationExtendApi(APIView):
    required_scope = "reserve"

    InputSerializer = ReservationExtendInputSerializer

    @extend_schema(request=InputSerializer, responses=ReservationOutputSerializer)
    def post(self, request, reservation_id):
        data = self.InputSerializer(data=_body(request))
        data.is_valid(raise_exception=True)
        ttl = services.ttl_from_seconds(data.validated_data["ttl_seconds"])
        reservation = services.reservation_extend(reservation_id=reservation_id, client=request_client(request), scope=request_location_scope(request), ttl=ttl)
        return Response(reservation_output(reservation))


class StockReserveApi(APIView):
    """Seed 001: reserve ``quantity`` (default 1) units of one SKU; 200 with the reservation id, 409 when out."""

    required_scope = "reserve"

    @extend_schema(
        request=inline_serializer("StockReserveInput", {
            "quantity": serializers.IntegerField(default=1),
            "location": serializers.CharField(required=False, help_text="Location code; the default when omitted."),
            "ttl_seconds": serializers.IntegerField(
                required=False, min_value=settings.RESERVATION_MIN_TTL_SECONDS,
                max_value=settings.RESERVATION_MAX_TTL_SECONDS,
                help_text="How long the hold lasts; the default is RESERVATION_DEFAULT_TTL_SECONDS.")}),
        responses=inline_serializer("StockReserveOutput", {
            "reservation_id": serializers.UUIDField(), "expires_at": serializers.DateTimeField(),
            "sku": serializers.CharField(), "quantity": serializers.IntegerField()}),
    )
    def post(self, request, sku: str):
        data = request.data if request.data else {}
        if not isinstance(data, dict):
            raise ValidationFailed(_("The body must be a JSON object."))
        fields_unknown_refuse(data, allowed=services.STOCK_RESERVE_FIELDS)
        quantity = data.get("quantity", 1)
        reservation = services.reservation_create(
            client=request_client(request), scope=request_location_scope(request), lines=[{"code": sku, "quantity": quantity}],
            ttl=services.ttl_from_seconds(data.get("ttl_seconds")),
            idempotency_key=request.headers.get("Idempotency-Key"), location=data.get("location"),
        )
        return Response(stock_reserve_output(reservation))


class StockConfirmApi(APIView):
    """Seed 001: confirm a reservation by id; 200, or 410 when it expired."""

    required_scope = "reserve"

    @extend_schema(
        request=inline_serializer("StockConfirmInput", {"reservation_id": serializers.UUIDField()}),
        responses=inline_serializer("StockConfirmOutput", {
            "reservation_id": serializers.UUIDField(), "status": serializers.CharField()}),
    )
    def post(self, request):
        reservation_id = _body(request).get("reservation_id")
        if not isinstance(reservation_id, str) or not reservation_id:
            raise ValidationFailed(_("reservation_id is required."), details={"reservation_id": "required"})
        reservation = services.reservation_confirm(
            reservation_id=reservation_id, client=request_client(request), scope=request_location_scope(request), actor=actor_label(request))
        return Response({"reservation_id": str(reservation.pk), "status": reservation.status})
