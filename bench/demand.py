"""Demand benchmark: forecast accuracy against baselines, a replay of the reorder suggestions, recompute speed and
read latency, on synthetic sales.

Run with ``make bench-demand`` (``BENCH_DEMAND_ARGS`` passes options). It drops and recreates its own database
(BENCH_DATABASE_URL; ``--reuse`` keeps one an earlier run loaded with the same ``--products`` and ``--days``),
writes ``--days`` (730) days of synthetic daily sales for ``--products`` (10,000) products (weekday patterns,
trend, promotions, stockout runs), holds out the last 8 weeks and prints, against the true (uncensored) demand
of those weeks:

- WAPE and MAE of the demand estimate (``projections/sql.py``), fitted once on the days before the holdout;
- the same for the naive "mean of the last 7 days", for statsforecast's AutoETS (weekly season, automatic
  model choice) when it is installed, and for statsmodels' Holt-Winters (additive weekly season), the
  libraries on ``--library-sample`` products, with each method's time per product;
- a replay of the 8 weeks for ``--replay-sample`` products: each day the service's own recompute
  (``projections.services._upsert``: demand estimate, projection, reorder suggestion) runs on the replayed
  ledger and stock, the open suggestion is ordered on the product's review day and arrives after the lead
  time, and the true demand is served from stock (lost when short). It prints the fill rate and the
  average stock for the demand estimate and for the 7-day mean in its place;
- the time of the demand estimate of every product (batches of 500, on one and on two connections), of the
  full recompute (``manage.py projections_rebuild --workers 2``: estimate, projection and suggestions of
  every product) and the p95 of one product's estimate + open suggestion read.

``--speed-only`` skips accuracy and replay (for ``--products 100000 --days 120 --new-every 50``: the estimate
reads only its 84 days, so the speed figures need no more history than that, and two years of 100,000 products
would be 73 million ledger rows; ``--new-every 50`` makes one product in 50 new, with 10 days of sales, so the
category fallback is part of the figure).
"""
import argparse
import os
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time as clock, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sp_bench_demand")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
HOLDOUT, BATCH = 56, 500
TZ = "America/Sao_Paulo"
LEAD, PACK = 5, 6  # every product's supply terms
REPLAY_SOURCE = "bench-replay"
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "config.settings.local",
    "DJANGO_DEBUG": "false",
    "DATABASE_URL": DB_URL,
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "CACHE_KEY_PREFIX": "bench-demand",
    "CHANNEL_LAYER_PREFIX": "bench-demand.ws",
    "TIME_ZONE": TZ,
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.common import celery_queues_empty, database_recreate, manage  # noqa: E402
from projections import services  # noqa: E402

# Five weekday profiles (Monday first): flat, weekend, office, Saturday market, Sunday closed.
PROFILES = [[1, 1, 1, 1, 1, 1, 1], [0.8, 0.8, 0.9, 1, 1.3, 1.7, 1.5], [1.2, 1.2, 1.2, 1.2, 1.1, 0.6, 0.5],
            [0.9, 0.9, 0.9, 0.9, 1, 2.2, 0.2], [1.1, 1.1, 1.1, 1.1, 1.2, 1.4, 0]]

TRUTH_SQL = """
CREATE UNLOGGED TABLE bench_truth AS
WITH p AS (
    SELECT id, 1 + random() * 29 AS base, (random() - 0.5) * 0.002 AS trend, id %% 5 AS profile FROM inventory_product
)
SELECT p.id AS product_id, g.n, %(first)s::date + g.n AS day,
       GREATEST(0, round(p.base * GREATEST(0.2, 1 + p.trend * g.n)
                         * (%(profiles)s::float8[])[p.profile * 7 + EXTRACT(ISODOW FROM %(first)s::date + g.n)::int]
                         * CASE WHEN random() < 0.03 THEN 2.0 ELSE 1.0 END
                         * (0.7 + random() * 0.6)))::int AS demand,
       ((p.id * 7919 + (g.n / 4) * 104729) %% 100) < 4 AS out
FROM p CROSS JOIN generate_series(0, %(days)s - 1) AS g(n)
"""

# One ledger row per day: the day's sales (none on a stockout day, which ends at 0 on hand).
LEDGER_SQL = """
INSERT INTO inventory_stockmovement (product_id, location_id, kind, quantity, on_hand_after, reason, reference, actor, created_at)
SELECT product_id, (SELECT min(id) FROM inventory_location), CASE WHEN out THEN 'adjustment' ELSE 'sale' END, CASE WHEN out THEN 0 ELSE -demand END,
       CASE WHEN out THEN 0 ELSE 1000 END, 'bench', '', '', (day + time '12:00') AT TIME ZONE %(tz)s
FROM bench_truth ORDER BY day, product_id
"""


