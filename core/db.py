"""Database helpers: retrying a whole transaction when PostgreSQL reports a deadlock or serialization failure."""
import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import psycopg.errors
from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def _is_retryable(exc: BaseException) -> bool:
    cause = exc
    while cause is not None:
        if isinstance(cause, _RETRYABLE):
            return True
        cause = cause.__cause__
    return False


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
                    if attempt == attempts or not _is_retryable(exc):
                        raise
                    logger.warning("transaction retried", extra={"function": fn.__qualname__, "attempt": attempt})
                    time.sleep(random.uniform(0.001, 0.01) * attempt)
            raise AssertionError("unreachable")

        return wrapper

    return decorate
