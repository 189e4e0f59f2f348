"""Ledger benchmark: a month-partitioned ledger of 50M rows, and per-product reads as the API serves them (p50/p95/p99).

Run with ``make bench-ledger`` (``BENCH_LEDGER_ARGS="--rows 2000000"`` to scale down). It recreates its
own database (BENCH_DATABASE_URL), migrates it (the ledger comes out partitioned by month), then fills
the ledger with SQL (INSERT ... SELECT generate_series, 1M rows a statement): --products products at
--locations locations over --months months, every product at every location, time-ordered ids. The
fill runs without the secondary indexes and with foreign-key triggers off (session_replication_role,
the data is consistent by construction); the indexes are then built as the migrations define them,
stock rows written from the ledger's sums, and the table vacuumed and analysed, as a live one is. Then
the closed months (all but this one) are rewritten in (product, location) order by
``manage.py ledger_partitions --cluster-closed``, as the daily upkeep does in production once a month
closes (--no-cluster measures the months as written, a pair's rows one per heap page).

Then, over --samples random (product, location) pairs, each timed through Django as the API runs it:
  page  GET /api/v1/stock/{code}/movements?location=…: the count (the stock row's movement_count) and the
        newest page (50 rows), prepared as the view runs it (core.db.statements_prepared); once more
        unprepared, for comparison
  sum   the pair's ledger sum, what stock_audit compares with on_hand
plus one full stock_audit (every pair at once) for scale. Target: p99 ≤ 5 ms per read.

    .venv/bin/python bench/ledger.py [--rows 50000000] [--products 20000] [--locations 10] [--months 24]
                                     [--samples 2000] [--reuse] [--no-cluster]
"""
import argparse
import logging
import os
import random
import re
import statistics
import sys
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 5.0
CHUNK = 1_000_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Month-partitioned ledger: fill, then per-product reads.")
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--locations", type=int, default=10)
    parser.add_argument("--months", type=int, default=24, help="months of history, ending this month")
    parser.add_argument("--samples", type=int, default=2_000)
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database a previous run filled with the same --rows, without refilling")
    parser.add_argument("--no-cluster", action="store_true",
                        help="leave the closed months as written instead of rewriting them in product order")
    parser.add_argument("--db-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sp_bench_ledger"))
    return parser.parse_args()


ARGS = parse_args()
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "bench-ledger-secret-key-not-for-production",
    "DATABASE_URL": ARGS.db_url,
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
    "CACHE_KEY_PREFIX": "bench-ledger",
    "LOG_LEVEL": "WARNING",
    "DJANGO_DEBUG": "false",
}
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))

from bench.common import database_recreate, manage, percentiles  # noqa: E402
from inventory.partitions import (LEDGER_TABLE, ledger_indexes_drop, ledger_indexes_make, month_add,  # noqa: E402
                                  month_start_utc, partitions_add, partitions_list)


def step(label: str, started: float) -> float:
    now = time.monotonic()
    print(f"  {label}: {now - started:.1f} s", flush=True)
    return now


