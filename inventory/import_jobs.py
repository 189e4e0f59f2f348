"""ERP import jobs: create one, run it once (all rows or none) with its progress readable meanwhile, requeue lost ones.

A job's durable state is its PostgreSQL row. The run holds a transaction-level advisory lock on the
job for as long as its import transaction is open, so a second task for the same job steps aside and
a worker that dies releases it with its connection; the outcome (succeeded or failed) is written in
the import's own transaction, so a job is applied exactly once however often its task runs.
"""
import logging
import time
from collections.abc import Callable
from functools import partial
from datetime import timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import DomainError, ValidationFailed
from inventory.importing import ImportInvalid, rows_parse, stock_import
from inventory.selectors import client_locations_check, location_default, location_resolve
from inventory.models import ImportJob, ImportStatus

logger = logging.getLogger(__name__)

# First key of the two-key advisory lock a running job holds (the second is the job id).
_LOCK_CLASS = 0x1A0B
# Progress is written at most this often (and at every change of phase).
PROGRESS_EVERY_SECONDS = 0.5
FORMATS = ("csv", "json")

OnProgress = Callable[[str, int, int], None]


def import_job_create(*, content: bytes, fmt: str, actor: str = "", reference: str = "",
                      dry_run: bool = False, queue: bool = True, location: str | None = None,
                      client=None) -> ImportJob:
    """Check that the file can be read as rows (not its rows: the job does that), store it and queue the job.

    A file that cannot be read at all (not UTF-8, no ``code`` column, too many rows…) raises
    ValidationFailed here, so callers answer 400 rather than create a job bound to fail.
    ``queue=False``: the caller runs the job itself (the command); the sweep still covers it.
    ``client`` (an API client or staff user, when given) must be allowed to use the location, the
    default one when none is named (the job then names none, as before).
    """
    place = location_resolve(code=location) if location else None
    if client is not None:
        client_locations_check(client=client, locations=[place or location_default()])
    if fmt not in FORMATS:
        raise ValidationFailed(_("The format is csv or json."), details={"format": fmt})
    if not isinstance(reference, str) or len(reference) > 128:
        raise ValidationFailed(_("reference is text of at most 128 characters."), details={"reference": "invalid"})
    rows = rows_parse(content=content, fmt=fmt)
    with transaction.atomic():
        job = ImportJob.objects.create(content=content, fmt=fmt, actor=actor[:150], reference=reference,
                                       dry_run=dry_run, rows_total=len(rows), location=place)
        if queue:
            transaction.on_commit(partial(_task_send, job.pk))
    return job


def _task_send(job_id: int) -> None:
    from inventory.tasks import import_job_run_task

    try:
        import_job_run_task.delay(job_id)
    except Exception:
        # The row is durable: the beat sweep queues it again.
        logger.exception("import task could not be queued", extra={"job_id": job_id})


def _job_lock_try(job_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, job_id])
        return cursor.fetchone()[0]


