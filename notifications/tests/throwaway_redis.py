"""A redis-server of a test's own on a free port, and the Celery app pointed at it: outages caused for real,
without touching the shared Redis."""
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from config.celery_app import app as celery_app
from core.tests import outage


class ThrowawayRedis(outage.ThrowawayRedis):
    """core.tests.outage's throwaway Redis in a temporary directory of its own, which ``remove`` deletes."""

    def __init__(self):
        super().__init__(Path(tempfile.mkdtemp(prefix="redis-test-")))

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _pools_reset() -> None:
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def celery_broker(url: str):
    """This process's Celery app (producers and in-process workers) uses ``url`` as its broker meanwhile."""
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = url
    _pools_reset()
    try:
        yield
    finally:
        celery_app.conf.broker_url = previous
        _pools_reset()
