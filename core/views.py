"""Site-level endpoints: the home redirect, liveness, readiness (PostgreSQL and Redis answer), Prometheus metrics, and
API paths asked with or without their trailing slash."""
import glob
import logging
import os

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import Resolver404, resolve, reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core.cache import redis_new
from core.db import BoundedReader
from core.errors import database_retry_after
from core.pipelines import BACKLOG_REGISTRY

logger = logging.getLogger(__name__)


def home(request) -> HttpResponseRedirect:
    """``/``: staff land on the dashboard, everyone else on the API docs."""
    staff = request.user.is_authenticated and request.user.is_staff
    return HttpResponseRedirect(reverse("dashboard" if staff else "api-docs"))


@csrf_exempt  # the route it hands over to keeps its own CSRF rule (DRF checks it for session users)
def api_path_other_slash(request, path: str) -> HttpResponse:
    """An API path no route matched (config/urls.py lists it last): served by the route it names with its
    trailing slash taken away or added, so ``/api/v1/stock/X`` and ``/api/v1/reservations/`` answer like
    ``/api/v1/stock/X/`` and ``/api/v1/reservations``; otherwise a 404. Served, not redirected as Django's
    APPEND_SLASH would: a redirect turns a POST into a GET without its body, and costs the client a round trip."""
    if path.endswith("//"):
        raise Http404
    other = f"/{path[:-1]}" if path.endswith("/") else f"/{path}/"
    try:
        match = resolve(other, getattr(request, "urlconf", None))
    except Resolver404:
        match = None
    if match is None or match.func is api_path_other_slash:
        request.resolver_match = None  # counted as unmatched in the request metrics, as any unknown path
        raise Http404
    request.resolver_match = match
    return match.func(request, *match.args, **match.kwargs)


def healthz(request) -> JsonResponse:
    return JsonResponse({"status": "ok"})


_readiness = BoundedReader("readiness")


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_database() -> str | None:
    try:
        _readiness.read(_select_one, seconds=settings.READYZ_DATABASE_SECONDS)
        return None
    except TimeoutError:
        return f"PostgreSQL did not answer within {settings.READYZ_DATABASE_SECONDS:g} s."
    except Exception as exc:  # any failure means not ready
        return str(exc)


def _check_redis() -> str | None:
    try:
        # A client of its own, not the shared ones: readiness asks Redis (or the sentinels) afresh, past any
        # "known down" mark.
        client = redis_new(timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return None
    except Exception as exc:
        return str(exc)


def readyz(request) -> JsonResponse:
    failures = {name: err for name, err in (("database", _check_database()), ("redis", _check_redis())) if err}
    if failures:
        logger.warning("not ready", extra={"failures": failures})
        return JsonResponse(
            {"error": {"code": "not_ready", "message": _("A dependency does not answer."), "details": failures}},
            status=503, headers={"Retry-After": database_retry_after()},
        )
    return JsonResponse({"status": "ready", "checks": {"database": "ok", "redis": "ok"}})


def metrics(request) -> HttpResponse:
    # Two expositions back to back: the processes' own metrics, then the pipelines' backlog read from
    # PostgreSQL now (no family is in both).
    body = generate_latest(_metrics_registry()) + generate_latest(BACKLOG_REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


class MetricsDirCollector(Collector):
    """Sums the Prometheus files of every process that writes below ``METRICS_DIR`` (one subdirectory per kind)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def collect(self):
        files = sorted(glob.glob(os.path.join(self.root, "*", "*.db")) + glob.glob(os.path.join(self.root, "*.db")))
        return MultiProcessCollector.merge(files, accumulate=True)


def _metrics_registry() -> CollectorRegistry:
    """The metrics of every process of this host that /metrics can see.

    With ``METRICS_DIR`` (`make run`), the files of the Daphne processes and the Celery workers below it;
    else, under scripts/serve.py, the files every Daphne process writes in PROMETHEUS_MULTIPROC_DIR, so
    the answer is the same whichever process takes the scrape. Without either (tests, one process) the
    process's own registry is the whole service."""
    if settings.METRICS_DIR or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # A registry holding only the collector: the default one also holds this process's own metrics,
        # which would be exported beside the sums under the same names.
        registry = CollectorRegistry()
        if settings.METRICS_DIR:
            registry.register(MetricsDirCollector(settings.METRICS_DIR))
        else:
            MultiProcessCollector(registry)
        return registry
    return REGISTRY
