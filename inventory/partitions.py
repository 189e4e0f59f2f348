"""Monthly partitions of the ledger table (inventory_stockmovement): names, bounds, the idempotent DDL that adds
them, and the rewrite of a closed month in (product, location) order.

Plain SQL on a DB-API cursor, so the migration that partitions the table, the upkeep that adds the
coming months (``ledger_partitions_ensure`` in services, its command and beat task) and bench-ledger's
bulk fill share it. Months are UTC calendar months: ``created_at`` is stored in UTC and a bound must not
move with a time zone.
"""
import re
import time
from datetime import date, datetime, timezone
from typing import NamedTuple

import psycopg

from core.errors import caused_by

LEDGER_TABLE = "inventory_stockmovement"
LEDGER_DEFAULT_PARTITION = f"{LEDGER_TABLE}_default"
# Taken (per transaction) by whoever adds partitions, so two runs never race on the same month.
PARTITIONS_LOCK_KEY = 7_401_117


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_add(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_start_utc(month: date) -> datetime:
    """The instant a month's partition starts: partitions are bounded by months in UTC (``_bound``)."""
    return datetime(month.year, month.month, 1, tzinfo=timezone.utc)


def months_between(first: date, last: date) -> list[date]:
    """Every month from ``first``'s to ``last``'s, both included."""
    months, month = [], month_start(first)
    while month <= month_start(last):
        months.append(month)
        month = month_add(month, 1)
    return months


def partition_name(month: date) -> str:
    return f"{LEDGER_TABLE}_y{month.year:04d}m{month.month:02d}"


def partition_month(name: str) -> date | None:
    """The month a partition named by ``partition_name`` holds; None for any other name (the default one)."""
    match = re.fullmatch(rf"{LEDGER_TABLE}_y(\d{{4}})m(\d{{2}})", name)
    return date(int(match[1]), int(match[2]), 1) if match else None


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
    return [partition.name for partition in partitions_described(cursor)]


class PartitionDescription(NamedTuple):
    name: str
    estimated_rows: int | None
    clustered: bool


def partitions_described(cursor) -> list[PartitionDescription]:
    """The ledger's partitions by name, in one query: rows as the planner last estimated them
    (pg_class.reltuples, kept by ANALYZE and autovacuum; None for a partition never analysed, since a
    count(*) of each would read the whole ledger), and whether the month was rewritten in product order."""
    cursor.execute("SELECT c.relname, c.reltuples, obj_description(c.oid, 'pg_class') = %s FROM pg_inherits i "
                   "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname",
                   [CLUSTERED_COMMENT, LEDGER_TABLE])
    return [PartitionDescription(name, None if rows < 0 else round(rows), bool(clustered))
            for name, rows, clustered in cursor.fetchall()]


# A closed month rewritten in this order (see ``partition_cluster``) says so in its table comment, so a
# second run leaves it alone.
CLUSTERED_COMMENT = "clustered by (product_id, location_id, id)"
# The swap waits at most this long for the ledger's lock per attempt, so the reads and writes queued
# behind it wait at most that long too; then it lets them through and tries again.
SWAP_LOCK_TIMEOUT_MS = 1000
SWAP_ATTEMPTS = 30
# lock_timeout ran out, or a deadlock: the swap tries again.
_SWAP_RETRYABLE = (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected)


class PartitionSwapBusy(Exception):
    """The ledger stayed too busy for the swap's short lock; nothing changed."""


def partition_clustered(cursor, name: str) -> bool:
    cursor.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [name])
    row = cursor.fetchone()
    return bool(row) and row[0] == CLUSTERED_COMMENT


def _child_index_names(cursor, partition: str) -> dict[int, str]:
    """{oid of a ledger index: name of its index on ``partition``}."""
    cursor.execute("SELECT i.inhparent::bigint, c.relname FROM pg_index x JOIN pg_inherits i ON i.inhrelid = x.indexrelid"
                   " JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = to_regclass(%s)", [partition])
    return dict(cursor.fetchall())


