"""Read replica (DATABASE_REPLICA_URL): the stock and projection GETs read a hot standby, everything else the
primary; a write is read back from the replica once replayed; with the replica down the same routes answer from
the primary. The served tests run a throwaway primary and a standby made from it with pg_basebackup."""
import contextlib
import glob
from dataclasses import dataclass

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import transaction

from core.db_routers import REPLICA, ReplicaRouter, _replica_reads
from core.models import ApiClient
from core.tests.outage import private_database
from core.tests.pg_cluster import PrivateCluster
from core.tests.polling import wait_for
from core.tests.test_serve_script import Served, serving
from inventory.models import Stock
from projections.models import ProjectionSummary

CODE = "REP-1"
SEED = """
import json
from core.tests.factories import ApiClientFactory
from inventory.tests.factories import ProductFactory
ProductFactory(code="REP-1", on_hand=10)
print(json.dumps({"token": ApiClientFactory(scopes=["read", "manage"]).raw_token}))
"""


@contextlib.contextmanager
def _reads_marked():
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def test_without_a_replica_url_there_is_no_router_no_alias_and_no_middleware():
    # The test run, like `make run`, sets no DATABASE_REPLICA_URL.
    assert settings.DATABASE_REPLICA_URL == ""
    assert settings.DATABASE_ROUTERS == []
    assert set(settings.DATABASES) == {"default"}
    assert "core.db_routers.ReplicaReadsMiddleware" not in settings.MIDDLEWARE


def test_outside_a_marked_request_every_read_goes_to_the_primary():
    assert ReplicaRouter().db_for_read(Stock) == "default"


def test_in_a_marked_request_stock_and_projection_reads_go_to_the_replica():
    with _reads_marked():
        assert ReplicaRouter().db_for_read(Stock) == REPLICA
        assert ReplicaRouter().db_for_read(ProjectionSummary) == REPLICA


def test_a_replica_object_outside_a_marked_request_has_its_relations_read_from_the_primary():
    from_replica = Stock()
    from_replica._state.db = REPLICA

    assert ReplicaRouter().db_for_read(Stock, instance=from_replica) == "default"


def test_api_clients_are_read_from_the_primary_even_in_a_marked_request():
    # A token must work the instant it is created, whatever the replica's lag.
    with _reads_marked():
        assert ReplicaRouter().db_for_read(ApiClient) == "default"


@pytest.mark.django_db(transaction=True)  # not the test's own transaction: outside one first, then inside
def test_a_read_inside_a_transaction_goes_to_the_primary():
    with _reads_marked():
        assert ReplicaRouter().db_for_read(Stock) == REPLICA
        with transaction.atomic():
            assert ReplicaRouter().db_for_read(Stock) == "default"


def test_writes_and_migrations_never_go_to_the_replica():
    router = ReplicaRouter()
    with _reads_marked():
        assert router.db_for_write(Stock) == "default"
    assert router.allow_migrate(REPLICA, "inventory") is False
    assert router.allow_migrate("default", "inventory") is True


class StandbyCluster(PrivateCluster):
    """A hot standby of ``primary``: a base backup with the recovery settings (-R), streaming from it."""

    def from_base_backup(self, primary: PrivateCluster) -> "StandbyCluster":
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D", str(self.data),
                  "-R", "-X", "stream", "-c", "fast", timeout=120)
        return self


