"""Tests for the database backend: the first statement on a pooled connection that died while idle runs again
on a live one (in a request, in a transaction); a connection that dies later is not retried."""
import psycopg
import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import F

from core.db import connect_params
from core.errors import caused_by
from inventory.models import Stock
from inventory.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _idle_pooled_sessions_ended() -> int:
    """Put this thread's connection back in the pool, then end the session of every idle connection
    there (as a PostgreSQL restart ends them) from a connection of its own; the number ended."""
    connection.ensure_connection()
    connection.close()
    pool, idle = connection.pool, []
    while pool.get_stats()["pool_available"]:
        idle.append(pool.getconn(timeout=1))
    pids = [conn.info.backend_pid for conn in idle]
    for conn in idle:
        pool.putconn(conn)
    with psycopg.connect(**connect_params(), autocommit=True) as direct:
        direct.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
    return len(pids)


def test_a_request_on_a_pooled_connection_that_died_while_idle_is_answered(reader):
    ProductFactory(code="DEAD-1", on_hand=3)
    assert _idle_pooled_sessions_ended() >= 1

    response = reader.get("/api/v1/stock/DEAD-1/")

    assert response.status_code == 200
    assert response.json()["on_hand"] == 3


def test_a_transaction_whose_pooled_connection_died_while_idle_commits_on_a_live_one():
    stock = ProductFactory(code="DEAD-2", on_hand=3).stocks.get()
    assert _idle_pooled_sessions_ended() >= 1

    with transaction.atomic():
        Stock.objects.filter(pk=stock.pk).update(on_hand=F("on_hand") + 1)

    stock.refresh_from_db()
    assert stock.on_hand == 4


def test_a_connection_that_dies_after_its_first_statement_is_not_retried():
    ProductFactory(code="DEAD-3")
    with pytest.raises(OperationalError) as raised, transaction.atomic():
        assert Stock.objects.count() == 1
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            own = cursor.fetchone()[0]
        with psycopg.connect(**connect_params(), autocommit=True) as direct:
            direct.execute("SELECT pg_terminate_backend(%s)", [own])

        # Half a transaction ran on the dead session: running the rest elsewhere would be wrong.
        Stock.objects.count()

    assert caused_by(raised.value, psycopg.errors.AdminShutdown)
