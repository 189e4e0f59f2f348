"""Migration operations shared by the apps whose tables gained a location."""
from django.conf import settings
from django.db import migrations


def location_column_add(table: str) -> migrations.RunPython:
    """Add ``location_id`` to a (possibly very large) table without rewriting it: PostgreSQL keeps a
    constant default in the catalogue, so every existing row reads the default location at once; the
    default is then dropped and the foreign key validated without blocking writes."""

    def forwards(apps, schema_editor):
        Location = apps.get_model("inventory", "Location")
        default_id = Location.objects.get(code=settings.DEFAULT_LOCATION_CODE).pk
        quote = schema_editor.quote_name
        statements = [
            f"ALTER TABLE {quote(table)} ADD COLUMN location_id bigint NOT NULL DEFAULT {int(default_id)}",
            f"ALTER TABLE {quote(table)} ALTER COLUMN location_id DROP DEFAULT",
            f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(table + '_location_fk')} FOREIGN KEY (location_id)"
            f" REFERENCES inventory_location (id) DEFERRABLE INITIALLY DEFERRED NOT VALID",
            f"ALTER TABLE {quote(table)} VALIDATE CONSTRAINT {quote(table + '_location_fk')}",
            f"CREATE INDEX {quote(table + '_location_idx')} ON {quote(table)} (location_id)",
        ]
        for statement in statements:
            schema_editor.execute(statement)

    def backwards(apps, schema_editor):
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} DROP COLUMN location_id")

    return migrations.RunPython(forwards, backwards)
