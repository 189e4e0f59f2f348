"""Database helpers: retrying a whole transaction on a deadlock or serialization failure, reads bounded in
time, reads planned once per connection, and the process's circuit that answers at once while PostgreSQL is down."""
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import psycopg
import psycopg.errors
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.backends.postgresql.base import ServerBindingCursor
from psycopg_pool import ConnectionPool, PoolTimeout

from core.errors import DatabaseDown, caused_by

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


@contextmanager
def statements_prepared(using: str = "default") -> Iterator[None]:
    """Within the block, the queries on ``using``'s connection are bound server-side and prepared on first
    use: each distinct statement is planned once per pooled connection, then only executed.

    For reads whose planning outweighs their work: the ledger's, planned over every monthly partition
    (docs/ledger-partitioning.md). Django sends everything else with client-side binding and no prepared
    statements, as a transaction-mode pooler (PgBouncer before 1.21) needs; with such a pooler in front,
    set ``DATABASE_PREPARED_READS=false``.
    """
    if not settings.DATABASE_PREPARED_READS:
        yield
        return
    wrapper = connections[using]
    wrapper.ensure_connection()
    raw = wrapper.connection
    factory, threshold = raw.cursor_factory, raw.prepare_threshold
    raw.cursor_factory, raw.prepare_threshold = ServerBindingCursor, 0
    try:
        yield
    finally:
        # Back to Django's binding for whatever else this connection runs, in this request or the
        # next one the pool gives it to; the prepared statements stay with the session for next time.
        raw.cursor_factory, raw.prepare_threshold = factory, threshold


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


def connect_params(alias: str = "default") -> dict[str, Any]:
    """Keyword arguments for psycopg.connect to this Django database, as its pool connects."""
    params = connections[alias].get_connection_params()
    for key in ("cursor_factory", "context", "pool"):
        params.pop(key, None)
    return params


def _connect_once() -> None:
    with psycopg.connect(**{**connect_params(), "connect_timeout": 2, "autocommit": True}):
        pass


class DatabaseCircuit:
    """Whether PostgreSQL is known down, for the whole process.

    Opened by a connection that failed (a request found the pool empty and PostgreSQL refused a
    connection, or its connection died and PostgreSQL refused the next). While open, every request
    that needs the database is refused at once (``check`` raises DatabaseDown) instead of waiting on
    the pool. Once ``DB_DOWN_RETRY_SECONDS`` have passed, the next caller probes with one direct
    connection of its own (within ``DB_PROBE_SECONDS``; callers meanwhile are refused): if it
    connects, the circuit closes and requests go to the pool again, else it stays open for another
    period. A probe that gets no answer in time refuses its caller but does not open the circuit: a
    slow PostgreSQL is not a down one. Closed, the check is one attribute read.
    """

    def __init__(self, connect: Callable[[], None] = _connect_once) -> None:
        self._connect = connect  # opens and closes one connection, or raises
        self._down_until = 0.0  # monotonic time of the next probe; 0.0 when closed
        self._up_until = 0.0  # a probe succeeded: callers that ask before this take its answer
        self._reason = ""  # the last refused probe's error, first line
        self._answer = True  # the last probe's answer, for the callers that waited on it
        self._probing = threading.Lock()
        self._prober = BoundedReader("database-probe")

    def is_open(self) -> bool:
        """Known down (the last probe failed, whether or not a new one is due); never probes, never waits."""
        return self._down_until != 0.0

    def check(self) -> None:
        """Return when PostgreSQL is not known down; raise DatabaseDown when it is (probing first when due,
        unless another caller is probing right now)."""
        until = self._down_until
        if until == 0.0:
            return
        if time.monotonic() < until or not self._probing.acquire(blocking=False):
            raise self.down()
        try:
            if not self._probe():
                raise self.down()
        finally:
            self._probing.release()

    def down(self) -> DatabaseDown:
        """The error to raise while down, with the reason the last probe was refused (logs, /readyz)."""
        return DatabaseDown(f"PostgreSQL is unreachable: {self._reason}" if self._reason else None)

    def reachable(self, *, recent: bool = True) -> bool:
        """Whether PostgreSQL accepts a connection now. Probes, or takes the answer of the probe running,
        of one refused this period, or with ``recent`` of one that succeeded within
        ``DB_DOWN_CHECK_SECONDS`` (callers whose wait on a busy pool ran out together ask once). Opens
        or closes the circuit by the answer."""
        now = time.monotonic()
        if now < self._down_until:
            return False  # refused by a probe this period: no new one before it is over
        if recent and now < self._up_until:
            return True
        if not self._probing.acquire(blocking=False):
            with self._probing:  # bounded: a probe gives up after DB_PROBE_SECONDS
                return self._answer
        try:
            return self._probe()
        finally:
            self._probing.release()

    def _probe(self) -> bool:
        """One probe (the caller holds ``_probing``); its answer is also left in ``_answer``."""
        try:
            self._prober.read(self._connect, seconds=settings.DB_PROBE_SECONDS)
        except TimeoutError:
            # No answer in time: this caller is refused, but a slow PostgreSQL (a loaded host) is not
            # a down one, so the circuit does not open on it; it stays open if it was.
            self._reason = f"no answer within {settings.DB_PROBE_SECONDS:g} s"
            logger.warning("PostgreSQL did not answer a probe in time", extra={"error": self._reason})
            if self.is_open():
                self._down_until = time.monotonic() + settings.DB_DOWN_RETRY_SECONDS
            self._answer = False
            return False
        except Exception as exc:  # refused, shut down, starting up: unreachable now
            self._reason = (str(exc) or type(exc).__name__).splitlines()[0]
            if not self.is_open():
                logger.error("PostgreSQL unreachable: refusing database requests", extra={"error": self._reason})
            self._up_until = 0.0
            self._down_until = time.monotonic() + settings.DB_DOWN_RETRY_SECONDS
            self._answer = False
            return False
        if self.is_open():
            logger.warning("PostgreSQL reachable again")
        self._down_until = 0.0
        self._up_until = time.monotonic() + settings.DB_DOWN_CHECK_SECONDS
        self._answer = True
        return True


database_circuit = DatabaseCircuit()


def pool_connection(pool: ConnectionPool, circuit: DatabaseCircuit = database_circuit) -> psycopg.Connection:
    """A connection from Django's pool, or DatabaseDown without waiting when PostgreSQL is down.

    The pool alone would hold the caller for its whole timeout (10 s) while it fails to connect. So
    the wait is cut after ``DB_DOWN_CHECK_SECONDS``: if PostgreSQL refuses a connection then, the
    answer is DatabaseDown now; if it accepts, the pool is merely busy and the caller waits the rest
    of the pool's timeout, after which PoolTimeout says overload.
    """
    circuit.check()
    started = time.monotonic()
    wait = pool.timeout
    try:
        return pool.getconn(timeout=min(settings.DB_DOWN_CHECK_SECONDS, wait))
    except PoolTimeout:
        if not circuit.reachable():
            raise circuit.down() from None
    return pool.getconn(timeout=max(wait - (time.monotonic() - started), 0.001))
