"""ERP stock import over the API (scope manage): POST queues an import job (202), GET .../imports/{id} reads it."""
import json
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.auth import actor_label, request_location_scope
from core.errors import ValidationFailed
from core.jsoninput import InputJSONParser, fields_unknown_refuse
from inventory.import_jobs import import_job_create, job_progress
from inventory.models import ImportJob
from inventory.selectors import import_job_get, location_default

ERRORS_PAGE_SIZE = 100
ERRORS_MAX_PAGE_SIZE = 1000


class CsvTextParser(BaseParser):
    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read()


def _positive(request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1 or (maximum is not None and value > maximum):
        if maximum:
            message = _("%(name)s is a whole number from 1 up to %(max)d.") % {"name": name, "max": maximum}
        else:
            message = _("%(name)s is a whole number from 1.") % {"name": name}
        raise ValidationFailed(message, details={name: raw})
    return value


def import_job_output(job: ImportJob, *, page: int = 1, page_size: int = ERRORS_PAGE_SIZE) -> dict[str, Any]:
    """A job as clients see it; its bad lines a page at a time, in line order."""
    start = (page - 1) * page_size
    return {
        "id": job.pk,
        "url": f"/api/v1/stock/imports/{job.pk}",
        "status": job.status,
        "phase": job.phase,
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "progress": job_progress(job),
        "format": job.fmt,
        "reference": job.reference,
        "dry_run": job.dry_run,
        "location": job.location.code if job.location_id else location_default().code,
        "attempts": job.attempts,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "result": job.result,
        "failure": job.failure,
        "errors": {"count": len(job.errors), "lines": job.error_count, "page": page, "page_size": page_size,
                   "items": job.errors[start:start + page_size]},
    }


# The keys of a JSON import sent as an object; a misspelt "location" would count the items at the default one.
IMPORT_ENVELOPE_FIELDS = frozenset({"items", "reference", "dry_run", "location"})


class StockImportApi(APIView):
    """Queue an import of JSON rows or a CSV body. Every row is checked first, then all are applied or none."""

    required_scope = "manage"
    parser_classes = [InputJSONParser, CsvTextParser]

    @extend_schema(
        parameters=[OpenApiParameter("dry_run", bool, description="validate and report only"),
                    OpenApiParameter("reference", str, description="kept on every ledger row")],
        request={"application/json": {"type": "object"}, "text/csv": {"type": "string"}},
        responses={202: {"type": "object"}},
    )
    def post(self, request):
        dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
        reference = request.query_params.get("reference", "")
        location = request.query_params.get("location") or None
        if isinstance(request.data, bytes):
            content, fmt = request.data, "csv"
        elif isinstance(request.data, (list, dict)):
            body = request.data
            if isinstance(body, dict):
                # The envelope's keys only: an item's extra fields are an ERP's own and stay allowed.
                fields_unknown_refuse(body, allowed=IMPORT_ENVELOPE_FIELDS)
                reference = body.get("reference", reference) or ""
                dry_run = bool(body.get("dry_run", dry_run))
                location = body.get("location", location) or None
            content, fmt = json.dumps(body).encode(), "json"
        else:
            raise ValidationFailed(_("Send JSON rows or a text/csv body."))
        # Checked even when omitted: a client or staff user limited to other locations may not import
        # at the default one. Omitted stays None on the job, as before.
        job = import_job_create(content=content, fmt=fmt, actor=actor_label(request), reference=reference,
                                dry_run=dry_run, location=None if location is None else str(location),
                                client=request_location_scope(request))
        return Response(import_job_output(job), status=status.HTTP_202_ACCEPTED,
                        headers={"Location": f"/api/v1/stock/imports/{job.pk}"})


class StockImportDetailApi(APIView):
    """An import job: status (queued, running, succeeded, failed), rows done of total, result or bad lines."""

    required_scope = "manage"

    @extend_schema(parameters=[OpenApiParameter("page", int, description="page of bad lines, from 1"),
                               OpenApiParameter("page_size", int, description=f"bad lines per page, at most "
                                                                              f"{ERRORS_MAX_PAGE_SIZE}")],
                   responses={200: {"type": "object"}})
    def get(self, request, job_id: str):
        page = _positive(request, "page", 1)
        page_size = _positive(request, "page_size", ERRORS_PAGE_SIZE, ERRORS_MAX_PAGE_SIZE)
        job = import_job_get(job_id=job_id, client=request_location_scope(request))
        return Response(import_job_output(job, page=page, page_size=page_size))
