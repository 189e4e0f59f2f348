"""HTTP side of live stock: the WebSocket ticket endpoint."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.models import ApiClient
from inventory.ws_tickets import ws_ticket_issue


class WsTicketApi(APIView):
    """A single-use ticket, valid for seconds, to open ``/ws/stock/`` without a session cookie."""

    required_scope = "read"

    class OutputSerializer(serializers.Serializer):
        ticket = serializers.CharField()
        expires_in = serializers.IntegerField()
        ws_path = serializers.CharField()
        subprotocols = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=None, responses={201: OutputSerializer})
    def post(self, request):
        user = request.user
        if isinstance(user, ApiClient):
            principal = {"kind": "client", "id": user.pk, "name": user.name}
        else:
            principal = {"kind": "user", "id": user.pk, "name": user.get_username()}
        ticket, ttl = ws_ticket_issue(principal=principal)
        data = {
            "ticket": ticket,
            "expires_in": ttl,
            "ws_path": "/ws/stock/",
            "subprotocols": ["stockpulse.v1", f"ticket.{ticket}"],
        }
        return Response(self.OutputSerializer(data).data, status=201)