def ledger_fill(args) -> None:
    """Products, locations, partitions, the ledger rows, its indexes, stock rows; timed step by step."""
    conn = psycopg.connect(args.db_url, autocommit=True)
    started = time.monotonic()
    conn.execute("INSERT INTO inventory_product (code, name, category, unit, low_stock_threshold, active,"
                 " created_at, updated_at) SELECT 'BL-' || lpad(g::text, 6, '0'), 'Bench ledger ' || g, 'bench',"
                 " 'un', 5, true, now(), now() FROM generate_series(1, %s) g", [args.products])
    conn.execute("INSERT INTO inventory_location (code, name, kind, address, time_zone, active, created_at,"
                 " updated_at) SELECT 'BL-LOC-' || lpad(g::text, 2, '0'), 'Bench location ' || g, 'dark_store', '',"
                 " 'America/Sao_Paulo', true, now(), now() FROM generate_series(2, %s) g", [args.locations])
    first_product = conn.execute("SELECT min(id) FROM inventory_product WHERE code LIKE 'BL-%%'").fetchone()[0]
    locations = [row[0] for row in conn.execute("SELECT id FROM inventory_location ORDER BY id")][:args.locations]

    now = datetime.now(timezone.utc)
    this_month = now.date().replace(day=1)
    first_month = month_add(this_month, 1 - args.months)
    with conn.transaction(), conn.cursor() as cursor:
        partitions_add(cursor, first=first_month, last=month_add(this_month, 3))
    span_start = month_start_utc(first_month)
    started = step(f"{args.products:,} products, {len(locations)} locations, "
                   f"{len(partitions_list(conn.cursor()))} partitions", started)

    # The secondary indexes and the primary key are built once the rows are in; the same definitions.
    indexes = ledger_indexes_drop(conn.cursor())

    # Row g (1..rows): ids in time order over the months; within each run of --products rows every
    # product once (7919 is prime to the counts used), the run's location cycling, so every pair gets
    # one row per round of products x locations rows; one round in five receipts of 15, the others
    # sales of 1-3, so each pair's sum stays positive.
    conn.execute("SET session_replication_role = replica")
    seconds = (now - span_start).total_seconds()
    done = 0
    while done < args.rows:
        upto = min(done + CHUNK, args.rows)
        conn.execute(f"""
            INSERT INTO {LEDGER_TABLE} (id, product_id, location_id, kind, quantity, on_hand_after, reason,
                                        reference, actor, created_at)
            SELECT g, %(first_product)s + (g * 7919) %% %(products)s,
                   (%(locations)s::bigint[])[1 + (g / %(products)s) %% cardinality(%(locations)s::bigint[])],
                   CASE WHEN (g / %(round)s) %% 5 = 0 THEN 'receipt' ELSE 'sale' END,
                   CASE WHEN (g / %(round)s) %% 5 = 0 THEN 15 ELSE -(1 + g %% 3) END, 0, 'bench', '', '',
                   %(start)s::timestamptz + make_interval(secs => (g - 1) * %(step)s)
            FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g""",
                     {"first_product": first_product, "products": args.products, "locations": locations,
                      "round": args.products * len(locations),
                      "start": span_start, "step": seconds / args.rows, "lo": done + 1, "hi": upto})
        done = upto
        if done % (10 * CHUNK) == 0 or done == args.rows:
            print(f"    {done:,} rows, {time.monotonic() - started:.0f} s", flush=True)
    conn.execute("SET session_replication_role = DEFAULT")
    started = step(f"{args.rows:,} ledger rows", started)

    conn.execute("SET maintenance_work_mem = '512MB'")
    ledger_indexes_make(conn.cursor(), indexes)
    conn.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [LEDGER_TABLE, args.rows])
    started = step(f"primary key and {len(indexes)} indexes", started)

    conn.execute("DELETE FROM inventory_stock")
    conn.execute(f"INSERT INTO inventory_stock (product_id, location_id, on_hand, reserved, version, movement_count,"
                 f" updated_at) SELECT product_id, location_id, sum(quantity), 0, count(*), count(*), now() FROM {LEDGER_TABLE}"
                 f" GROUP BY product_id, location_id")
    started = step("stock rows from the ledger's sums", started)
    conn.execute(f"VACUUM (ANALYZE) {LEDGER_TABLE}")
    conn.execute("VACUUM (ANALYZE) inventory_stock")
    step("vacuum and analyse", started)
    conn.close()


def show(label: str, samples: list[float]) -> bool:
    p50, p95, p99, top = (seconds * 1000 for seconds in percentiles(samples, 0.50, 0.95, 0.99, 1))
    met = p99 <= TARGET_MS
    print(f"  {label:<44} p50 {p50:.2f} ms  p95 {p95:.2f} ms  p99 {p99:.2f} ms"
          f"  max {top:.2f} ms  ({'met' if met else 'NOT met'})", flush=True)
    return met