@dataclass
class Replicated:
    primary: PrivateCluster
    standby: StandbyCluster
    served: Served
    token: str

    def get(self, path: str) -> requests.Response:
        return requests.get(self.served.url + path, timeout=30, headers={"Authorization": f"Bearer {self.token}"})

    def on_hand_via_replica_route(self) -> int:
        response = self.get(f"/api/v1/stock/{CODE}/")
        assert response.status_code == 200, response.text
        return response.json()["on_hand"]

    def on_hand_via_primary_route(self) -> int:
        # The resync snapshot stays on the primary (config/settings/base.py, DATABASE_REPLICA_ROUTES).
        response = self.get(f"/api/v1/stock/snapshot?codes={CODE}")
        assert response.status_code == 200, response.text
        return response.json()["items"][0]["on_hand"]

    def receive(self, quantity: int) -> None:
        response = requests.post(f"{self.served.url}/api/v1/stock/{CODE}/movements", timeout=30,
                                 json={"kind": "receipt", "quantity": quantity},
                                 headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 201, response.text

    def standby_caught_up(self) -> bool:
        """Whether the standby has replayed everything the primary had written when asked."""
        with psycopg.connect(self.primary.url("stockpulse"), autocommit=True) as conn:
            written = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        try:
            return self.standby_sql(f"SELECT pg_last_wal_replay_lsn() >= '{written}'::pg_lsn")
        except psycopg.OperationalError:  # still starting
            return False

    def standby_sql(self, sql: str):
        with psycopg.connect(self.standby.url("stockpulse"), autocommit=True) as conn:
            return conn.execute(sql).fetchone()[0]


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_basebackup"):
        pytest.skip("no PostgreSQL server binaries (pg_basebackup) under /usr/lib/postgresql/*/bin")
    with private_database("replica", SEED) as database:
        standby = StandbyCluster()
        try:
            standby.from_base_backup(database.cluster).start()
            with serving(tmp_path_factory.mktemp("replica"), workers=1, DATABASE_URL=database.url,
                         DATABASE_REPLICA_URL=standby.url("stockpulse"), DATABASE_REPLICA_RETRY_SECONDS="1",
                         TEST_RUN_ID=database.run) as served:
                yield Replicated(database.cluster, standby, served, database.seeded["token"])
        finally:
            standby.destroy()


@pytest.mark.slow
def test_the_standby_replays_the_primary_and_refuses_writes(replicated):
    assert replicated.standby_sql("SELECT pg_is_in_recovery()") is True
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        replicated.standby_sql("CREATE TABLE nope (id int)")


@pytest.mark.slow
def test_the_stock_route_reads_the_replica_and_shows_a_write_once_it_is_replayed(replicated):
    before = replicated.on_hand_via_replica_route()
    assert replicated.on_hand_via_primary_route() == before
    replicated.standby_sql("SELECT pg_wal_replay_pause()")
    try:
        wait_for(lambda: replicated.standby_sql("SELECT pg_get_wal_replay_pause_state()") == "paused",
                 "the standby did not pause its replay")

        replicated.receive(5)  # a write: on the primary

        # The primary has it; the replica route still shows the standby's rows, paused before the write.
        assert replicated.on_hand_via_primary_route() == before + 5
        assert replicated.on_hand_via_replica_route() == before
    finally:
        replicated.standby_sql("SELECT pg_wal_replay_resume()")
    wait_for(lambda: replicated.on_hand_via_replica_route() == before + 5, "the replica route never showed the write")


@pytest.mark.slow
def test_with_the_replica_stopped_the_route_answers_from_the_primary(replicated):
    before = replicated.on_hand_via_replica_route()
    replicated.standby.stop()
    try:
        replicated.receive(2)

        # The first request meets the dead replica and is run again on the primary; the next skip the replica.
        assert replicated.on_hand_via_replica_route() == before + 2
        assert replicated.on_hand_via_replica_route() == before + 2
        assert replicated.get("/api/v1/locations").status_code == 200
    finally:
        replicated.standby.start()
    # Back: the route reads the replica again once its retry period is over (a paused replay shows it).
    wait_for(lambda: replicated.standby_caught_up(), "the standby did not catch up after its restart")
    replicated.standby_sql("SELECT pg_wal_replay_pause()")
    try:
        wait_for(lambda: replicated.standby_sql("SELECT pg_get_wal_replay_pause_state()") == "paused",
                 "the standby did not pause its replay")
        replicated.receive(1)
        wait_for(lambda: replicated.on_hand_via_replica_route() == before + 2,
                 "the route did not go back to the replica")
        assert replicated.on_hand_via_primary_route() == before + 3
    finally:
        replicated.standby_sql("SELECT pg_wal_replay_resume()")
