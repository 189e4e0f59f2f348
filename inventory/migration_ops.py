"""Migration operations: a location column for the tables that gained one, the ledger rebuilt partitioned by month."""
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


def _ledger_rebuild(cursor, *, partitioned: bool, months_ahead: int = 0) -> None:
    """Rebuild the ledger table in place, partitioned by month or plain, in the caller's transaction.

    The old table is renamed, a new one made like it (columns, defaults, checks), its rows copied, and
    the old one dropped; then the primary key, every other index and foreign key the old table had are
    made again under their own names (``ledger_indexes_make``), and ``id`` numbering carries on from
    where it stood.
    """
    from inventory.partitions import (LEDGER_DEFAULT_PARTITION, LEDGER_TABLE, ledger_indexes, ledger_indexes_make,
                                      month_add, months_between, partition_add)

    table, old = LEDGER_TABLE, f"{LEDGER_TABLE}_before_rebuild"
    cursor.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    indexes = ledger_indexes(cursor, table=old)
    cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%s)"
                   " AND contype = 'f' ORDER BY conname", [old])
    foreign_keys = cursor.fetchall()
    cursor.execute(f"SELECT GREATEST((SELECT max(id) FROM \"{old}\"),"
                   f" (SELECT last_value FROM pg_sequences WHERE schemaname = current_schema()"
                   f" AND sequencename = %s AND last_value IS NOT NULL))",
                   [f"{table}_id_seq"])
    last_id = cursor.fetchone()[0]

    cursor.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
                   + (" PARTITION BY RANGE (created_at)" if partitioned else ""))
    # The copied default (if any) names the old table's sequence, dropped with it below.
    cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN id DROP DEFAULT')
    if partitioned:
        cursor.execute(f'CREATE TABLE "{LEDGER_DEFAULT_PARTITION}" PARTITION OF "{table}" DEFAULT')
        # A partition for every month that has rows and for the coming ones; a gap between them is
        # caught by the default partition until the upkeep gives its month a partition.
        cursor.execute(f"SELECT DISTINCT (date_trunc('month', created_at AT TIME ZONE 'UTC'))::date FROM \"{old}\"")
        months = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT (date_trunc('month', now() AT TIME ZONE 'UTC'))::date")
        this_month = cursor.fetchone()[0]
        months.update(months_between(this_month, month_add(this_month, months_ahead)))
        for month in sorted(months):
            partition_add(cursor, month=month)
    cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    cursor.execute(f'DROP TABLE "{old}"')

    ledger_indexes_make(cursor, indexes, partitioned=partitioned)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    if partitioned:
        # Identity columns on partitioned tables arrive with PostgreSQL 17: a sequence owned by the
        # column does the same job here (Django finds it through pg_get_serial_sequence).
        cursor.execute(f'CREATE SEQUENCE "{table}_id_seq" AS bigint OWNED BY "{table}".id')
        cursor.execute(f"ALTER TABLE \"{table}\" ALTER COLUMN id SET DEFAULT nextval('\"{table}_id_seq\"')")
    else:
        cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY')
    if last_id:
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, last_id])
    cursor.execute(f'ANALYZE "{table}"')


def ledger_partition_by_month(*, months_ahead: int) -> migrations.RunPython:
    """Move the ledger into a table range-partitioned by month on ``created_at`` (UTC months), with a
    default partition and partitions for every month that has rows and the ``months_ahead`` coming
    ones; backwards, into a plain table again. Both in the migration's one transaction."""

    def forwards(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            _ledger_rebuild(cursor, partitioned=True, months_ahead=months_ahead)

    def backwards(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            _ledger_rebuild(cursor, partitioned=False)

    return migrations.RunPython(forwards, backwards)
