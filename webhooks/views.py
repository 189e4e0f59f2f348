"""Webhooks REST API (scope manage): endpoints (create, read, change, delete, rotate the secret) and deliveries."""
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.jsoninput import StrictInputSerializer
from core.pagination import StandardPagination, paginated_response
from webhooks import selectors, services
from webhooks.models import DELIVERY_TYPES, DeliveryStatus, EventType, WebhookDelivery, WebhookEndpoint

REDELIVER_MAX_IDS = 100
BATCHES_HELP = ("Send several events of one change in one request (\"type\": \"batch\"); false: one request "
                "per event.")


@extend_schema_field(serializers.ChoiceField(choices=EventType.choices), component_name="WebhookEventType")
class EventTypeField(serializers.CharField):
    """An event type name. Documented as the enum, but input is checked by the services, whose error
    lists the unknown types and the allowed ones."""


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """An endpoint as every read shows it: never with its secret."""

    event_types = serializers.ListField(child=EventTypeField())

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "active", "batches", "created_at", "updated_at"]


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """Only the create and rotate-secret answers carry the secret: it is shown once."""

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    endpoint = serializers.IntegerField(source="endpoint_id")
    event_type = serializers.ChoiceField(choices=DELIVERY_TYPES, help_text="An event type, or \"batch\".")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "event_id", "event_type", "event_count", "status", "attempts", "next_attempt_at",
                  "last_status_code", "last_error", "created_at", "delivered_at", "payload"]


class WebhookEndpointListCreateApi(APIView):
    """GET pages the endpoints (never with secrets); POST registers one and shows its secret, this once."""

    required_scope = "manage"
    # Declared for the schema (the list answer is paged); paginated_response pages with the same class.
    pagination_class = StandardPagination

    @extend_schema_serializer(component_name="WebhookEndpointCreateInput")
    class InputSerializer(StrictInputSerializer):
        url = serializers.CharField(help_text="http(s) address that receives the POSTs.")
        event_types = serializers.ListField(child=EventTypeField(max_length=40))
        description = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        active = serializers.BooleanField(required=False, default=True)
        batches = serializers.BooleanField(required=False, default=True, help_text=BATCHES_HELP)
        secret = serializers.CharField(required=False, min_length=16, max_length=128,
                                       help_text="Signing secret; omit it and one is generated.")

    @extend_schema(responses=WebhookEndpointSerializer(many=True))
    def get(self, request):
        return paginated_response(request=request, queryset=selectors.endpoint_list(),
                                  serializer_class=WebhookEndpointSerializer, view=self)

    @extend_schema(request=InputSerializer, responses={201: WebhookEndpointWithSecretSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_create(**data.validated_data)
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(APIView):
    required_scope = "manage"

    @extend_schema_serializer(component_name="WebhookEndpointUpdateInput")
    class InputSerializer(StrictInputSerializer):
        url = serializers.CharField(required=False)
        event_types = serializers.ListField(child=EventTypeField(max_length=40), required=False)
        description = serializers.CharField(required=False, allow_blank=True, max_length=200)
        active = serializers.BooleanField(required=False)
        batches = serializers.BooleanField(required=False, help_text=BATCHES_HELP)

    @extend_schema(responses=WebhookEndpointSerializer)
    def get(self, request, endpoint_id: int):
        return Response(WebhookEndpointSerializer(selectors.endpoint_get(endpoint_id=endpoint_id)).data)

    @extend_schema(request=InputSerializer, responses=WebhookEndpointSerializer)
    def patch(self, request, endpoint_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = selectors.endpoint_get(endpoint_id=endpoint_id)
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, **data.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request, endpoint_id: int):
        services.webhook_endpoint_delete(endpoint=selectors.endpoint_get(endpoint_id=endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointSecretRotateApi(APIView):
    """A new generated secret, shown in this answer only; the old one stops verifying at once."""

    required_scope = "manage"

    @extend_schema(request=None, responses=WebhookEndpointWithSecretSerializer)
    def post(self, request, endpoint_id: int):
        endpoint = selectors.endpoint_get(endpoint_id=endpoint_id)
        endpoint = services.webhook_endpoint_secret_rotate(endpoint=endpoint)
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)


class WebhookDeliveryListApi(APIView):
    """Deliveries newest first: what was sent where, how often, and the last answer."""

    required_scope = "manage"
    pagination_class = StandardPagination

    class FilterSerializer(serializers.Serializer):
        endpoint = serializers.IntegerField(required=False, min_value=1)
        status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
        event_type = serializers.ChoiceField(choices=DELIVERY_TYPES, required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("endpoint", int, description="Only this endpoint's deliveries."),
            OpenApiParameter("status", str, enum=DeliveryStatus.values),
            OpenApiParameter("event_type", str, enum=[value for value, _ in DELIVERY_TYPES]),
        ],
        responses=WebhookDeliverySerializer(many=True),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = filters.validated_data
        queryset = selectors.delivery_list(endpoint_id=values.get("endpoint"), status=values.get("status"),
                                           event_type=values.get("event_type"))
        return paginated_response(request=request, queryset=queryset, serializer_class=WebhookDeliverySerializer,
                                  view=self)


class WebhookDeliveryRedeliverApi(APIView):
    """Send deliveries again now (dead or delivered ones too), each with a fresh series of tries."""

    required_scope = "manage"

    @extend_schema_serializer(component_name="WebhookRedeliverInput")
    class InputSerializer(StrictInputSerializer):
        ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1,
                                    max_length=REDELIVER_MAX_IDS)

    @extend_schema_serializer(component_name="WebhookRedeliverOutput")
    class OutputSerializer(serializers.Serializer):
        redelivered = serializers.ListField(child=serializers.IntegerField(), help_text="Ids queued again.")
        unknown = serializers.ListField(child=serializers.IntegerField(), help_text="Ids that match no delivery.")

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asked = data.validated_data["ids"]
        redelivered = services.webhook_deliveries_redeliver(delivery_ids=asked)
        found = set(redelivered)
        unknown = sorted({pk for pk in asked if pk not in found})
        return Response(self.OutputSerializer({"redelivered": redelivered, "unknown": unknown}).data)