def data_load(products: int, days: int, first: date, new_every: int) -> None:
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute("""
            INSERT INTO inventory_product (code, name, category, unit, low_stock_threshold, active,
                                           created_at, updated_at)
            SELECT 'BD-' || lpad(g::text, 6, '0'), 'Bench product ' || g, 'cat-' || g %% 20, 'un', 5, true, now(), now()
            FROM generate_series(1, %s) g""", [products])
        conn.execute("INSERT INTO inventory_stock (product_id, location_id, on_hand, reserved, version, updated_at) "
                     "SELECT id, (SELECT min(id) FROM inventory_location), 1000, 0, 1, now() FROM inventory_product")
        conn.execute(TRUTH_SQL, {"first": first, "days": days, "profiles": [float(f) for p in PROFILES for f in p]})
        conn.execute(LEDGER_SQL, {"tz": TZ})
        if new_every:
            # New products: only the last 10 days of sales, so they take their category's profile.
            conn.execute("DELETE FROM inventory_stockmovement WHERE product_id %% %s = 0 AND created_at < %s",
                         [new_every, datetime.combine(first + timedelta(days=days - 10), clock(), tzinfo=ZoneInfo(TZ))])
        conn.execute("INSERT INTO projections_supplyterms (product_id, lead_time_days, pack_size, min_order, "
                     "updated_at) SELECT id, %s, %s, 0, now() FROM inventory_product", [LEAD, PACK])
        conn.execute("CREATE TABLE bench_meta AS SELECT %s::int AS products, %s::int AS days, %s::date AS first, "
                     "%s::int AS new_every", [products, days, first, new_every])
        conn.execute("VACUUM ANALYZE")


def data_reusable(products: int, days: int, first: date, new_every: int) -> bool:
    try:
        with psycopg.connect(DB_URL, autocommit=True) as conn:
            row = conn.execute("SELECT products, days, first, new_every FROM bench_meta").fetchone()
    except psycopg.Error:
        return False
    return row == (products, days, first, new_every)


def state_reset() -> None:
    """Derived rows of an earlier run removed, stock back to 1,000; the ledger is restored by the replay itself."""
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("TRUNCATE projections_reordersuggestion, projections_demandestimate, "
                     "projections_projectionsummary, projections_plannedmovement")
        conn.execute("UPDATE inventory_stock SET on_hand = 1000, reserved = 0")


def estimates_clear() -> None:
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("TRUNCATE projections_demandestimate")
        conn.execute("VACUUM ANALYZE projections_demandestimate")


def _backend_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL backend of this thread's connection (read from /proc: the
    server runs on this machine), so the figure does not move with what else the machine runs."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _estimate_batches(batches: list[list[int]], day: date) -> float:
    try:
        before = _backend_cpu()
        for batch in batches:
            services.demand_recompute(product_ids=batch, today=day)
        return _backend_cpu() - before
    finally:
        connection.close()


def estimate_all(ids: list[int], day: date, *, workers: int = 1) -> tuple[float, float]:
    """Estimate every product for ``day`` with the service (``demand_recompute``, batches of 500) on ``workers``
    connections, each taking every ``workers``-th batch; return (seconds, CPU seconds of the server and this
    process)."""
    batches = [ids[start:start + BATCH] for start in range(0, len(ids), BATCH)]
    started, cpu = time.perf_counter(), time.process_time()
    if workers == 1:
        server = _estimate_batches(batches, day)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            server = sum(pool.map(_estimate_batches, [batches[n::workers] for n in range(workers)], [day] * workers))
    return time.perf_counter() - started, server + time.process_time() - cpu


def truth_by_product(conn, origin: date) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """(sold per day before the holdout, true demand per holdout day) per product."""
    history: dict[int, list[int]] = {}
    actual: dict[int, list[int]] = {}
    rows = conn.execute("SELECT product_id, day, demand, out FROM bench_truth ORDER BY product_id, day")
    for pid, day, demand, out in rows:
        if day < origin:
            history.setdefault(pid, []).append(0 if out else demand)
        else:
            actual.setdefault(pid, []).append(demand)
    return history, actual


