"""Fixtures for the whole suite: API clients with scoped tokens, a staff user, the webhook endpoint cache and a fake receiver."""
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from core.tests.factories import ApiClientFactory
from webhooks.selectors import endpoints_cache_clear
from webhooks.tests.receiver import FakeReceiver

# The configured database, before pytest-django points the connection at the test database.
_DATABASE_NAME = settings.DATABASES["default"]["NAME"]


@pytest.fixture
def api_client_with_scopes(db):
    """Return a function that builds a DRF test client authenticated as a new API client with these scopes."""

    def build(*scopes: str) -> APIClient:
        client_record = ApiClientFactory(scopes=list(scopes))
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {client_record.raw_token}")
        http.api_client = client_record
        return http

    return build


@pytest.fixture
def reader(api_client_with_scopes) -> APIClient:
    return api_client_with_scopes("read")


@pytest.fixture
def manager(api_client_with_scopes) -> APIClient:
    return api_client_with_scopes("read", "manage")


@pytest.fixture
def reserver(api_client_with_scopes) -> APIClient:
    return api_client_with_scopes("read", "reserve")


@pytest.fixture
def staff_user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="staff", password="staff-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def staff_client(client, staff_user):
    """Django's test client signed in as ``staff_user`` (the admin's pages)."""
    client.force_login(staff_user)
    return client


@pytest.fixture(autouse=True)
def _endpoint_cache_clean():
    # The endpoint list is cached per process and outlives a test's rows.
    endpoints_cache_clear()
    yield
    endpoints_cache_clear()


@pytest.fixture(autouse=True)
def _circuits_taken_as_up():
    """The "known down" marks (core/cache.py, core/enqueue.py, core/db_routers.py) are process-wide: a test
    that made Redis, the broker or the read replica fail must not leave the next tests skipping them."""
    from core.cache import redis_circuit
    from core.db_routers import replica_circuit
    from core.enqueue import broker_circuit

    circuits = (redis_circuit, broker_circuit, replica_circuit)
    for circuit in circuits:
        circuit.mark_up()
    yield
    for circuit in circuits:
        circuit.mark_up()


_DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "live_server"}


@pytest.fixture(autouse=True)
def _default_location_present(request):
    """The default location's id is cached per process, and a transactional test's flush deletes the row.
    A test with database access gets it back before it runs, in its outermost transaction: put back
    later, inside a savepoint the test rolls back (each hypothesis example), the cached id would outlive
    the row it names."""
    from inventory.selectors import location_default_forget, location_default_id

    location_default_forget()
    if request.node.get_closest_marker("django_db") or _DB_FIXTURES & set(request.fixturenames):
        request.getfixturevalue("_django_db_helper")
        location_default_id()
    yield
    location_default_forget()


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that checks signatures with its ``secret``."""
    fake = FakeReceiver(secret="test-secret").start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session", autouse=True)
def _run_keys_removed():
    """Before and after the run, delete this run's Redis keys (cache, rate limits, channel layer, Celery
    queues: all under the run's prefix), so a run reusing a TEST_RUN_ID starts from nothing."""
    import redis

    prefix = settings.CACHES["default"]["KEY_PREFIX"]  # "test-<run>"; the others start with it too

    def remove():
        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(f"{prefix}[:.]*", count=1000):
            client.delete(key)
        client.close()

    remove()
    yield
    remove()


@pytest.fixture(scope="session", autouse=True)
def _release_test_database_connections(django_db_setup, django_db_blocker):
    """Before the test database is dropped, close our pools and end sessions left by servers and
    workers the tests started, so teardown never finds the database still in use."""
    yield
    import time

    import psycopg
    from django.db import connection, connections

    if connection.settings_dict["NAME"] == _DATABASE_NAME:
        return  # no test in this run needed the database, so none was created (never touch the real one)
    # A connection of its own rather than one from Django's pool, which may have closed already.
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "pool"):
        params.pop(key, None)
    with django_db_blocker.unblock():
        # Pools first: a pool whose connections were ended would open new ones to keep its minimum.
        for conn in connections.all(initialized_only=True):
            conn.close_pool()
        with psycopg.connect(**params, autocommit=True) as direct:
            others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            direct.execute(f"SELECT pg_terminate_backend(pid) {others}")
            # Ending a session is asynchronous: wait until they are gone, or DROP DATABASE may still see one.
            deadline = time.monotonic() + 10
            while direct.execute(f"SELECT count(*) {others}").fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.05)