def partition_cluster(cursor, *, month: date, swap_lock_timeout_ms: int | None = None,
                      swap_attempts: int | None = None, retry_pause: float = 0.2) -> bool:
    """Rewrite ``month``'s partition with its rows ordered by (product_id, location_id, id); False when
    the month has no partition or was clustered already. Call it in a transaction, for closed months.

    A pair's rows of a month then sit on one or two heap pages instead of one page per row, so a
    movements page read cold reads a few pages instead of about fifty. ``CLUSTER`` would lock the
    month against reads for the whole rewrite, and every per-product read touches every month; so the
    rows are copied beside it into a new table (with the month's writes held by a SHARE lock, reads going
    on), which gets the ledger's primary key, indexes and validated foreign keys and a CHECK of the
    month's bounds. Then, in a short step, the old partition is detached and the new one attached: its
    indexes and keys are adopted as they are and the CHECK spares the scan, so the ledger's exclusive
    lock lasts milliseconds. That step waits ``swap_lock_timeout_ms`` at most for the lock, then lets
    queued reads through and tries again (``swap_attempts`` times, then ``PartitionSwapBusy``). Until
    the transaction commits, readers see the old partition; after, the new one: same rows, same sums.
    Run ``VACUUM (ANALYZE)`` on it after commit, so index-only reads find its visibility map.
    """
    swap_lock_timeout_ms = SWAP_LOCK_TIMEOUT_MS if swap_lock_timeout_ms is None else swap_lock_timeout_ms
    swap_attempts = SWAP_ATTEMPTS if swap_attempts is None else swap_attempts
    name = partition_name(month)
    if not partition_exists(cursor, name) or partition_clustered(cursor, name):
        return False
    sorting = f"{name}_sorting"
    lower, upper = _bound(month), _bound(month_add(month, 1))
    # Held to the commit: a write of the month after the copy would be lost with the old partition.
    cursor.execute(f'LOCK TABLE "{name}" IN SHARE MODE')
    cursor.execute("SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
                   " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped", [LEDGER_TABLE])
    columns = cursor.fetchone()[0]
    cursor.execute(f'CREATE TABLE "{sorting}" (LIKE "{LEDGER_TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    cursor.execute(f'INSERT INTO "{sorting}" ({columns}) SELECT {columns} FROM "{name}"'
                   " ORDER BY product_id, location_id, id")

    # Indexes and constraints the ATTACH adopts instead of building: each parent index's definition,
    # the primary key as a constraint (PostgreSQL adopts a constraint's index only from a constraint).
    cursor.execute(f'ALTER TABLE "{sorting}" ADD PRIMARY KEY (id, created_at)')
    for _index, statement in ledger_indexes(cursor):
        head, _sep, rest = statement.partition(f' ON "{LEDGER_TABLE}" ')
        cursor.execute(head.rsplit(" ", 1)[0] + f' ON "{sorting}" ' + rest)
    cursor.execute(f'ALTER TABLE "{sorting}" ADD CONSTRAINT "{sorting}_bounds" CHECK (created_at IS NOT NULL'
                   f" AND created_at >= {lower} AND created_at < {upper})")
    cursor.execute(f'ANALYZE "{sorting}"')
    # The foreign keys as the old partition names them, validated here so the attach has nothing left to
    # check. Adding one takes SHARE ROW EXCLUSIVE on the table it references (products, locations,
    # transfers) to the commit: their writes wait for the validation and the swap, a second or two.
    cursor.execute("SELECT child.conname, pg_get_constraintdef(parent.oid) FROM pg_constraint parent"
                   " JOIN pg_constraint child ON child.conparentid = parent.oid AND child.conrelid = to_regclass(%s)"
                   " WHERE parent.conrelid = to_regclass(%s) AND parent.contype = 'f' ORDER BY child.conname",
                   [name, LEDGER_TABLE])
    for constraint, definition in cursor.fetchall():
        cursor.execute(f'ALTER TABLE "{sorting}" ADD CONSTRAINT "{constraint}" {definition} NOT VALID')
        cursor.execute(f'ALTER TABLE "{sorting}" VALIDATE CONSTRAINT "{constraint}"')

    # The old partition's index name under each of the ledger's indexes, given to the new one's after.
    old_index_names = _child_index_names(cursor, name)

    for attempt in range(1, swap_attempts + 1):
        cursor.execute("SAVEPOINT ledger_partition_swap")
        try:
            cursor.execute(f"SET LOCAL lock_timeout = '{int(swap_lock_timeout_ms)}ms'")
            cursor.execute(f'ALTER TABLE "{LEDGER_TABLE}" DETACH PARTITION "{name}"')
            cursor.execute(f'ALTER TABLE "{LEDGER_TABLE}" ATTACH PARTITION "{sorting}"'
                           f" FOR VALUES FROM ({lower}) TO ({upper})")
        except Exception as exc:
            if not caused_by(exc, _SWAP_RETRYABLE):
                raise
            cursor.execute("ROLLBACK TO SAVEPOINT ledger_partition_swap")
            if attempt == swap_attempts:
                raise PartitionSwapBusy(f"{name}: the ledger stayed busy for {swap_attempts} attempts") from exc
            time.sleep(retry_pause)
        else:
            cursor.execute("RELEASE SAVEPOINT ledger_partition_swap")
            break
    cursor.execute("SET LOCAL lock_timeout = DEFAULT")

    cursor.execute(f'DROP TABLE "{name}"')
    cursor.execute(f'ALTER TABLE "{sorting}" RENAME TO "{name}"')
    cursor.execute(f'ALTER TABLE "{name}" DROP CONSTRAINT "{sorting}_bounds"')
    for parent_index, new_index in _child_index_names(cursor, name).items():
        if parent_index in old_index_names:
            cursor.execute(f'ALTER INDEX "{new_index}" RENAME TO "{old_index_names[parent_index]}"')
    cursor.execute(f"COMMENT ON TABLE \"{name}\" IS '{CLUSTERED_COMMENT}'")
    return True


def _index_valid(cursor, name: str) -> bool | None:
    """Whether index ``name`` is valid; None when there is no such index."""
    cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name])
    row = cursor.fetchone()
    return None if row is None else row[0]


def ddl_in_short_waits(cursor, statement: str, *, lock_timeout_ms: int | None = None, attempts: int | None = None,
                       retry_pause: float = 0.2) -> None:
    """Run the DDL ``statement`` (in autocommit) waiting ``lock_timeout_ms`` at most for its lock, then letting
    the reads and writes queued behind it through and trying again, ``attempts`` times at most.

    A statement that needs a lock the ledger's traffic holds (a write in progress, a long read) waits for
    it, and everything that comes after waits behind it: a lock taken for milliseconds can hold the
    ledger for as long as its longest transaction. This bounds that hold, as the swap of
    ``partition_cluster`` does.
    """
    lock_timeout_ms = SWAP_LOCK_TIMEOUT_MS if lock_timeout_ms is None else lock_timeout_ms
    attempts = SWAP_ATTEMPTS if attempts is None else attempts
    cursor.execute(f"SET lock_timeout = '{int(lock_timeout_ms)}ms'")
    try:
        for attempt in range(1, attempts + 1):
            try:
                cursor.execute(statement)
                return
            except Exception as exc:
                if not caused_by(exc, _SWAP_RETRYABLE) or attempt == attempts:
                    raise
                time.sleep(retry_pause)
    finally:
        cursor.execute("SET lock_timeout = DEFAULT")


def ledger_index_build_online(cursor, *, name: str, columns: str, **waits) -> list[str]:
    """Build the ledger index ``name`` on ``columns`` (SQL after the table name, as ``(product_id, ...)``)
    with ledger reads and writes going on; returns the partitions whose index was built here.

    ``CREATE INDEX`` on the ledger would hold its writes for the whole build, and PostgreSQL has no
    ``CONCURRENTLY`` for a partitioned table. So the parent's index is created ``ON ONLY`` the ledger
    (no rows read, invalid), each partition's is built ``CONCURRENTLY`` (writes go on) and attached to
    it; the parent's turns valid with the last one. A partition added meanwhile gets it on attach. The
    short steps (``ON ONLY``, each attach) take their locks in short waits (``ddl_in_short_waits``, with
    ``waits`` as its options). Run it in autocommit (``CONCURRENTLY`` refuses a transaction). A run
    interrupted half-way is finished by the next one: a partition's index a failed build left invalid
    is dropped and built again.
    """
    ddl_in_short_waits(cursor, f'CREATE INDEX IF NOT EXISTS "{name}" ON ONLY "{LEDGER_TABLE}" {columns}', **waits)
    cursor.execute("SELECT to_regclass(%s)::oid::bigint", [name])
    parent = cursor.fetchone()[0]
    built = []
    for partition in partitions_list(cursor):
        if parent in _child_index_names(cursor, partition):
            continue  # attached already: built by an earlier run, or on the partition's own attach
        child = f"{partition}_{name}"[:63]
        if _index_valid(cursor, child) is False:
            cursor.execute(f'DROP INDEX CONCURRENTLY "{child}"')
        if _index_valid(cursor, child) is None:
            cursor.execute(f'CREATE INDEX CONCURRENTLY "{child}" ON "{partition}" {columns}')
            built.append(partition)
        ddl_in_short_waits(cursor, f'ALTER INDEX "{name}" ATTACH PARTITION "{child}"', **waits)
    return built


def ledger_index_drop(cursor, *, name: str, **waits) -> bool:
    """Drop the ledger index ``name`` and its partitions' (False when there was none), in autocommit.

    Dropping takes the ledger's exclusive lock for milliseconds, in short waits (``ddl_in_short_waits``,
    with ``waits`` as its options).
    """
    if _index_valid(cursor, name) is None:
        return False
    ddl_in_short_waits(cursor, f'DROP INDEX IF EXISTS "{name}"', **waits)
    return True
