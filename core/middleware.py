"""Request middleware: request id in and out, a JSON access-log line and per-route request metrics."""
import logging
import re
import time
import uuid

from core.logging import request_id_var
from core.metrics import HTTP_LATENCY, HTTP_REQUESTS

access_logger = logging.getLogger("stockpulse.access")
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        elapsed = time.perf_counter() - started
        HTTP_LATENCY.labels(request.method, route).observe(elapsed)
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        response["X-Request-ID"] = request_id
        if access_logger.isEnabledFor(logging.INFO):
            access_logger.info(
                "request",
                extra={"request_id": request_id, "method": request.method, "path": request.path,
                       "status": response.status_code, "duration_ms": round(elapsed * 1000, 2)},
            )
        return response
