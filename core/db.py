"""Database helpers: retrying a whole transaction on a deadlock or serialization failure, and reads bounded in time."""
import functools
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import psycopg.errors
from django.db import DatabaseError, connection, transaction

from core.errors import caused_by

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def atomic_with_retry(attempts: int = 4) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the function in its own transaction, retried on deadlock/serialization failure.

    Inside an outer transaction a retry is impossible (the outer one is already doomed),
    so there it runs once and lets the error go up to whoever owns the transaction.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if connection.in_atomic_block:
                with transaction.atomic():
                    return fn(*args, **kwargs)
            for attempt in range(1, attempts + 1):
                try:
                    with transaction.atomic():
                        return fn(*args, **kwargs)
                except DatabaseError as exc:
                    if attempt == attempts or not caused_by(exc, _RETRYABLE):
                        raise
                    logger.warning("transaction retried", extra={"function": fn.__qualname__, "attempt": attempt})
                    time.sleep(random.uniform(0.001, 0.01) * attempt)
            raise AssertionError("unreachable")

        return wrapper

    return decorate


class BoundedReader:
    """Runs reads on a thread of its own and waits at most ``seconds`` for each.

    With PostgreSQL unreachable, Django's pool holds a caller for its whole timeout (10 s), and the
    operational endpoints (/readyz, the pipelines' backlog on /metrics) must answer sooner than their
    scrapers and probes give up. One thread per reader: a read stuck on the database makes the next
    callers time out at once instead of piling up threads.
    """

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def read(self, fn: Callable[P, R], *args: P.args, seconds: float, **kwargs: P.kwargs) -> R:
        """``fn``'s result or its exception; TimeoutError when it has not answered within ``seconds``."""
        return self._executor.submit(self._run, fn, *args, **kwargs).result(timeout=seconds)

    @staticmethod
    def _run(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()  # this thread's connection, back to the pool
