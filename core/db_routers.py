"""Reads of a few read-only routes sent to a streaming replica (DATABASE_REPLICA_URL), with the primary as fallback."""
import contextvars

from django.conf import settings
from django.db import connections
from django.urls import Resolver404, resolve

from core.cache import RedisCircuit

REPLICA = "replica"
# Set for the length of one request that may read from the replica (ReplicaReadsMiddleware).
_replica_reads = contextvars.ContextVar("replica_reads", default=False)


# Whether the replica is known down in this process: marked by a request whose replica read failed, tried
# again by the first eligible request after DATABASE_REPLICA_RETRY_SECONDS, cleared when that one succeeds.
replica_circuit = RedisCircuit(probe_seconds=settings.DATABASE_REPLICA_RETRY_SECONDS, what="Read replica")


class ReplicaRouter:
    """Sends reads to the replica only inside a request the middleware marked, only for the apps whose data
    those routes show (DATABASE_REPLICA_APPS: stock and projections, not API clients, sessions or users,
    which must see a token or login the instant it is written), and never inside a transaction on the
    primary: a read there may be the check before a write, and must see the primary's rows."""

    def db_for_read(self, model, **hints):
        # "default" rather than no opinion: Django would otherwise read an object's relations from the database
        # the object came from, and one read from the replica may outlive its request (a cache, a task).
        if not _replica_reads.get() or model._meta.app_label not in settings.DATABASE_REPLICA_APPS:
            return "default"
        if connections["default"].in_atomic_block:
            return "default"
        return REPLICA

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        # The replica holds the primary's rows: an object read from either may point at one read from the other.
        return {obj1._state.db, obj2._state.db} <= {"default", REPLICA} or None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db != REPLICA  # a hot standby is read-only: it gets its schema by replication


class ReplicaReadsMiddleware:
    """Marks GET/HEAD requests of the routes named in DATABASE_REPLICA_ROUTES for the router.

    If the replica fails during such a request (down, restarted, refusing connections), the answer
    it gave is dropped and the request runs again on the primary: a GET writes nothing, so running
    it twice is safe; the replica is then skipped for DATABASE_REPLICA_RETRY_SECONDS.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in ("GET", "HEAD") or replica_circuit.is_down() or not _replica_route(request):
            return self.get_response(request)
        replica = connections[REPLICA]
        replica.errors_occurred = False  # set by Django on any connection or statement error on this alias
        token = _replica_reads.set(True)
        try:
            response = self.get_response(request)
        finally:
            _replica_reads.reset(token)
        if not replica.errors_occurred:
            replica_circuit.mark_up()
            return response
        replica_circuit.mark_down()
        replica.close()
        return self.get_response(request)


def _replica_route(request) -> bool:
    try:
        name = resolve(request.path_info).url_name
    except Resolver404:
        return False
    return name in settings.DATABASE_REPLICA_ROUTES
