"""Operational endpoints: liveness, readiness (PostgreSQL and Redis answer) and Prometheus metrics."""
import logging
import os

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)


def healthz(request) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means not ready
        return str(exc)


def _check_redis() -> str | None:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
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
            {"error": {"code": "not_ready", "message": "A dependency does not answer.", "details": failures}},
            status=503,
        )
    return JsonResponse({"status": "ready", "checks": {"database": "ok", "redis": "ok"}})


def metrics(request) -> HttpResponse:
    return HttpResponse(generate_latest(_metrics_registry()), content_type=CONTENT_TYPE_LATEST)


def _metrics_registry() -> CollectorRegistry:
    """Under scripts/serve.py every Daphne process writes its metrics to files in PROMETHEUS_MULTIPROC_DIR:
    summing them all makes the answer the same whichever process takes the scrape. Without the variable
    (tests, one process) the process's own registry is the whole service."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # A registry holding only the collector: the default one also holds this process's own metrics,
        # which would be exported beside the sums under the same names.
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY
