"""Monthly partitions of the ledger table (inventory_stockmovement): names, bounds and the idempotent DDL that adds them.

Plain SQL on a DB-API cursor, so the migration that partitions the table and the upkeep that adds the
coming months (``ledger_partitions_ensure`` in services, its command and beat task) share it. Months are
UTC calendar months: ``created_at`` is stored in UTC and a bound must not move with a time zone.
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

    Rows of that month already caught by the default partition move into the new one first: PostgreSQL
    refuses to attach a range the default partition holds rows of. The table is created standalone and
    attached, which builds its indexes and foreign keys from the parent's.
    """
    name = partition_name(month)
    if partition_exists(cursor, name):
        return False
    lower, upper = _bound(month), _bound(month_add(month, 1))
    cursor.execute(f'CREATE TABLE "{name}" (LIKE "{LEDGER_TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    if partition_exists(cursor, LEDGER_DEFAULT_PARTITION):
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{LEDGER_DEFAULT_PARTITION}" WHERE created_at >= {lower} '
            f'AND created_at < {upper} RETURNING *) INSERT INTO "{name}" SELECT * FROM moved')
    cursor.execute(f'ALTER TABLE "{LEDGER_TABLE}" ATTACH PARTITION "{name}" FOR VALUES FROM ({lower}) TO ({upper})')
    return True


def partitions_add(cursor, *, first: date, last: date) -> list[str]:
    """Partitions for every month from ``first``'s to ``last``'s; returns the names of those created."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITIONS_LOCK_KEY])
    return [partition_name(month) for month in months_between(first, last) if partition_add(cursor, month=month)]


def partitions_list(cursor) -> list[str]:
    """The ledger's partitions (the default one included), by name."""
    cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                   "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname", [LEDGER_TABLE])
    return [row[0] for row in cursor.fetchall()]
