"""Celery tasks of inventory: run one ERP import job (late ack, retried), the sweep that requeues lost jobs, and
the ledger's monthly partitions (the coming ones made, the closed ones rewritten in product order)."""
import logging

from celery import shared_task
from django.conf import settings

from core.errors import Unavailable

from inventory.import_jobs import import_job_give_up, import_job_run, import_jobs_requeue_stuck
from inventory.services import ledger_partitions_cluster, ledger_partitions_ensure

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             max_retries=settings.IMPORT_MAX_ATTEMPTS - 1)
def import_job_run_task(self, job_id: int) -> None:
    # Idempotent: a finished job, or one another worker is running, is left alone, and a run that
    # did not finish applied nothing.
    try:
        import_job_run(job_id=job_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            import_job_give_up(job_id=job_id, reason=f"{type(exc).__name__}: {exc}")
            return
        raise self.retry(exc=exc, countdown=min(5 * 2 ** self.request.retries, 300)) from exc


@shared_task(ignore_result=True)
def import_jobs_requeue_stuck_task() -> None:
    import_jobs_requeue_stuck()


@shared_task(ignore_result=True)
def ledger_partitions_ensure_task() -> None:
    # Idempotent: months that already have a partition are left as they are, months rewritten already too.
    ledger_partitions_ensure()
    if settings.LEDGER_PARTITION_CLUSTER_PER_RUN > 0:
        try:
            done = ledger_partitions_cluster(limit=settings.LEDGER_PARTITION_CLUSTER_PER_RUN)
        except Unavailable as exc:
            # The month is left as it was; the next run tries it again.
            logger.warning("ledger: a closed month was not rewritten", extra={"error": str(exc)})
        else:
            if done:
                logger.info("ledger: closed months rewritten in product order", extra={"partitions": done})