class _ProgressWriter:
    """Writes a job's progress on a connection of its own, in autocommit, so other sessions read it
    while the import's transaction is still open. Progress is advice: a failure here is logged only."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.conn: psycopg.Connection | None = None
        self.last_phase = ""
        self.last_at = 0.0

    def __enter__(self) -> "_ProgressWriter":
        params = connection.get_connection_params()
        for key in ("cursor_factory", "context", "pool"):
            params.pop(key, None)
        try:
            self.conn = psycopg.connect(**params, autocommit=True)
            # Never wait on the job row: the import's own transaction writes it only once this closes.
            self.conn.execute("SET lock_timeout = '1s'")
        except psycopg.Error:
            logger.warning("import progress will not be shown: no connection", exc_info=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()

    def _write(self, sql: str, params: list[Any]) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute(sql, params)
        except psycopg.Error:
            logger.warning("import progress not written", extra={"job_id": self.job_id}, exc_info=True)

    def started(self) -> None:
        self._write(f"UPDATE {ImportJob._meta.db_table} SET status = %s, phase = 'parsing', rows_done = 0, "
                    "attempts = attempts + 1, started_at = coalesce(started_at, now()), updated_at = now() "
                    "WHERE id = %s", [ImportStatus.RUNNING, self.job_id])

    def progress(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase == self.last_phase and now - self.last_at < PROGRESS_EVERY_SECONDS and done < total:
            return
        self.last_phase, self.last_at = phase, now
        self._write(f"UPDATE {ImportJob._meta.db_table} SET phase = %s, rows_done = %s, rows_total = %s, "
                    "updated_at = now() WHERE id = %s", [phase, done, total, self.job_id])


def import_job_run(*, job_id: int, on_progress: OnProgress | None = None) -> ImportJob | None:
    """Run the job unless it has ended or another process is running it; return it as it is then.

    Rows are checked and applied in one transaction, which also marks the job succeeded. Bad rows or
    an unreadable file mark it failed with every bad line. Any other error (the database went away…)
    leaves the job running with nothing applied, and goes up to the caller: the task retries it.
    """
    try:
        with transaction.atomic():
            if not _job_lock_try(job_id):
                return None
            job = ImportJob.objects.filter(pk=job_id).first()
            if job is None or job.finished:
                return job
            started = timezone.now()
            with _ProgressWriter(job_id) as writer:
                writer.started()

                def progress(phase: str, done: int, total: int) -> None:
                    writer.progress(phase, done, total)
                    if on_progress:
                        on_progress(phase, done, total)

                result = stock_import(content=bytes(job.content), fmt=job.fmt, actor=job.actor,
                                      reference=job.reference, dry_run=job.dry_run, progress=progress,
                                      location=job.location.code if job.location else None)
            ImportJob.objects.filter(pk=job_id).update(
                status=ImportStatus.SUCCEEDED, phase="done", rows_done=result.rows, rows_total=result.rows,
                result=result.summary(), content=b"", started_at=Coalesce("started_at", Value(started)),
                finished_at=timezone.now(), updated_at=timezone.now())
    except DomainError as exc:
        _job_fail(job_id, exc)
    return ImportJob.objects.filter(pk=job_id).first()


def _job_fail(job_id: int, exc: DomainError) -> None:
    """Mark the job failed with the error's code and message and, for bad rows, every bad line."""
    errors = exc.errors if isinstance(exc, ImportInvalid) else []
    details = {k: v for k, v in exc.details.items() if k != "errors"}
    now = timezone.now()
    ImportJob.objects.filter(pk=job_id).exclude(status__in=[ImportStatus.SUCCEEDED, ImportStatus.FAILED]).update(
        status=ImportStatus.FAILED, phase="done", errors=errors, error_count=len({e["line"] for e in errors}),
        failure={"code": exc.code, "message": exc.message, "details": details}, content=b"",
        finished_at=now, updated_at=now)


class ImportCouldNotRun(DomainError):
    code = "import_error"
    default_message = "The import could not run."


def import_job_give_up(*, job_id: int, reason: str) -> None:
    """After the last try: the job failed for a reason that is not in its rows (nothing was applied)."""
    _job_fail(job_id, ImportCouldNotRun(f"The import could not run: {reason}"[:500]))


def import_jobs_requeue_stuck(*, older_than: timedelta | None = None) -> list[int]:
    """Queue again every job still queued or running after ``older_than`` whose run holds no lock
    (its task was lost, or its worker died: nothing of it was applied). A job that has used all
    its attempts is marked failed instead. Returns the ids queued."""
    older_than = timedelta(seconds=settings.IMPORT_REQUEUE_AFTER_SECONDS) if older_than is None else older_than
    queued = []
    stale = ImportJob.objects.filter(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING],
                                     updated_at__lte=timezone.now() - older_than).values_list("pk", "attempts")
    for job_id, attempts in list(stale):
        with transaction.atomic():
            if not _job_lock_try(job_id):
                continue  # running now
            if attempts >= settings.IMPORT_MAX_ATTEMPTS:
                import_job_give_up(job_id=job_id, reason=f"{attempts} attempts, none finished")
                continue
            touched = ImportJob.objects.filter(pk=job_id, status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]) \
                .update(updated_at=timezone.now())
            if touched:
                queued.append(job_id)
                transaction.on_commit(partial(_task_send, job_id))
    if queued:
        logger.warning("import jobs queued again", extra={"jobs": queued})
    return queued


def job_progress(job: ImportJob) -> float:
    """0..1 across the phases: reading and checking the rows is the first fifth, applying them the rest."""
    if job.status == ImportStatus.SUCCEEDED:
        return 1.0
    total = job.rows_total or 0
    if not total:
        return 0.0
    share = min(job.rows_done / total, 1.0)
    if job.phase == "applying":
        return round(0.2 + 0.8 * share, 4)
    if job.phase == "validating":
        return round(0.2 * share, 4)
    return 0.0

