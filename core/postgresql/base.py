"""Django's PostgreSQL backend, with connections taken from the pool through the database circuit and the
first statement of a connection retried once when the connection died while it sat in the pool."""
from django.db import OperationalError
from django.db.backends.postgresql import base
from psycopg import IsolationLevel

from core.db import database_circuit, pool_connection
from core.errors import database_unreachable


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # True from the moment a connection leaves the pool until its first statement has run.
        self.first_statement_pending = False
        # First in the list, so innermost: wrappers added later (tests, query counts) see one execution.
        self.execute_wrappers.append(self._dead_connection_retry)

    def get_new_connection(self, conn_params):
        pool = self.pool
        if pool is None:
            return super().get_new_connection(conn_params)
        # As Django's own, but the pool is asked through pool_connection (no 10 s wait when PostgreSQL is down).
        options = self.settings_dict["OPTIONS"]
        set_isolation_level = "isolation_level" in options
        self.isolation_level = IsolationLevel.READ_COMMITTED
        if set_isolation_level:
            try:
                self.isolation_level = IsolationLevel(options["isolation_level"])
            except ValueError:
                return super().get_new_connection(conn_params)  # raises Django's ImproperlyConfigured
        pool.open()
        connection = pool_connection(pool)
        if set_isolation_level:
            connection.isolation_level = self.isolation_level
        self.first_statement_pending = True
        return connection

    def _dead_connection_retry(self, execute, sql, params, many, context):
        """Run the statement; if it is the first on a pooled connection and fails because that
        connection had died in the pool (PostgreSQL restarted, or an idle session was ended), run it
        once more on a new connection. Nothing had been sent on the dead one, so nothing is lost."""
        if not self.first_statement_pending:
            return execute(sql, params, many, context)
        self.first_statement_pending = False
        try:
            return execute(sql, params, many, context)
        except OperationalError as exc:
            if self.pool is None or self.connection is None or not self.connection.broken \
                    or not database_unreachable(exc):
                raise
        cursor = context["cursor"]
        with self.wrap_database_errors:
            self._connection_replace()
            cursor.cursor = self.create_cursor(getattr(cursor.cursor, "name", None))
        self.first_statement_pending = False
        return execute(sql, params, many, context)

    def _connection_replace(self) -> None:
        """Swap the dead connection for a live one in the same autocommit state; DatabaseDown if none can be had."""
        dead, self.connection = self.connection, None
        dead._pool.putconn(dead)  # the pool sees it broken and replaces it
        if not database_circuit.reachable(recent=False):
            raise database_circuit.down()
        # The pool's other idle connections likely died with this one: test them now, not one request each.
        self.pool.check()
        self.connection = self.get_new_connection(self.get_connection_params())
        self.connection.autocommit = self.autocommit
        self.errors_occurred = False
