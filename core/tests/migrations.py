"""Helpers for migration tests: move the test database to some migrations and back to the latest."""
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets):
    """Migrate to ``targets`` ([(app, migration)]) and return the apps registry as of them."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    """The newest migration of every app."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def default_location(apps):
    """The default location as the inventory migrations left it, in ``apps`` (a transactional test's flush
    may have removed the row since: put it back, as location_default_id would)."""
    location, _created = apps.get_model("inventory", "Location").objects.get_or_create(
        code=settings.DEFAULT_LOCATION_CODE, defaults={"name": settings.DEFAULT_LOCATION_NAME})
    return location
