"""Helpers shared by the benchmark scripts: run manage.py commands, recreate a bench database, empty its queues,
latency percentiles."""
import subprocess
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([str(ROOT / ".venv/bin/python"), "manage.py", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def database_recreate(url: str) -> None:
    """Drop (forcing out leftover sessions) and create the database named in ``url``."""
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentiles(values: Iterable[float], *shares: float) -> list[float | None]:
    """The values at these shares of ``values`` (0.5 the median, 0.99 the p99, 1 the maximum) by nearest
    rank, in the values' unit; None for each when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return [None] * len(shares)
    return [ordered[min(int(len(ordered) * share), len(ordered) - 1)] for share in shares]


def celery_queues_empty(redis_url: str) -> None:
    """Drop the tasks a bench left queued in its own Redis database: no worker of the bench takes them
    once it has stopped, and they would pile up run after run."""
    # Read from the settings module itself (bench-ws runs without Django set up), and only here: imported
    # when this module loads, it would fix the settings before a bench has set DATABASE_URL, and Django
    # would then reuse that module and its database.
    from config.settings.base import CELERY_TASK_QUEUES

    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(*(queue.name for queue in CELERY_TASK_QUEUES), "unacked", "unacked_index")
    finally:
        client.close()
