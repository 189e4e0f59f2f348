"""Projection benchmark: 100,000 products and 1,000,000 planned movements; rebuild, recompute, reads, freshness.

Run with ``make bench-projection``. It drops and recreates its own database (BENCH_DATABASE_URL), starts
Daphne and one Celery worker with production settings on BENCH_PORT, prints the figures and stops them.
"""
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", 100_000))
MOVEMENTS = int(os.environ.get("BENCH_MOVEMENTS", 1_000_000))
PORT = int(os.environ.get("BENCH_PORT", 8104))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sp_bench_projection")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
WARMUP = 20

ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "bench-projection-secret-key-not-for-production",
    "DATABASE_URL": DB_URL,
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "CACHE_KEY_PREFIX": "bench-projection",
    "CHANNEL_LAYER_PREFIX": "bench-projection.ws",
    "API_RATE_LIMIT": "1000000/min",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))

from bench.common import database_recreate as bench_database_recreate, manage  # noqa: E402


def run(*args: str) -> None:
    manage(*args, env=ENV)


def database_recreate() -> None:
    bench_database_recreate(DB_URL)


def data_load() -> None:
    """Products, stock rows with a receipt in the ledger, and planned movements from 5 days ago to 35 ahead."""
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO inventory_product (code, name, category, unit, low_stock_threshold, active, created_at, updated_at)
            SELECT 'BP-' || lpad(g::text, 6, '0'), 'Bench product ' || g, 'bench', 'un', 5 + g %% 20, true, now(), now()
            FROM generate_series(1, %s) g""", [PRODUCTS])
        conn.execute("""
            INSERT INTO inventory_stock (product_id, location_id, on_hand, reserved, version, updated_at)
            SELECT id, (SELECT min(id) FROM inventory_location), 20 + (random() * 400)::int, 0, 1, now() FROM inventory_product""")
        conn.execute("""
            INSERT INTO inventory_stockmovement (product_id, location_id, kind, quantity, on_hand_after, reason, reference, actor, created_at)
            SELECT product_id, (SELECT min(id) FROM inventory_location), 'receipt', on_hand, on_hand, 'bench', '', '', now() FROM inventory_stock""")
        conn.execute("""
            INSERT INTO projections_plannedmovement (product_id, location_id, date, direction, quantity, kind,
                                                     firmness, status, source, source_ref, note, created_at, updated_at)
            SELECT (SELECT min(id) FROM inventory_product) + (random() * (%s - 1))::int,
                   (SELECT min(id) FROM inventory_location),
                   current_date + (random() * 40)::int - 5,
                   CASE WHEN g %% 3 = 0 THEN 'in' ELSE 'out' END,
                   1 + (random() * 30)::int,
                   (ARRAY['purchase', 'production', 'order', 'picking', 'transfer'])[1 + g %% 5],
                   CASE WHEN g %% 7 = 0 THEN 'tentative' ELSE 'firm' END,
                   CASE WHEN g %% 50 = 0 THEN 'cancelled' ELSE 'open' END,
                   'bench', 'b' || g, '', now(), now()
            FROM generate_series(1, %s) g""", [PRODUCTS, MOVEMENTS])
        conn.execute("VACUUM ANALYZE")


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) >= 20 else max(samples)


def ms(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples) * 1000:.2f} ms, p95 {p95(samples) * 1000:.2f} ms"


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit(f"server on {url} did not start")


def main() -> None:
    started = time.monotonic()
    print(f"projection bench: {PRODUCTS} products, {MOVEMENTS} planned movements (database {DB_URL})")
    database_recreate()
    run("migrate", "--noinput")
    t = time.monotonic()
    data_load()
    print(f"data loaded in {time.monotonic() - t:.1f} s")

    t = time.monotonic()
    run("projections_rebuild")
    print(f"full rebuild (projections_rebuild, 2 workers): {time.monotonic() - t:.1f} s")
    # Steady state: autovacuum would have visited the rewritten summary table by now.
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE projections_projectionsummary")

    import django

    django.setup()
    import logging

    # Server time includes the JSON access-log line production writes for every request (INFO by
    # default); in process it is written to /dev/null so the figures do not depend on a terminal.
    logging.getLogger("stockpulse.access").setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))
    logging.getLogger("django.request").setLevel(logging.ERROR)
    import config.celery_app  # noqa: F401  (binds shared tasks to the configured broker)
    from django.test import Client

    from core.models import ApiClient, token_generate, token_hash
    from inventory.models import Product
    from inventory.services import stock_receive
    from projections.models import ProjectionSummary
    from projections.services import projection_pending_release, projection_recompute

    ids = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    codes = list(Product.objects.order_by("pk").values_list("code", flat=True))
    step = max(1, len(ids) // 500)

    samples = []
    for pid in ids[::step][:300]:
        t = time.perf_counter()
        projection_recompute(product_ids=[pid])
        samples.append(time.perf_counter() - t)
    print(f"one product's recompute (in process): {ms(samples)}")

    raw = token_generate()
    ApiClient.objects.create(name="bench-projection", scopes=["read", "reserve", "manage"],
                             token_hash=token_hash(raw), token_hint=raw[:10])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    at_risk = ProjectionSummary.objects.filter(stockout_date__isnull=False).count()
    print(f"summaries with a stockout in the horizon: {at_risk}")

    local = Client()
    # Warm-up, not sampled: the first requests of a process open its pooled connections and fill
    # per-process caches. Other codes than the sampled ones, so no sampled row is read twice.
    for code in codes[1::step][:WARMUP]:
        assert local.get(f"/api/v1/projections/{code}", **headers).status_code == 200
        assert local.get("/api/v1/projections/ruptures?days=7", **headers).status_code == 200
    single, ruptures, query = [], [], []
    for code in codes[::step][:500]:
        t = time.perf_counter()
        assert local.get(f"/api/v1/projections/{code}", **headers).status_code == 200
        single.append(time.perf_counter() - t)
    for _ in range(200):
        t = time.perf_counter()
        assert local.get("/api/v1/projections/ruptures?days=7", **headers).status_code == 200
        ruptures.append(time.perf_counter() - t)
    for n in range(100):
        start = (n * 100) % max(1, len(codes) - 100)
        batch = codes[start:start + 100]
        t = time.perf_counter()
        assert local.post("/api/v1/projections/query", {"codes": batch}, content_type="application/json",
                          **headers).status_code == 200
        query.append(time.perf_counter() - t)
    print(f"server time (Django in process, no network) single read: {ms(single)}")
    print(f"server time ruptures?days=7 (first 50): {ms(ruptures)}")
    print(f"server time query of 100 codes: {ms(query)}")

    procs = [
        subprocess.Popen([sys.executable, "-m", "core.daphne_main", "-v", "0", "-b", "127.0.0.1", "-p", str(PORT),
                          "config.asgi:application"], cwd=ROOT, env=ENV),
        subprocess.Popen([str(ROOT / ".venv/bin/celery"), "-A", "config.celery_app", "worker", "--loglevel=WARNING",
                          "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                         cwd=ROOT, env=ENV),
    ]
    try:
        base = f"http://127.0.0.1:{PORT}"
        wait_http(f"{base}/healthz")
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {raw}"
        for code in codes[1::step][:WARMUP]:
            assert http.get(f"{base}/api/v1/projections/{code}").status_code == 200
            assert http.get(f"{base}/api/v1/projections/ruptures?days=7").status_code == 200
        single_http, ruptures_http = [], []
        for code in codes[::step][:500]:
            t = time.perf_counter()
            assert http.get(f"{base}/api/v1/projections/{code}").status_code == 200
            single_http.append(time.perf_counter() - t)
        for _ in range(200):
            t = time.perf_counter()
            assert http.get(f"{base}/api/v1/projections/ruptures?days=7").status_code == 200
            ruptures_http.append(time.perf_counter() - t)
        print(f"HTTP round trip via Daphne single read: {ms(single_http)}")
        print(f"HTTP round trip via Daphne ruptures: {ms(ruptures_http)}")

        # The first build queued the events and alerts of every product entering the risk window
        # (Celery tasks on every queue; this one worker consumes them all): let it drain them first.
        broker = redis.Redis.from_url(REDIS_URL)
        t = time.monotonic()
        while any(broker.llen(queue) for queue in ("celery", "projections", "alerts")) and time.monotonic() - t < 600:
            time.sleep(0.5)
        print(f"worker drained the rebuild's risk events/alerts backlog in {time.monotonic() - t:.1f} s")
        # Warm the worker before measuring: its first task opens connections.
        stock_receive(code=codes[0], quantity=1)
        time.sleep(2)
        fresh = []
        for code, pid in list(zip(codes, ids))[1::max(1, len(ids) // 60)][:50]:
            projection_pending_release(product_ids=[pid])
            stock = stock_receive(code=code, quantity=3)
            expected = stock.on_hand - stock.reserved
            t = time.perf_counter()
            while time.perf_counter() - t < 10:
                body = http.get(f"{base}/api/v1/projections/{code}").json()
                if not body["stale"] and body["start_balance"] == expected:
                    break
                time.sleep(0.005)
            else:
                raise SystemExit(f"{code} never became fresh")
            fresh.append(time.perf_counter() - t)
        print(f"change -> fresh summary (stock change committed to fresh read via Celery): {ms(fresh)}, "
              f"max {max(fresh) * 1000:.1f} ms")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"bench finished in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