def scores(forecasts: dict[int, list[float]], actual: dict[int, list[int]]) -> tuple[float, float]:
    """(WAPE, MAE) over every product and holdout day."""
    errors = [abs(f - a) for pid, fc in forecasts.items() for f, a in zip(fc, actual[pid])]
    total = sum(a for pid in forecasts for a in actual[pid])
    return sum(errors) / total, sum(errors) / len(errors)


def ours(conn, origin: date) -> dict[int, list[float]]:
    rows = conn.execute("SELECT product_id, daily_rate, weekday_factors FROM projections_demandestimate")
    days = [origin + timedelta(days=n) for n in range(HOLDOUT)]
    return {pid: [rate * factors[d.weekday()] for d in days] for pid, rate, factors in rows}


def naive(history: dict[int, list[int]]) -> dict[int, list[float]]:
    return {pid: [sum(sold[-7:]) / 7] * HOLDOUT for pid, sold in history.items()}


def holt_winters(history: dict[int, list[int]], sample: list[int]) -> tuple[dict[int, list[float]], float, float]:
    """statsmodels' Holt-Winters (additive level + weekly season) on the last 365 days; (forecasts, s/product,
    CPU s/product)."""
    import warnings

    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    out = {}
    started, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pid in sample:
            series = [float(v) for v in history[pid][-365:]]
            fit = ExponentialSmoothing(series, trend=None, seasonal="add", seasonal_periods=7).fit()
            out[pid] = [max(0.0, float(v)) for v in fit.forecast(HOLDOUT)]
    return out, (time.perf_counter() - started) / len(sample), (time.process_time() - cpu) / len(sample)


def auto_ets(history: dict[int, list[int]], sample: list[int]) -> tuple[dict[int, list[float]], float, float] | None:
    """statsforecast's AutoETS (weekly season; error, trend and season chosen by AICc) on the last 365 days;
    None when statsforecast is not installed."""
    try:
        import numpy as np
        from statsforecast.models import AutoETS
    except ImportError as error:
        print(f"statsforecast not available ({error}): Holt-Winters is the library forecaster")
        return None
    out = {}
    started, cpu = time.perf_counter(), time.process_time()
    for pid in sample:
        series = np.asarray(history[pid][-365:], dtype=float)
        forecast = AutoETS(season_length=7).fit(series).predict(HOLDOUT)["mean"]
        out[pid] = [max(0.0, float(v)) for v in forecast]
    return out, (time.perf_counter() - started) / len(sample), (time.process_time() - cpu) / len(sample)


def read_p95(conn, ids: list[int]) -> float:
    samples = []
    for pid in random.sample(ids, min(500, len(ids))):
        started = time.perf_counter()
        conn.execute("SELECT daily_rate, weekday_factors, mae FROM projections_demandestimate WHERE product_id = %s",
                     [pid]).fetchone()
        conn.execute("SELECT id, quantity, arrival_date FROM projections_reordersuggestion "
                     "WHERE product_id = %s AND state = 'open'", [pid]).fetchone()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.quantiles(samples, n=20)[18]


# ---------------------------------------------------------------------------------------------
# Replay


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, clock(hour), tzinfo=ZoneInfo(TZ))


def _ledger_append(cursor, rows: list[tuple[int, str, int, int]], at: datetime) -> None:
    """Ledger rows (product, kind, signed quantity, on hand after), all at ``at``."""
    if rows:
        cursor.execute("""
            INSERT INTO inventory_stockmovement (product_id, location_id, kind, quantity, on_hand_after, reason, reference, actor,
                                                 created_at)
            SELECT p, (SELECT min(id) FROM inventory_location), k, q, a, 'bench replay', '', '', %s
            FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::int[]) AS t(p, k, q, a)""",
                       [at, *map(list, zip(*rows))])


