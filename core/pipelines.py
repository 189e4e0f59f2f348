"""Backlog of the outbox pipelines as /metrics reports it, from each app's reader of its waiting rows.

The readers are named by dotted path in PIPELINE_BACKLOG_READERS (pipeline → selector).

The figures come from PostgreSQL at scrape time, not from counters in the workers: the rows are the
pipelines' durable state, so the answer is the same whichever process takes the scrape, and a
worker that died or never started shows as a backlog that grows and gets later. The reads run on
one thread of their own within a budget (``METRICS_BACKLOG_SECONDS``): with PostgreSQL unreachable
the pool would hold a scrape for its whole timeout, and a scrape must answer anyway.
"""
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.db import BoundedReader

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backlog:
    """Rows of one pipeline not yet settled, and since when the oldest one that is due has been due."""

    waiting: int
    oldest_due_at: datetime | None


BacklogReader = Callable[..., Backlog]


def backlog_readers() -> dict[str, BacklogReader]:
    """PIPELINE_BACKLOG_READERS resolved: each pipeline's ``reader(now=...)``."""
    return {pipeline: import_string(path) for pipeline, path in settings.PIPELINE_BACKLOG_READERS.items()}


_bounded = BoundedReader("pipeline-backlog")


def _backlogs_read(now: datetime) -> dict[str, Backlog]:
    backlogs = {}
    for pipeline, reader in sorted(backlog_readers().items()):
        try:
            backlogs[pipeline] = reader(now=now)
        except Exception:
            # A scrape must still answer with what it has; /readyz reports the database itself.
            logger.exception("pipeline backlog could not be read", extra={"pipeline": pipeline})
    return backlogs


class PipelineBacklogCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        try:
            backlogs = _bounded.read(_backlogs_read, now, seconds=settings.METRICS_BACKLOG_SECONDS)
        except TimeoutError:
            logger.warning("pipeline backlog not read within %ss; left out of this scrape",
                           settings.METRICS_BACKLOG_SECONDS)
            return
        waiting = GaugeMetricFamily(
            "stockpulse_pipeline_waiting", "Rows of an outbox pipeline waiting to be delivered or processed",
            labels=["pipeline"])
        late = GaugeMetricFamily(
            "stockpulse_pipeline_oldest_due_seconds",
            "How long the oldest waiting row that is due has been due (0 when none is): grows when workers fall behind",
            labels=["pipeline"])
        for pipeline, backlog in backlogs.items():
            waiting.add_metric([pipeline], backlog.waiting)
            due_for = (now - backlog.oldest_due_at).total_seconds() if backlog.oldest_due_at else 0.0
            late.add_metric([pipeline], max(0.0, due_for))
        yield waiting
        yield late


BACKLOG_REGISTRY = CollectorRegistry()
BACKLOG_REGISTRY.register(PipelineBacklogCollector())
