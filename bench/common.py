"""Helpers shared by the benchmark scripts: run manage.py commands, recreate a bench database, empty its queues."""
import subprocess
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


# CELERY_TASK_QUEUES of config/settings/base.py, named here because bench-ws runs without Django set up.
CELERY_QUEUES = ("celery", "projections", "alerts", "orders")


def celery_queues_empty(redis_url: str) -> None:
    """Drop the tasks a bench left queued in its own Redis database: no worker of the bench takes them
    once it has stopped, and they would pile up run after run."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(*CELERY_QUEUES, "unacked", "unacked_index")
    finally:
        client.close()