def _naive_estimates(cursor, sold: dict[int, list[int]], day: date) -> None:
    """The 7-day mean in place of the demand estimate for ``day``: flat weekdays, and as error the same 28-day
    backtest (the mean made 28 days earlier against the units sold since)."""
    backtest = settings.DEMAND_BACKTEST_DAYS
    ids, rates, errors = [], [], []
    for pid, series in sold.items():
        then = sum(series[-backtest - 7:-backtest]) / 7
        ids.append(pid)
        rates.append(sum(series[-7:]) / 7)
        errors.append(sum(abs(v - then) for v in series[-backtest:]) / backtest)
    cursor.execute("""
        INSERT INTO projections_demandestimate AS e (product_id, location_id, as_of, daily_rate, weekday_factors, mae,
                                                      history_days, censored_days, basis, computed_at)
        SELECT p, (SELECT min(id) FROM inventory_location), %s, r, '{1,1,1,1,1,1,1}', m, 56, 0, 'own', now()
        FROM unnest(%s::bigint[], %s::float8[], %s::float8[]) AS t(p, r, m)
        ON CONFLICT (product_id, location_id) DO UPDATE SET as_of = EXCLUDED.as_of, daily_rate = EXCLUDED.daily_rate,
            weekday_factors = EXCLUDED.weekday_factors, mae = EXCLUDED.mae, computed_at = EXCLUDED.computed_at""",
                   [day, ids, rates, errors])


def _replay_reset(cursor, ids: list[int], origin: date, start: dict[int, int]) -> None:
    """The sample's holdout ledger, derived rows and purchases removed; stock set to the starting quantity."""
    since = _at(origin, 0)
    cursor.execute("DELETE FROM inventory_stockmovement WHERE product_id = ANY(%s) AND created_at >= %s", [ids, since])
    for table in ("projections_reordersuggestion", "projections_plannedmovement", "projections_demandestimate",
                  "projections_projectionsummary"):
        cursor.execute(f"DELETE FROM {table} WHERE product_id = ANY(%s)", [ids])
    cursor.execute("""
        SELECT DISTINCT ON (product_id) product_id, on_hand_after FROM inventory_stockmovement
        WHERE product_id = ANY(%s) ORDER BY product_id, created_at DESC, id DESC""", [ids])
    before = dict(cursor.fetchall())
    # The starting quantity is counted at the start of the first day (an adjustment, as a stock count would).
    _ledger_append(cursor, [(pid, "adjustment", start[pid] - before.get(pid, 0), start[pid]) for pid in ids],
                   _at(origin, 0) + timedelta(minutes=5))


def replay(policy: str, ids: list[int], origin: date, start: dict[int, int], history: dict[int, list[int]],
           demand: dict[int, list[int]]) -> dict[str, float]:
    """Replay the holdout for ``ids`` with the service's recompute each day; ``policy`` "ours" keeps the demand
    estimate, "naive" puts the 7-day mean in its place. Returns the totals."""
    review = settings.REORDER_REVIEW_DAYS
    on_hand = dict(start)
    sold = {pid: list(history[pid]) for pid in ids}
    served_total = demanded_total = stock_total = short_days = orders = ordered_units = 0
    with transaction.atomic(), connection.cursor() as cursor:
        _replay_reset(cursor, ids, origin, start)
    for n in range(HOLDOUT):
        day = origin + timedelta(days=n)
        with transaction.atomic(), connection.cursor() as cursor:
            # Purchases due today arrive before the store opens.
            cursor.execute("""
                UPDATE projections_plannedmovement SET status = 'done', updated_at = now()
                WHERE source = %s AND status = 'open' AND date = %s RETURNING product_id, quantity""",
                           [REPLAY_SOURCE, day])
            receipts = []
            for pid, quantity in cursor.fetchall():
                on_hand[pid] += quantity
                receipts.append((pid, "receipt", quantity, on_hand[pid]))
            _ledger_append(cursor, receipts, _at(day, 7))
            cursor.execute("UPDATE inventory_stock s SET on_hand = t.q "
                           "FROM unnest(%s::bigint[], %s::bigint[]) AS t(p, q) WHERE s.product_id = t.p",
                           [ids, [on_hand[pid] for pid in ids]])
            if policy == "naive":
                _naive_estimates(cursor, sold, day)
            # The service's own recompute: demand estimate (once a day), projection, reorder suggestion.
            services._upsert(ids, location_id=services.location_default_id(), today=day)
            # On its review day a product's open suggestion is ordered; it arrives after the lead time.
            due = [pid for pid in ids if (pid + n) % review == 0]
            cursor.execute("SELECT id, product_id, quantity FROM projections_reordersuggestion "
                           "WHERE state = 'open' AND product_id = ANY(%s) ORDER BY id", [due])
            suggestions = cursor.fetchall()
            if suggestions:
                cursor.execute("""
                    WITH s AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS t(id, p, q)),
                    pm AS (
                        INSERT INTO projections_plannedmovement (product_id, location_id, date, direction,
                                                                 quantity, kind, firmness, status, source,
                                                                 source_ref, note, created_at, updated_at)
                        SELECT s.p, (SELECT min(id) FROM inventory_location), %s::date, 'in', s.q, 'purchase', 'firm', 'open', %s, 'suggestion-' || s.id, '',
                               now(), now()
                        FROM s RETURNING id, source_ref)
                    UPDATE projections_reordersuggestion r SET state = 'ordered', planned_movement_id = pm.id,
                        decided_by = 'bench', decided_at = now(), updated_at = now()
                    FROM pm WHERE pm.source_ref = 'suggestion-' || r.id""",
                               [*map(list, zip(*suggestions)), day + timedelta(days=LEAD), REPLAY_SOURCE])
                orders += len(suggestions)
                ordered_units += sum(q for _id, _p, q in suggestions)
            # The day's true demand, served while stock lasts; what is short is lost.
            sales = []
            for pid in ids:
                wanted = demand[pid][n]
                served = min(wanted, on_hand[pid])
                on_hand[pid] -= served
                sold[pid].append(served)
                served_total += served
                demanded_total += wanted
                short_days += served < wanted
                stock_total += on_hand[pid]
                if served:
                    sales.append((pid, "sale", -served, on_hand[pid]))
            _ledger_append(cursor, sales, _at(day, 12))
    product_days = len(ids) * HOLDOUT
    return {"fill": served_total / demanded_total, "stock": stock_total / product_days,
            "cover": stock_total / demanded_total, "short": short_days / product_days,
            "orders": orders / len(ids), "ordered": ordered_units / max(orders, 1)}


