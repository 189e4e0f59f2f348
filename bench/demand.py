"""Demand benchmark: forecast accuracy against baselines, recompute speed and read latency, on synthetic sales.

Run with ``make bench-demand``. It drops and recreates its own database (BENCH_DATABASE_URL), writes two years
of synthetic daily sales for BENCH_DEMAND_PRODUCTS products (weekday patterns, trend, promotions, stockout
runs), holds out the last 8 weeks and prints, against the true (uncensored) demand of those weeks:

- WAPE and MAE of the demand estimate (``projections/sql.py``), fitted once on the days before the holdout;
- the same for the naive "mean of the last 7 days" and for statsmodels' Holt-Winters (additive weekly
  season) on BENCH_DEMAND_LIBRARY_SAMPLE products, with both methods' time per product;
- the time of a full estimate of every product (batches of 500) and the p95 of one product's estimate +
  open suggestion read.
"""
import os
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = int(os.environ.get("BENCH_DEMAND_PRODUCTS", 10_000))
LIBRARY_SAMPLE = int(os.environ.get("BENCH_DEMAND_LIBRARY_SAMPLE", 500))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sp_bench_demand")
DAYS, HOLDOUT, BATCH = 730, 56, 500
TZ = "America/Sao_Paulo"
ENV = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_URL": DB_URL, "LOG_LEVEL": "WARNING"}
sys.path.insert(0, str(ROOT))

from bench.common import database_recreate, manage  # noqa: E402
from projections import sql  # noqa: E402  (plain SQL text: no Django setup needed)

TODAY = date.today()
FIRST = TODAY - timedelta(days=DAYS)
ORIGIN = TODAY - timedelta(days=HOLDOUT)  # the holdout's first day; the fit sees the days before it

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
INSERT INTO inventory_stockmovement (product_id, kind, quantity, on_hand_after, reason, reference, actor, created_at)
SELECT product_id, CASE WHEN out THEN 'adjustment' ELSE 'sale' END, CASE WHEN out THEN 0 ELSE -demand END,
       CASE WHEN out THEN 0 ELSE 1000 END, 'bench', '', '', (day + time '12:00') AT TIME ZONE %(tz)s
