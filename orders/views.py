"""Orders REST API: accept an order (202, processed asynchronously) and read its status and step history."""
from typing import Any

from django.db.models import prefetch_related_objects
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import request_client, request_location_scope
from core.errors import ValidationFailed
from orders.models import Order
from orders.selectors import order_get
from orders.services import order_create
from reservations.views import LineSerializer, PlacementInputSerializer


def order_output(order: Order, *, with_steps: bool = False) -> dict[str, Any]:
    body = {
        "id": str(order.pk),
        "status": order.status,
        "reservation_id": str(order.reservation_id),
        "reference": order.reference,
        "invoice": f"{order.invoice_series}-{order.invoice_number}" if order.invoice_number else None,
        "failure_reason": order.failure_reason or None,
        "created_at": order.created_at.isoformat(),
        "processed_at": order.processed_at.isoformat() if order.processed_at else None,
        "lines": [{"code": line.product.code, "location": line.location.code, "quantity": line.quantity}
                  for line in sorted(order.lines.all(), key=lambda line: (line.product.code, line.location.code))],
    }
    if with_steps:
        body["steps"] = [{"step": s.step, "detail": s.detail, "at": s.at.isoformat()} for s in order.steps.all()]
    return body


class OrderCreateApi(APIView):
    """Turn a reservation into an order, or reserve and order lines in one step. Answers 202: processing is async."""

    required_scope = "reserve"

    class InputSerializer(PlacementInputSerializer):
        reservation_id = serializers.CharField(required=False, max_length=64)
        lines = LineSerializer(many=True, required=False)
        reference = serializers.CharField(required=False, allow_blank=True, max_length=128)

    @extend_schema(
        request=InputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER,
                                     description="Same key and body give back the same order.")],
        responses={202: inline_serializer("OrderAccepted", {"id": serializers.UUIDField(),
                                                            "status": serializers.CharField()})},
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationFailed(_("The body must be a JSON object."))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        order = order_create(
            client=request_client(request),
            scope=request_location_scope(request),
            reservation_id=values.get("reservation_id"),
            lines=[dict(line) for line in values["lines"]] if "lines" in values else None,
            idempotency_key=request.headers.get("Idempotency-Key"),
            reference=values.get("reference", ""),
            location=values.get("location"),
            locations=values.get("locations"),
            allow_split=values.get("allow_split", False),
        )
        headers = {"Location": f"/api/v1/orders/{order.pk}"}
        if getattr(order, "replayed", False):
            headers["Idempotent-Replayed"] = "true"
        prefetch_related_objects([order], "lines__product", "lines__location")
        return Response(order_output(order), status=status.HTTP_202_ACCEPTED, headers=headers)


class OrderDetailApi(APIView):
    required_scope = "read"

    @extend_schema(responses={200: inline_serializer("Order", {"id": serializers.UUIDField(),
                                                               "status": serializers.CharField()})})
    def get(self, request, order_id: str):
        return Response(order_output(order_get(order_id=order_id, client=request_client(request),
                                             scope=request_location_scope(request)), with_steps=True))