def replay_run(ids: list[int], origin: date, history: dict[int, list[int]], actual: dict[int, list[int]]) -> None:
    """Both policies from the same starting stock: between the lead time's and the cover period's worth of
    the product's mean daily sales over the 28 days before the holdout (days out of stock left out)."""
    review = settings.REORDER_REVIEW_DAYS
    start = {}
    for pid in ids:
        recent = [v for v in history[pid][-28:] if v > 0] or [0]
        start[pid] = round(statistics.fmean(recent) * random.Random(pid).uniform(LEAD, LEAD + review))
    print(f"\nreplay of the {HOLDOUT} holdout days, {len(ids):,} sampled products: lead time {LEAD} days, review "
          f"every {review} days (staggered), packs of {PACK}, service level {settings.REORDER_SERVICE_LEVEL:.0%}, "
          f"starting stock {sum(start.values()) / len(ids):.0f} units on average")
    print(f"{'forecast in the suggestion':<28} {'fill rate':>9} {'short days':>10} {'avg stock':>10} "
          f"{'days of cover':>13} {'orders':>7} {'time':>6}")
    for policy, name in (("ours", "demand estimate"), ("naive", "7-day mean")):
        started = time.perf_counter()
        r = replay(policy, ids, origin, start, history, actual)
        print(f"{name:<28} {r['fill']:>9.1%} {r['short']:>10.1%} {r['stock']:>10.1f} {r['cover']:>13.1f} "
              f"{r['orders']:>7.1f} {time.perf_counter() - started:>5.0f}s")
    print("(fill rate = units served / units demanded; short days = product-days with lost sales; avg stock = "
          "end-of-day units on hand per product; days of cover = avg stock / avg daily demand; orders per product)")


# ---------------------------------------------------------------------------------------------


