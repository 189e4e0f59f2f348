"""Real Celery worker processes for tests, run against the test database and the run's own Redis keys."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """``celery worker`` in its own process group, so SIGKILL takes the pool children down with it."""

    def __init__(self, *, broker: str | None = None, queues: str = "celery", concurrency: int = 2,
                 env: dict[str, str] | None = None):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="celery-test-", suffix=".log", delete=False)
        env = os.environ | {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": broker or settings.CELERY_BROKER_URL,
            "TEST_RUN_ID": settings.CACHES["default"]["KEY_PREFIX"].removeprefix("test-"),
            "DB_POOL_MAX_SIZE": "4",
        } | (env or {})
        cmd = [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "--pool=prefork",
               f"--concurrency={concurrency}", "-Q", queues, "--without-gossip", "--without-mingle",
               "--without-heartbeat", "--loglevel=WARNING"]
        self.process = subprocess.Popen(cmd, cwd=BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acks, no cleanup, like a machine losing power."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.1, worker: Worker | None = None):
    """Poll until ``predicate()`` is truthy; fail with the worker's log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time" + (f"; worker log:\n{worker.output()}" if worker else ""))
