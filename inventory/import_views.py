"""ERP stock import over the API: POST /api/v1/stock/import with JSON rows or a CSV body (scope manage)."""
import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import actor_label
from core.errors import ValidationFailed
from core.jsoninput import InputJSONParser
from inventory.importing import stock_import


class CsvTextParser(BaseParser):
    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read()


class StockImportApi(APIView):
    """Validate every row, then apply all or none; errors name their line numbers."""

    required_scope = "manage"
    parser_classes = [InputJSONParser, CsvTextParser]

    @extend_schema(
        parameters=[OpenApiParameter("dry_run", bool, description="validate and report only"),
                    OpenApiParameter("reference", str, description="kept on every ledger row")],
        request={"application/json": {"type": "object"}, "text/csv": {"type": "string"}},
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
        reference = request.query_params.get("reference", "")
        if isinstance(request.data, bytes):
            content, fmt = request.data, "csv"
        elif isinstance(request.data, (list, dict)):
            body = request.data
            if isinstance(body, dict):
                reference = body.get("reference", reference) or ""
                dry_run = bool(body.get("dry_run", dry_run))
            content, fmt = json.dumps(body), "json"
        else:
            raise ValidationFailed("Send JSON rows or a text/csv body.")
        if not isinstance(reference, str) or len(reference) > 128:
            raise ValidationFailed("reference is text of at most 128 characters.", details={"reference": "invalid"})
        result = stock_import(content=content, fmt=fmt, actor=actor_label(request), reference=reference,
                              dry_run=dry_run)
        return Response(result.as_dict(), status=status.HTTP_200_OK)
