"""A real Celery worker for tests (in a thread of the test process, on the real Redis broker) and queue helpers."""
from contextlib import contextmanager

from celery.contrib.testing.worker import start_worker

from config.celery_app import app as celery_app


def queues_purge() -> int:
    """Drop what is waiting on every queue the app knows; return how many messages that was.

    Not ``control.purge()``: that empties only the queues the last in-process worker was told to consume.
    """
    with celery_app.connection_for_write() as conn:
        return celery_app.amqp.TaskConsumer(conn, queues=list(celery_app.amqp.queues.values())).purge()


def queue_size(name: str) -> int:
    """Messages waiting on one queue (none of them taken by a worker)."""
    with celery_app.connection_for_write() as conn:
        # Declared as configured, not passively: the Redis transport calls an empty queue missing.
        return celery_app.amqp.queues[name].bind(conn.default_channel).queue_declare().message_count


@contextmanager
def running_worker(*queues: str):
    """A worker consuming these queues, as one of the Procfile's workers does; what the test's writes queue
    elsewhere waits unconsumed (purge it afterwards)."""
    celery_app.conf.task_always_eager = False
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10,
                          loglevel="WARNING", queues=list(queues)) as worker:
            yield worker
    finally:
        # `queues=` selects on the app itself; undo it so later tests and purges see every queue again.
        celery_app.amqp.queues.select(list(celery_app.amqp.queues))
