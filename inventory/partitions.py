"""Monthly partitions of the ledger table (inventory_stockmovement): names, bounds and the idempotent DDL that adds them.

Plain SQL on a DB-API cursor, so the migration that partitions the table, the upkeep that adds the
coming months (``ledger_partitions_ensure`` in services, its command and beat task) and bench-ledger's
bulk fill share it. Months are UTC calendar months: ``created_at`` is stored in UTC and a bound must not
move with a time zone.
"""
from datetime import date

LEDGER_TABLE = "inventory_stockmovement"
LEDGER_DEFAULT_PARTITION = f"{LEDGER_TABLE}_default"
# Taken (per transaction) by whoever adds partitions, so two runs never race on the same month.
PARTITIONS_LOCK_KEY = 7_401_117


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_add(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """Every month from ``first``'s to ``last``'s, both included."""
    months, month = [], month_start(first)
    while month <= month_start(last):
        months.append(month)
        month = month_add(month, 1)
    return months


def partition_name(month: date) -> str:
    return f"{LEDGER_TABLE}_y{month.year:04d}m{month.month:02d}"


def _bound(month: date) -> str:
    return f"'{month.isoformat()} 00:00:00+00'"


def partition_exists(cursor, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return cursor.fetchone()[0]


def partition_add(cursor, *, month: date) -> bool:
    """Give ``month`` its own partition unless it has one; False when it had.

    Rows of that month already caught by the default partition move into the new one first, with ledger
    writes held: PostgreSQL refuses to attach a range the default partition holds rows of. The table is created
    standalone and attached, which builds its indexes and foreign keys from the parent's. Call it in a
    transaction: the lock holds until it ends.
    """
    name = partition_name(month)
    if partition_exists(cursor, name):
        return False
    lower, upper = _bound(month), _bound(month_add(month, 1))
    cursor.execute(f'CREATE TABLE "{name}" (LIKE "{LEDGER_TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    if partition_exists(cursor, LEDGER_DEFAULT_PARTITION):
        # Held to the end of the caller's transaction: a row of the month inserted between the move and
        # the ATTACH would land in the default partition and make the ATTACH fail. Inserts (ROW EXCLUSIVE on
        # the ledger) wait instead, and then are routed to the new partition; reads go on. The move is
        # of the few rows that came before the month's partition, so the wait is short.
        cursor.execute(f'LOCK TABLE ONLY "{LEDGER_TABLE}" IN SHARE ROW EXCLUSIVE MODE')
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{LEDGER_DEFAULT_PARTITION}" WHERE created_at >= {lower} '
            f'AND created_at < {upper} RETURNING *) INSERT INTO "{name}" SELECT * FROM moved')
    cursor.execute(f'ALTER TABLE "{LEDGER_TABLE}" ATTACH PARTITION "{name}" FOR VALUES FROM ({lower}) TO ({upper})')
    return True


def partitions_add(cursor, *, first: date, last: date) -> list[str]:
    """Partitions for every month from ``first``'s to ``last``'s; returns the names of those created."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITIONS_LOCK_KEY])
    return [partition_name(month) for month in months_between(first, last) if partition_add(cursor, month=month)]


def ledger_indexes(cursor, *, table: str = LEDGER_TABLE) -> list[tuple[str, str]]:
    """(name, statement) of each index of ``table`` but its primary key's: the statement builds it again,
    under the same name, on the ledger table (and on every partition of it). ``table`` is the ledger, or
    the old ledger a rebuild renamed (inventory/migration_ops.py)."""
    cursor.execute("SELECT current_schema()")
    schema = cursor.fetchone()[0]
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s)"
        " AND contype = 'p') ORDER BY indexname", [table, table])
    indexes = []
    for name, definition in cursor.fetchall():
        # ON ONLY: the parent's index alone, as pg_indexes shows a partitioned table's.
        for on in (f" ON ONLY {schema}.{table} ", f" ON {schema}.{table} "):
            definition = definition.replace(on, f' ON "{LEDGER_TABLE}" ')
        indexes.append((name, definition))
    return indexes


def ledger_indexes_drop(cursor) -> list[tuple[str, str]]:
    """Drop the ledger's primary key and its other indexes (a bulk load runs faster without them);
    returns those indexes for ``ledger_indexes_make``."""
    indexes = ledger_indexes(cursor)
    for name, _statement in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    cursor.execute(f'ALTER TABLE "{LEDGER_TABLE}" DROP CONSTRAINT "{LEDGER_TABLE}_pkey"')
    return indexes


def ledger_indexes_make(cursor, indexes: list[tuple[str, str]], *, partitioned: bool = True) -> None:
    """The ledger's primary key, then ``indexes`` (from ``ledger_indexes``). PostgreSQL wants the partition
    key in a partitioned table's primary key, so it is (id, created_at) there and ``id`` stays unique
    through its sequence alone."""
    cursor.execute(f'ALTER TABLE "{LEDGER_TABLE}" ADD CONSTRAINT "{LEDGER_TABLE}_pkey" PRIMARY KEY '
                   + ("(id, created_at)" if partitioned else "(id)"))
    for _name, statement in indexes:
        cursor.execute(statement)


def partitions_list(cursor) -> list[str]:
    """The ledger's partitions (the default one included), by name."""
    return [name for name, _rows in partitions_estimated_rows(cursor)]


def partitions_estimated_rows(cursor) -> list[tuple[str, int | None]]:
    """(name, rows) of the ledger's partitions by name, rows as the planner last estimated them
    (pg_class.reltuples, kept by ANALYZE and autovacuum), None for a partition never analysed: a count(*)
    of each would read the whole ledger."""
    cursor.execute("SELECT c.relname, c.reltuples FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                   "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname", [LEDGER_TABLE])
    return [(name, None if rows < 0 else round(rows)) for name, rows in cursor.fetchall()]
