"""OpenAPI generation (drf-spectacular): component names for views' nested serializers, and the bearer-token security scheme."""
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AutoSchema(openapi.AutoSchema):
    def get_serializer_name(self, serializer, direction) -> str:
        """A view's nested serializer is named after its view: ``StockLookupApi.InputSerializer`` gives
        ``StockLookupInput``, so the ``Input`` and ``Output`` of two views are two components, not one
        name claimed twice (an incorrect schema, and a ``check --deploy`` warning)."""
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if not outer or "<locals>" in outer:
            return super().get_serializer_name(serializer, direction)
        return outer.removesuffix("Api").replace(".", "") + inner


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <token>`` (core/auth.py) in the schema's security schemes."""

    target_class = "core.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