def speed(ids: list[int], day: date, single: tuple[float, float] | None) -> None:
    if single is None:
        estimates_clear()
        single = estimate_all(ids, day)
    print(f"\ndemand estimate of {len(ids):,} products (demand_recompute, batches of {BATCH}): one connection "
          f"{single[0]:.1f} s ({single[0] / len(ids) * 1000:.3f} ms/product, CPU {single[1] / len(ids) * 1000:.3f} "
          f"ms/product)", end="", flush=True)
    estimates_clear()
    double = estimate_all(ids, day, workers=2)
    print(f", two connections {double[0]:.1f} s")
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("TRUNCATE projections_demandestimate, projections_projectionsummary, "
                     "projections_reordersuggestion")
        # Stock from 0 to 400 units (days to weeks of sales), so many products get a suggestion written.
        conn.execute("SELECT setseed(0.24)")
        conn.execute("UPDATE inventory_stock SET on_hand = (random() * 400)::int, reserved = 0")
        conn.execute("VACUUM ANALYZE")
    started = time.perf_counter()
    manage("projections_rebuild", "--workers", "2", env=ENV)
    full = time.perf_counter() - started
    celery_queues_empty(REDIS_URL)
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        estimated, summaries, suggested = conn.execute("""
            SELECT (SELECT count(*) FROM projections_demandestimate),
                   (SELECT count(*) FROM projections_projectionsummary),
                   (SELECT count(*) FROM projections_reordersuggestion WHERE state = 'open')""").fetchone()
        conn.execute("VACUUM ANALYZE")
        print(f"full recompute (manage.py projections_rebuild --workers 2: estimate, projection and suggestion of "
              f"every product): {full:.1f} s ({estimated:,} estimates, {summaries:,} summaries, "
              f"{suggested:,} open suggestions)")
        print(f"one product's estimate + open suggestion read: p95 {read_p95(conn, ids):.2f} ms")
    print(f"load average at the end {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=int(os.environ.get("BENCH_DEMAND_PRODUCTS", 10_000)))
    parser.add_argument("--days", type=int, default=730, help="days of sales history written")
    parser.add_argument("--library-sample", type=int,
                        default=int(os.environ.get("BENCH_DEMAND_LIBRARY_SAMPLE", 300)))
    parser.add_argument("--replay-sample", type=int, default=1000)
    parser.add_argument("--speed-only", action="store_true", help="only the speed figures (no accuracy, no replay)")
    parser.add_argument("--new-every", type=int, default=0,
                        help="every N-th product is new: 10 days of sales only (category fallback)")
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run with these sizes")
    args = parser.parse_args()
    random.seed(42)
    today = timezone.localdate()
    first, origin = today - timedelta(days=args.days), today - timedelta(days=HOLDOUT)
    print(f"{args.products:,} products, {args.days} days of sales" +
          (f" (every {args.new_every}th product new: 10 days)" if args.new_every else "") +
          ("" if args.speed_only else f", the last {HOLDOUT} held out") +
          f"; {os.cpu_count()} CPUs, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if args.reuse and data_reusable(args.products, args.days, first, args.new_every):
        state_reset()
        print("data of an earlier run reused")
    else:
        database_recreate(DB_URL)
        manage("migrate", "--noinput", env=ENV)
        started = time.perf_counter()
        data_load(args.products, args.days, first, args.new_every)
        print(f"data written in {time.perf_counter() - started:.0f} s")
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM inventory_product ORDER BY id")]
    if args.speed_only:
        speed(ids, today, None)
        return
    seconds, cpu = estimate_all(ids, origin)
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        history, actual = truth_by_product(conn, origin)
        mine = ours(conn, origin)
    sample = sorted(random.sample(ids, min(args.library_sample, len(ids))))
    base = naive(history)
    rows = [("demand estimate (all)", *scores(mine, actual), seconds / len(ids), cpu / len(ids)),
            ("7-day mean (all)", *scores(base, actual), None, None),
            (f"demand estimate ({len(sample)} sampled)", *scores({p: mine[p] for p in sample}, actual), None, None),
            (f"7-day mean ({len(sample)} sampled)", *scores({p: base[p] for p in sample}, actual), None, None)]
    library = auto_ets(history, sample)
    if library is not None:
        rows.append((f"AutoETS ({len(sample)} sampled)", *scores(library[0], actual), *library[1:]))
    hw = holt_winters(history, sample)
    rows.append((f"Holt-Winters ({len(sample)} sampled)", *scores(hw[0], actual), *hw[1:]))
    print(f"\n{'method':<34} {'WAPE':>7} {'MAE':>7} {'ms/product':>11} {'CPU ms/product':>15}")
    for name, wape, mae, each, each_cpu in rows:
        print(f"{name:<34} {wape:>7.1%} {mae:>7.2f} {'' if each is None else f'{each * 1000:.2f}':>11} "
              f"{'' if each_cpu is None else f'{each_cpu * 1000:.2f}':>15}")
    print(f"7-day mean: the estimate's WAPE is {rows[0][1] / rows[1][1] - 1:+.1%} against it")
    for name, wape, _mae, each, each_cpu in rows[4:]:
        print(f"{name.split(' (')[0]}: the estimate's WAPE is {rows[2][1] / wape - 1:+.1%} against it on the same "
              f"products; the estimate is {each / rows[0][3]:.0f}× faster ({each_cpu / rows[0][4]:.0f}× in CPU time)")
    replay_run(sorted(random.sample(ids, min(args.replay_sample, len(ids)))), origin, history, actual)
    speed(ids, origin, (seconds, cpu))
    connection.close()


if __name__ == "__main__":
    main()
