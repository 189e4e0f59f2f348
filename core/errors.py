"""Typed domain errors and the one DRF exception handler that turns every error into the same JSON shape.

Every error body is ``{"error": {"code": ..., "message": ..., "details": {...}}}``.
"""
import logging
import math
import sys
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from psycopg_pool import PoolTimeout
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A rule of the domain said no. Subclasses fix the code and HTTP status."""

    code = "error"
    status = 400
    default_message = gettext_lazy("The request could not be processed.")

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class ValidationFailed(DomainError):
    code = "invalid"
    status = 400
    default_message = gettext_lazy("The request is not valid.")


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = gettext_lazy("Not found.")


class UnknownCode(NotFound):
    code = "unknown_code"
    default_message = gettext_lazy("No product has this code.")


class UnknownLocation(ValidationFailed):
    code = "unknown_location"
    default_message = gettext_lazy("No active location has this code.")


class LocationForbidden(DomainError):
    """The API client or staff user may not use this location."""
    code = "location_forbidden"
    status = 403
    default_message = gettext_lazy("You may not use this location.")


class Conflict(DomainError):
    code = "conflict"
    status = 409
    default_message = gettext_lazy("The request conflicts with the current state.")


class InsufficientStock(Conflict):
    code = "insufficient_stock"
    default_message = gettext_lazy("Not enough stock available.")

    def __init__(self, *, lines: list[dict[str, Any]], message: str | None = None):
        super().__init__(message, details={"lines": lines})
        self.lines = lines


class Gone(DomainError):
    code = "gone"
    status = 410
    default_message = gettext_lazy("This resource is no longer available.")


class Unprocessable(DomainError):
    code = "unprocessable"
    status = 422
    default_message = gettext_lazy("The request cannot be processed.")


class Unavailable(DomainError):
    """503: answered with Retry-After (also in ``details.retry_after``), as every 503 of the API is."""

    code = "unavailable"
    status = 503
    default_message = gettext_lazy("A service this operation needs is unavailable; try again shortly.")

    def __init__(self, message: str | None = None, *, retry_after: int = 1, details: dict[str, Any] | None = None):
        super().__init__(message, details={**(details or {}), "retry_after": str(retry_after)})
        self.retry_after = retry_after


class DatabaseDown(psycopg.OperationalError):
    """PostgreSQL is known to be unreachable (core/db.py's circuit): raised before any wait on it.

    A psycopg OperationalError, so Django wraps it as it wraps the driver's own errors."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "PostgreSQL is unreachable.")


# SQLSTATEs of a session PostgreSQL ended or would not start: shutdown, crash, starting up.
_SESSION_ENDED = {"57P01", "57P02", "57P03"}


def database_unreachable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an error it was raised from) says PostgreSQL could not be reached or the
    session died under it: our circuit's DatabaseDown, a refused or broken connection, a server shut
    down. Not the pool's wait running out (overload) nor any error PostgreSQL gave a statement."""
    while exc is not None:
        if isinstance(exc, DatabaseDown):
            return True
        if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, PoolTimeout):
            state = exc.sqlstate
            return state is None or state.startswith("08") or state in _SESSION_ENDED
        exc = exc.__cause__
    return False


def database_retry_after() -> str:
    """The Retry-After of an answer given while PostgreSQL is unreachable: when the next check of it is due."""
    return str(max(1, math.ceil(settings.DB_DOWN_RETRY_SECONDS)))


def database_down_body() -> dict[str, Any]:
    return error_body("unavailable", _("The database is unavailable; try again shortly."),
                      {"retry_after": database_retry_after()})


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error shape; a lazy message is translated here, into the language active for the request."""
    return {"error": {"code": code, "message": str(message), "details": details or {}}}


def error_json_response(body: dict[str, Any], *, status: int, headers: dict[str, str] | None = None) -> JsonResponse:
    """An error answered outside DRF (404, 500, middleware), written as DRF's renderer writes one: compact,
    UTF-8 text rather than \\u escapes, so "Não encontrado." reads the same on every route."""
    return JsonResponse(body, status=status, headers=headers,
                        json_dumps_params={"ensure_ascii": False, "separators": (",", ":")})


def domain_error_body(exc: DomainError) -> dict[str, Any]:
    """The body every API answer gives for this domain error (its status is ``exc.status``)."""
    return error_body(exc.code, exc.message, exc.details)


def _flatten_message(detail: Any) -> str:
    """The first human message found in a DRF error detail, for the top-level message."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _flatten_message(value)
            if key in ("non_field_errors", "detail"):
                return inner
            return _("%(field)s: %(message)s") % {"field": key, "message": inner}
        return _("Invalid input.")
    if isinstance(detail, list):
        return _flatten_message(detail[0]) if detail else _("Invalid input.")
    return str(detail)


_DRF_CODES: dict[type, str] = {
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.Throttled: "rate_limited",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, DomainError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
        return Response(domain_error_body(exc), status=exc.status, headers=headers)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", _("Not found.")), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("permission_denied", _("You do not have permission.")), status=403)
    if isinstance(exc, drf_exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return Response(error_body("invalid", _flatten_message(exc.detail), details), status=400)
    if isinstance(exc, drf_exceptions.APIException):
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), exc.default_code)
        headers = {}
        if isinstance(exc, drf_exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait + 0.999))
        if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        details = {"retry_after": headers["Retry-After"]} if "Retry-After" in headers else {}
        return Response(error_body(code, _flatten_message(exc.detail), details), status=exc.status_code, headers=headers)
    if database_unreachable(exc):
        # Nothing was written (a transaction the outage cut off never committed): the client may retry.
        logger.warning("database unreachable: answered 503", extra={"error": str(exc)})
        return Response(database_down_body(), status=503, headers={"Retry-After": database_retry_after()})
    if caused_by(exc, PoolTimeout):
        # Overload, not a fault: every connection stayed busy for the pool's whole wait. Nothing
        # was written; the client may retry.
        logger.warning("database pool exhausted: answered 503", exc_info=exc)
        return Response(error_body("unavailable", _("The service is overloaded; try again shortly."),
                                   {"retry_after": "1"}), status=503, headers={"Retry-After": "1"})
    logger.exception("unhandled error in API view", exc_info=exc)
    return Response(error_body("internal_error", _("An unexpected error occurred.")), status=500)


def caused_by(exc: BaseException | None, types: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` or an exception it was raised from (``__cause__``, as Django wraps database
    errors) is one of ``types``."""
    while exc is not None:
        if isinstance(exc, types):
            return True
        exc = exc.__cause__
    return False


def json_404(request, exception=None) -> JsonResponse:
    return error_json_response(error_body("not_found", _("Not found.")), status=404)


def json_500(request) -> HttpResponse:
    """Django's answer to an error no view handled (in middleware, in a view outside DRF: admin, dashboard).

    With PostgreSQL unreachable it is a 503 with Retry-After: in the error shape, or for a browser's
    page (admin, dashboard) a short HTML page saying so."""
    if database_unreachable(sys.exc_info()[1]):
        headers = {"Retry-After": database_retry_after()}
        if _wants_html(request):
            return HttpResponse(render_to_string("503.html", {"retry_after": headers["Retry-After"]}),
                                status=503, headers=headers)
        return error_json_response(database_down_body(), status=503, headers=headers)
    return error_json_response(error_body("internal_error", _("An unexpected error occurred.")), status=500)


def _wants_html(request) -> bool:
    """A browser asking for a page: the API's routes always answer JSON."""
    return not request.path.startswith("/api/") and "text/html" in request.headers.get("Accept", "")