def reads_measure(args) -> bool:
    import django

    django.setup()
    from django.db import connection

    from django.db.models import Sum

    from core.db import statements_prepared
    from core.pagination import StandardPagination
    from core.serving import heap_freeze
    from inventory.models import Location, Product, StockMovement
    from inventory.selectors import ledger_audit, movement_count, movement_page, movement_page_sql

    page_size = StandardPagination().page_size
    with connection.cursor() as cursor:
        cursor.execute("SELECT product_id, location_id FROM inventory_stock")
        pairs = cursor.fetchall()
        cursor.execute(f"SELECT count(*) FROM {LEDGER_TABLE}")
        rows = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]
    print(f"measuring: {rows:,} ledger rows, {len(pairs):,} (product, location) pairs, database {size}")
    rng = random.Random(17)
    chosen = [rng.choice(pairs) for _ in range(args.samples)]
    products = {p.pk: p for p in Product.objects.filter(pk__in={pid for pid, _ in chosen})}
    locations = {location.pk: location for location in Location.objects.all()}
    heap_freeze()  # as config/asgi.py does once the server is built: full collections skip what is loaded

    def page(product_id: int, location_id: int, prepared: bool = True) -> int:
        """The movements route's two statements (the count from the stock row's counter, then the newest
        page), the page prepared as the view runs it, or with Django's client-side binding (planned on every
        call) for comparison."""
        places = [locations[location_id]]
        count = movement_count(product=products[product_id], locations=places)
        with statements_prepared() if prepared else nullcontext():
            rows = movement_page(product=products[product_id], locations=places, start=0, stop=page_size)
        # The serializer reads each row's product code and location code: no query more (see movement_page).
        return count + sum(1 for row in rows if row.product.code and row.location.code)

    def total(product_id: int, location_id: int) -> int:
        return StockMovement.objects.filter(product_id=product_id, location_id=location_id) \
            .aggregate(total=Sum("quantity"))["total"]

    reads = {"page": page, "sum": total, "page, unprepared": partial(page, prepared=False)}
    for product_id, location_id in chosen[:200]:  # a running server's connections and plans, warmed
        for read in reads.values():
            read(product_id, location_id)
    timings: dict[str, list[float]] = {name: [] for name in reads}
    order = list(reads.items())
    for n, (product_id, location_id) in enumerate(chosen):
        # The first read of a pair may find its pages out of cache: each kind of read goes first in turn.
        for name, read in order[n % len(order):] + order[:n % len(order)]:
            began = time.perf_counter()
            read(product_id, location_id)
            timings[name].append(time.perf_counter() - began)
    # What a page read costs in pages, whatever the cache holds: the buffers its plan touches (the rows
    # of a pair spread one per heap page, or side by side once its months are rewritten in product order).
    # The first pair's plan is also printed.
    buffer_counts, plans = [], []
    with connection.cursor() as cursor:
        for product_id, location_id in chosen[:100]:
            sql, params = movement_page_sql(product_id=product_id, location_ids=[location_id], start=0, stop=page_size)
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, params)
            plans.append([row[0] for row in cursor.fetchall()])
            top = next(line for line in plans[-1] if "Buffers:" in line)
            buffer_counts.append(sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", top)))
    plan = plans[0]
    print(f"per-product reads over {args.samples} random pairs (target p99 ≤ {TARGET_MS:g} ms each), through Django:")
    met = show(f"movements page (count + newest {page_size})", timings["page"])
    met = show("ledger sum of the pair (audit)", timings["sum"]) and met
    print("the page with Django's client-side binding instead (DATABASE_PREPARED_READS=false; planned every time):")
    show(f"movements page (count + newest {page_size})", timings["page, unprepared"])
    scans = [line for line in plan if "Index" in line and " on " in line]
    print("  plan of one page read: " + plan[0].strip() + f"; {len(scans)} index scans planned, "
          f"{sum('never executed' not in line for line in scans)} started, " + plan[-1].strip())
    print(f"  pages one page read touches, over {len(buffer_counts)} pairs (shared buffers hit + read, index and heap): "
          f"p50 {statistics.median(buffer_counts):.0f}, max {max(buffer_counts)}")
    began = time.monotonic()
    audit = ledger_audit()
    print(f"  full stock_audit ledger check (every pair's sum and row count): {time.monotonic() - began:.1f} s, "
          f"{len(audit['sum'])} drifting in sum, {len(audit['count'])} in count")
    staff_list_measure(code=products[chosen[0][0]].code)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return met


STAFF_LIST_TARGET_MS = 1000.0


def staff_list_measure(*, code: str, repeats: int = 5) -> None:
    """The ledger's admin list as a staff user opens it (Django's test client in this process, no browser):
    the list, a product search, a month, the last page the count allows, a kind. Static files are served
    plain here: the manifest of collectstatic is a deployment step, not part of a page's cost."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings

    from core.admin_lists import CappedCountPaginator

    logging.getLogger("stockpulse.access").setLevel(logging.WARNING)  # one line per request otherwise
    user, _ = get_user_model().objects.get_or_create(username="bench-staff",
                                                     defaults={"is_staff": True, "is_superuser": True})
    url = "/admin/inventory/stockmovement/"
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    asks = {"list": {}, f"search {code}": {"q": code}, f"month {month}": {"month": month},
            f"page {CappedCountPaginator.cap // 100}": {"p": CappedCountPaginator.cap // 100},
            "kind sale": {"kind__exact": "sale"}}
    print(f"staff ledger list ({url}, target ≤ {STAFF_LIST_TARGET_MS:g} ms a page):")
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}, ALLOWED_HOSTS=["*"]):
        client = Client()
        client.force_login(user)
        for name, params in asks.items():
            took = []
            for _ in range(repeats + 1):
                began = time.perf_counter()
                response = client.get(url, params, secure=True)
                took.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (name, response.status_code)
            first, warm = took[0], sorted(took[1:])
            # What the page says of its count: the paginator's line, its page links left out.
            line = re.search(r'<p class="paginator">(.*?)</p>', response.content.decode(), re.S)[1]
            line = " ".join(re.sub(r"<a [^>]*>[^<]*</a>|<[^>]+>", " ", line).split())
            capped = re.search(r"(?:Mais de|More than) (\d+)", line)
            exact = re.search(r"(\d+) (?:moviment|stock movement)", line)
            count = f"more than {capped[1]} rows" if capped else f"{exact[1] if exact else '?'} rows"
            print(f"  {name:<28} first {first:7.1f} ms  warm p50 {statistics.median(warm):6.1f} ms  "
                  f"max {warm[-1]:6.1f} ms  ({count}; {'met' if warm[-1] <= STAFF_LIST_TARGET_MS else 'NOT met'})")


def main() -> int:
    args = ARGS
    print(f"bench-ledger: {args.rows:,} rows, {args.products:,} products x {args.locations} locations over "
          f"{args.months} months (database {args.db_url}); {os.cpu_count()} CPUs, "
          "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    filled = False
    if args.reuse:
        try:
            with psycopg.connect(args.db_url) as conn:
                filled = conn.execute(f"SELECT max(id) FROM {LEDGER_TABLE}").fetchone()[0] == args.rows
        except psycopg.OperationalError:
            filled = False
        print("reusing the filled database" if filled else "nothing to reuse: filling", flush=True)
    if not filled:
        began = time.monotonic()
        database_recreate(args.db_url)
        manage("migrate", "--noinput", env=ENV)
        print("filling:", flush=True)
        ledger_fill(args)
        print(f"filled in {time.monotonic() - began:.0f} s", flush=True)
    if not args.no_cluster:
        # The command the daily upkeep runs; months rewritten already are skipped, so --reuse costs nothing here.
        began = time.monotonic()
        manage("ledger_partitions", "--cluster-closed", env=ENV)
        print(f"closed months in product order (ledger_partitions --cluster-closed): "
              f"{time.monotonic() - began:.0f} s", flush=True)
    return 0 if reads_measure(args) else 1


if __name__ == "__main__":
    sys.exit(main())