FROM bench_truth ORDER BY day, product_id
"""


def data_load() -> None:
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute("""
            INSERT INTO inventory_product (code, name, category, unit, low_stock_threshold, active,
                                           created_at, updated_at)
            SELECT 'BD-' || lpad(g::text, 6, '0'), 'Bench product ' || g, 'cat-' || g %% 20, 'un', 5, true, now(), now()
            FROM generate_series(1, %s) g""", [PRODUCTS])
        conn.execute("INSERT INTO inventory_stock (product_id, on_hand, reserved, version, updated_at) "
                     "SELECT id, 1000, 0, 1, now() FROM inventory_product")
        conn.execute(TRUTH_SQL, {"first": FIRST, "days": DAYS, "profiles": [float(f) for p in PROFILES for f in p]})
        conn.execute(LEDGER_SQL, {"tz": TZ})
        conn.execute("INSERT INTO projections_supplyterms (product_id, lead_time_days, pack_size, min_order, "
                     "updated_at) "
                     "SELECT id, 5, 6, 0, now() FROM inventory_product")
        conn.execute("VACUUM ANALYZE")


def demand_params(ids: list[int], today: date) -> dict:
    return {"ids": ids, "today": today, "tz": TZ, "window": 56, "backtest": 28, "alpha": 0.1, "prior": 2.0,
            "min_history": 14, "now": f"{today}T00:00:00Z"}


def estimate_all(conn, ids: list[int], today: date) -> float:
    """Estimate every product for ``today`` in batches of 500 (as the fallback does); return the seconds."""
    started = time.perf_counter()
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        with conn.transaction():
            conn.execute(sql.SESSION_SQL)
            short = [r[0] for r in conn.execute(sql.DEMAND_UPSERT_SQL, demand_params(batch, today)).fetchall()]
            if short:
                conn.execute(sql.DEMAND_CATEGORY_SQL, {**demand_params(short, today), "ids": short})
    return time.perf_counter() - started


def truth_by_product(conn) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """(sold per day before the holdout, true demand per holdout day) per product."""
    history: dict[int, list[int]] = {}
    actual: dict[int, list[int]] = {}
    rows = conn.execute("SELECT product_id, day, demand, out FROM bench_truth ORDER BY product_id, day")
    for pid, day, demand, out in rows:
        if day < ORIGIN:
            history.setdefault(pid, []).append(0 if out else demand)
        else:
            actual.setdefault(pid, []).append(demand)
    return history, actual


def scores(forecasts: dict[int, list[float]], actual: dict[int, list[int]]) -> tuple[float, float]:
    """(WAPE, MAE) over every product and holdout day."""
    errors = [abs(f - a) for pid, fc in forecasts.items() for f, a in zip(fc, actual[pid])]
    total = sum(a for pid in forecasts for a in actual[pid])
    return sum(errors) / total, sum(errors) / len(errors)


def ours(conn) -> dict[int, list[float]]:
    rows = conn.execute("SELECT product_id, daily_rate, weekday_factors FROM projections_demandestimate")
    days = [ORIGIN + timedelta(days=n) for n in range(HOLDOUT)]
    return {pid: [rate * factors[d.weekday()] for d in days] for pid, rate, factors in rows}


def naive(history: dict[int, list[int]]) -> dict[int, list[float]]:
    return {pid: [sum(sold[-7:]) / 7] * HOLDOUT for pid, sold in history.items()}


def holt_winters(history: dict[int, list[int]], sample: list[int]) -> tuple[dict[int, list[float]], float]:
    """statsmodels' Holt-Winters (additive level + weekly season) on the last 365 days; (forecasts, s/product)."""
    import warnings

    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    out = {}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pid in sample:
            series = [float(v) for v in history[pid][-365:]]
            fit = ExponentialSmoothing(series, trend=None, seasonal="add", seasonal_periods=7).fit()
            out[pid] = [max(0.0, float(v)) for v in fit.forecast(HOLDOUT)]
    return out, (time.perf_counter() - started) / len(sample)


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


def main() -> None:
    random.seed(42)
    print(f"{PRODUCTS:,} products, {DAYS} days of sales, the last {HOLDOUT} held out")
    database_recreate(DB_URL)
    manage("migrate", "--noinput", env=ENV)
    started = time.perf_counter()
    data_load()
    print(f"data written in {time.perf_counter() - started:.0f} s")
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM inventory_product ORDER BY id")]
        seconds = estimate_all(conn, ids, ORIGIN)
        history, actual = truth_by_product(conn)
        mine = ours(conn)
        sample = sorted(random.sample(ids, min(LIBRARY_SAMPLE, len(ids))))
        library, library_each = holt_winters(history, sample)
        rows = [("demand estimate (all)", *scores(mine, actual)),
                ("7-day mean (all)", *scores(naive(history), actual)),
                (f"demand estimate ({len(sample)} sampled)", *scores({p: mine[p] for p in sample}, actual)),
                (f"7-day mean ({len(sample)} sampled)", *scores({p: naive(history)[p] for p in sample}, actual)),
                (f"Holt-Winters ({len(sample)} sampled)", *scores(library, actual))]
        print(f"\n{'method':<34} {'WAPE':>7} {'MAE':>7}")
        for name, wape, mae in rows:
            print(f"{name:<34} {wape:>7.1%} {mae:>7.2f}")
        ours_each = seconds / len(ids)
        print(f"\nfull estimate of {len(ids):,} products: {seconds:.1f} s ({ours_each * 1000:.2f} ms/product, "
              f"≈ {ours_each * 100_000:.0f} s per 100,000)")
        print(f"Holt-Winters: {library_each * 1000:.1f} ms/product; the estimate is "
              f"{library_each / ours_each:.0f}× faster")
        print(f"one product's estimate + open suggestion read: p95 {read_p95(conn, ids):.2f} ms")


if __name__ == "__main__":
    main()
