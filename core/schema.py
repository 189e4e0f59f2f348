"""OpenAPI generation: component names that never collide, and the error answers every operation can give."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

# The one error shape (core/errors.py), as an OpenAPI component.
ERROR_COMPONENT = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code, e.g. insufficient_stock."},
                "message": {"type": "string", "description": "Human-readable, in the request's language."},
                "details": {"type": "object", "additionalProperties": True},
            },
        },
    },
}

_WRITE_METHODS = {"post", "put", "patch", "delete"}
_DESCRIPTIONS = {
    "400": "The request is not valid: every bad field or line is listed in details.",
    "401": "No credentials, or a token that is wrong, revoked or expired.",
    "403": "The credentials lack the scope this operation needs.",
    "404": "No such resource (a product code: unknown_code), or a page past the last.",
    "409": "The current state forbids it (e.g. insufficient_stock, a reservation no longer active).",
    "410": "The resource is gone (e.g. an expired reservation).",
    "422": "Well-formed but cannot be processed as asked.",
    "429": "Rate limit passed: wait Retry-After seconds.",
    "503": "A service the operation needs is down or overloaded: nothing was written; retry after Retry-After seconds.",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}


class StockPulseAutoSchema(AutoSchema):
    """Names a view's nested Input/Output serializers after the view ("ProductCreateInput"): without
    this every view's ``InputSerializer`` would share, and overwrite, one component."""

    def get_serializer_name(self, serializer, direction):
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if not outer or "<locals>" in outer:
            return super().get_serializer_name(serializer, direction)
        return outer.removesuffix("Api").replace(".", "") + inner


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents core.auth's API tokens (``Authorization: Bearer sp_...``) as the bearerAuth scheme."""

    target_class = "core.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "An API client's token, made in the admin (API clients) with the scopes it needs."}


def _error_codes_for(path: str, method: str, operation: dict) -> list[str]:
    codes = ["429", "503"]
    if operation.get("security") != [{}] and operation.get("security", [None]) != []:
        codes += ["401", "403"]
    if method in _WRITE_METHODS or operation.get("parameters"):
        codes.append("400")
    # A path id that matches nothing, a page past the last, a product code filter that names no product,
    # or (writes) a code or id named in the body.
    parameters = {parameter.get("name") for parameter in operation.get("parameters", [])}
    if "{" in path or "page" in parameters or "code" in parameters or method in _WRITE_METHODS:
        codes.append("404")
    if method in _WRITE_METHODS:
        codes += ["409", "410", "422"]
    return sorted(codes)


def error_responses_hook(result, generator, request, public):
    """Postprocessing hook: add the error shape as a component and document, on every operation, the
    error answers it can give, so clients and schema checks see 4xx/503 bodies as the server sends them."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code in _error_codes_for(path, method, operation):
                if code in responses:
                    continue
                responses[code] = {"description": _DESCRIPTIONS[code], "content": error_content}
                if code in ("429", "503"):
                    responses[code]["headers"] = _RETRY_AFTER
    return result


# Routes that only an outside service calls (Telegram's webhook, authenticated by its secret header):
# not part of the API a client programs against.
_NOT_DOCUMENTED_PREFIXES = ("/telegram/",)


def documented_endpoints_hook(endpoints):
    """Preprocessing hook: leave out of the schema the routes in ``_NOT_DOCUMENTED_PREFIXES``."""
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith(_NOT_DOCUMENTED_PREFIXES)]
