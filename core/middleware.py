"""Request middleware: request id in and out, URLs with NUL refused, a JSON access-log line and per-route request
metrics; and the WebSocket guard that closes a connect cleanly when PostgreSQL is unreachable."""
import logging
import re
import time
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _

from core.errors import database_unreachable, error_body, error_json_response
from core.logging import request_id_var
from core.metrics import HTTP_LATENCY, HTTP_REQUESTS

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("stockpulse.access")
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class RequestContextMiddleware:
    """Sync and async: under ASGI a sync-only middleware at the top of the stack would cost every
    request two extra thread hops (into a worker thread for it, back to the loop for the next one)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        request_id, token, started = self._begin(request)
        try:
            response = _url_refusal(request) or self.get_response(request)
        finally:
            request_id_var.reset(token)
        return self._finish(request, response, request_id, started)

    async def _acall(self, request):
        request_id, token, started = self._begin(request)
        try:
            response = _url_refusal(request) or await self.get_response(request)
        finally:
            request_id_var.reset(token)
        return self._finish(request, response, request_id, started)

    @staticmethod
    def _begin(request):
        request_id = request_id_from(request.headers.get("X-Request-ID", ""))
        request.request_id = request_id
        return request_id, request_id_var.set(request_id), time.perf_counter()

    @staticmethod
    def _finish(request, response, request_id, started):
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        request_observe(method=request.method, path=request.path, route=route, status=response.status_code,
                        request_id=request_id, elapsed=time.perf_counter() - started)
        response["X-Request-ID"] = request_id
        return response


def _url_refusal(request) -> JsonResponse | None:
    """A 400 for a path or query string holding the NUL character: no code, id or filter can contain
    it (PostgreSQL text cannot), and a query with it fails in the database instead of answering."""
    if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
        # Before LocaleMiddleware: the answer takes the request's language itself.
        language = translation.get_language_from_request(request)
        with translation.override(language):
            message = _("The URL cannot contain the NUL character (%00).")
            response = error_json_response(error_body("malformed_request", message), status=400)
        response["Content-Language"] = language
        return response
    return None


def request_id_from(incoming: str) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    return incoming if _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex


def request_observe(*, method: str, path: str, route: str, status: int, request_id: str, elapsed: float) -> None:
    """Metrics and the access-log line of one answered request (also used by the reservation fast path)."""
    HTTP_LATENCY.labels(method, route).observe(elapsed)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.info(
            "request",
            extra={"request_id": request_id, "method": method, "path": path,
                   "status": status, "duration_ms": round(elapsed * 1000, 2)},
        )


# The live stream's "try again" close code (inventory.consumers.CLOSE_TRY_AGAIN).
WEBSOCKET_CLOSE_TRY_AGAIN = 4503


class WebsocketDatabaseGuard:
    """ASGI middleware for WebSocket: a socket whose consumer (or the auth in front of it) needs
    PostgreSQL while it is unreachable, for the session's user or a subscription's codes, is closed
    with 4503, "try again", as when Redis is down (accepted first if it was not yet, so the code
    reaches the client), instead of an HTTP 500 or a 1011 with a traceback. Any other error, and an
    error once the socket is closed, goes up as before."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        seen: set[str] = set()  # the message types of this socket so far, both ways

        async def receive_seen():
            message = await receive()
            seen.add(message["type"])
            return message

        async def send_seen(message):
            seen.add(message["type"])
            await send(message)

        try:
            await self.app(scope, receive_seen, send_seen)
        except Exception as exc:
            if "websocket.close" in seen or "websocket.disconnect" in seen or not database_unreachable(exc):
                raise
            logger.warning("websocket refused: database unreachable", extra={"path": scope.get("path")})
            if "websocket.connect" not in seen:
                await receive()
            if "websocket.accept" not in seen:
                await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": WEBSOCKET_CLOSE_TRY_AGAIN})
