"""Reservation benchmark: serves the app as `make run` does (Daphne, production settings) and drives it.

Modes (each --seconds long after a warm-up, --clients concurrent keep-alive connections):
  hot     one-unit reservations of one SKU
  spread  one-unit reservations over 1,000 SKUs
  carts   1-4 line carts (random order, 1-3 units) over 20 SKUs
plus a short "rush" check: 64 clients x 4 requests for the last 100 units of a SKU, and a
"reference" run of the hot mode with the fast path off (every request through the Django view):
the issue's yardstick for this kind of machine, "a plain DRF view with select_for_update under
Daphne does about 200 reservations/s on a hot SKU (p99 about 400 ms)". Machines of one kind differ
by a factor of several, so the reference says which the figures above came from. --no-reference
skips it.

Prints requests/s, p50/p99 latency, 2xx/409/5xx counts and an oversell check per mode.
Uses its own database (created if missing, data reloaded each run) and stops what it started.

--locations 10 spreads the stock over 10 locations (the default one and BENCH-L02..BENCH-L10, every
SKU stocked in full at each) and names a location in every request: hot reserves the hot SKU at
BENCH-L10 (one contended row, as with one location), hot10 at each client's own location, spread and
carts at a random one, the rush at BENCH-L10. --locations 1,10 runs both back to back (data reloaded,
server restarted) and prints the hot figure of each against the first; 1,10,1,10 alternates them.

    .venv/bin/python bench/reserve.py [--seconds 20] [--clients 64] [--workers 2] [--port 8101] [--locations 1,10]
"""
import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import celery_queues_empty, percentiles  # noqa: E402

HOT_CODE = "HOT-0001"
RUSH_CODE = "RUSH-0001"
RUSH_UNITS = 100
SPREAD_CODES = [f"SPREAD-{i:04d}" for i in range(1, 1001)]
CART_CODES = [f"CART-{i:02d}" for i in range(1, 21)]
# The default location's code as the server reads it (config/settings/base.py).
DEFAULT_PLACE = os.environ.get("DEFAULT_LOCATION_CODE", "PRINCIPAL").strip().upper()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Reservation benchmark under Daphne.")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 20)))
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", 2)),
                        help="Daphne processes sharing the port (scripts/serve.py)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", 8101)))
    parser.add_argument("--modes", default="hot,spread,carts")
    parser.add_argument("--db-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stockpulse_bench_reserve"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1")))
    parser.add_argument("--locations", default="1",
                        help="locations the stock is spread over; a list (1,10) runs each back to back")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip the hot-SKU run through the Django view only (fast path off)")
    return parser.parse_args()


def server_env(args, **overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": env.get("SECRET_KEY", "bench-secret-key-not-for-production-use-0123456789"),
        "DATABASE_URL": args.db_url,
        "REDIS_URL": args.redis_url,
        "CACHE_KEY_PREFIX": "bench-reserve",
        "CHANNEL_LAYER_PREFIX": "bench-reserve.ws",
        # Several processes must stay far below PostgreSQL's max_connections.
        "DB_POOL_MIN_SIZE": env.get("DB_POOL_MIN_SIZE", "2"),
        "DB_POOL_MAX_SIZE": env.get("DB_POOL_MAX_SIZE", "8"),
        "DJANGO_DEBUG": "false",
    })
    env.update(overrides)
    return env


def database_ensure(db_url: str) -> None:
    import psycopg
    from urllib.parse import urlparse

    url = urlparse(db_url)
    name = url.path.lstrip("/")
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def location_codes(count: int) -> list[str]:
    """The locations of a run over ``count`` of them: the default one, then BENCH-L02...; [] for one
    location (requests then name none, as before locations existed)."""
    return [] if count <= 1 else [DEFAULT_PLACE] + [f"BENCH-L{i:02d}" for i in range(2, count + 1)]


def data_load(args, places: list[str]) -> list[str]:
    """Reload products, stock (with receipt ledger rows) at every location of ``places`` (the default
    one when empty) and one API client per connection; return tokens."""
    from django.db import connection, transaction

    from core.models import ApiClient, token_generate, token_hash
    from inventory.models import Location, LocationKind, MovementKind, Product, Stock, StockMovement
    from inventory.selectors import location_default_id

    with connection.cursor() as cursor:
        # Webhook endpoints too: one left subscribed (by hand, or by another tool run on this database)
        # would send every reservation through the view to write its delivery, and measure that instead.
        cursor.execute("TRUNCATE reservations_reservationline, reservations_reservation, inventory_stockmovement,"
                       " inventory_stock, inventory_unifiedcode, inventory_product, webhooks_webhookdelivery,"
                       " webhooks_webhookendpoint CASCADE")
    ApiClient.objects.filter(name__startswith="bench-reserve-").delete()
    stock_for = {HOT_CODE: 1_000_000, RUSH_CODE: RUSH_UNITS}
    stock_for.update({code: 100_000 for code in SPREAD_CODES})
    stock_for.update({code: 1_000_000 for code in CART_CODES})
    with transaction.atomic():
        products = Product.objects.bulk_create(
            [Product(code=code, name=f"Bench {code}", category="bench", low_stock_threshold=5) for code in stock_for])
        location_ids = [location_default_id()]
        for code in places[1:]:
            location_ids.append(Location.objects.update_or_create(
                code=code, defaults={"name": f"Bench {code}", "kind": LocationKind.DARK_STORE, "active": True})[0].pk)
        Stock.objects.bulk_create([Stock(product=p, location_id=here, on_hand=stock_for[p.code], version=1)
                                   for p in products for here in location_ids])
        StockMovement.objects.bulk_create([
            StockMovement(product=p, location_id=here, kind=MovementKind.RECEIPT, quantity=stock_for[p.code],
                          on_hand_after=stock_for[p.code], reason="bench") for p in products for here in location_ids])
        tokens = [token_generate() for _ in range(args.clients)]
        ApiClient.objects.bulk_create([
            ApiClient(name=f"bench-reserve-{i:03d}", token_hash=token_hash(t), token_hint=t[:10],
                      scopes=["read", "reserve"]) for i, t in enumerate(tokens)])
    with connection.cursor() as cursor:
        # Planner statistics for the tables just loaded, as a live database has them. The reservation
        # tables start empty and grow during the run: analysed now they would claim to be empty, and
        # the foreign-key checks would scan them row by row all run long.
        cursor.execute("ANALYZE inventory_product, inventory_unifiedcode, inventory_location, inventory_stock,"
                       " inventory_stockmovement, core_apiclient")
    return tokens


def server_start(args, log_path: Path, *, append: bool = False, **env_overrides: str) -> subprocess.Popen:
    log = open(log_path, "a" if append else "w")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), "--host", "127.0.0.1",
         "--port", str(args.port), "--workers", str(args.workers)],
        env=server_env(args, **env_overrides), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early, see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"server did not answer /healthz within 60 s, see {log_path}")


def server_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def cpu_seconds(server: subprocess.Popen) -> dict[str, float]:
    """CPU time (user + system) used so far, from /proc: the server's Daphne processes, this
    process (the load generator), and every PostgreSQL and Redis server process on the machine
    (nothing else uses them during the bench)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = {"server": 0, "client": 0, "postgres": 0, "redis": 0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, _, rest = (entry / "stat").read_text().rpartition(")")
        except OSError:
            continue
        name, fields = head.partition("(")[2], rest.split()
        used = int(fields[11]) + int(fields[12])
        if int(fields[1]) == server.pid:  # ppid
            total["server"] += used
        elif int(entry.name) == os.getpid():
            total["client"] += used
        elif name == "postgres":
            total["postgres"] += used
        elif name == "redis-server":
            total["redis"] += used
    return {part: used / ticks for part, used in total.items()}


# ---------------------------------------------------------------- load generator

class Stats:
    def __init__(self):
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.units: dict[str, int] = {}
        # Units of requests whose answer was lost with their connection: granted or not, nobody knows.
        self.unknown_units: dict[str, int] = {}
        self.errors = 0
        self.first_error = ""
        self.answered = 0

    def summary(self, seconds: float) -> dict:
        p50, p99 = (None if value is None else round(value * 1000, 1)
                    for value in percentiles(self.latencies, 0.50, 0.99))
        total = len(self.latencies)
        return {
            "requests": total, "rps": round(total / seconds, 1), "p50_ms": p50, "p99_ms": p99,
            "2xx": sum(n for s, n in self.statuses.items() if 200 <= s < 300),
            "409": self.statuses.get(409, 0),
            "5xx": sum(n for s, n in self.statuses.items() if s >= 500),
            "other": sum(n for s, n in self.statuses.items() if not (200 <= s < 300 or s in (409,) or s >= 500)),
            "connection_errors": self.errors, "first_connection_error": self.first_error,
        }


async def http_post(reader, writer, path: str, token: str, body: bytes) -> tuple[int, bytes]:
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    payload = await reader.readexactly(length) if length else b""
    return status, payload


def request_for(mode: str, rng: random.Random, places: list[str], seed: int) -> tuple[str, dict[str, int], bytes]:
    """(path, {"CODE@LOCATION": units}, body) of one request; the cart names its location when the
    run has several (``places``), the default one otherwise."""
    if mode in ("hot", "hot10"):
        lines = {HOT_CODE: 1}
    elif mode == "spread":
        lines = {rng.choice(SPREAD_CODES): 1}
    else:
        lines = {code: rng.randint(1, 3) for code in rng.sample(CART_CODES, rng.randint(1, 4))}
    cart = {"lines": [{"code": c, "quantity": q} for c, q in lines.items()]}
    place = DEFAULT_PLACE
    if places:
        place = {"hot": places[-1], "hot10": places[seed % len(places)]}.get(mode) or rng.choice(places)
        cart["location"] = place
    return "/api/v1/reservations", {f"{c}@{place}": q for c, q in lines.items()}, json.dumps(cart).encode()


async def client_loop(port: int, token: str, mode: str, start: float, measure_from: float, stop: float,
                      stats: Stats, seed: int, places: list[str], max_requests: int | None = None) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        while time.monotonic() < stop and (max_requests is None or sent < max_requests):
            if mode == "rush":
                where = places[-1] if places else DEFAULT_PLACE
                path, lines = f"/stock/{RUSH_CODE}/reserve", {f"{RUSH_CODE}@{where}": 1}
                body = json.dumps({"quantity": 1, **({"location": where} if places else {})}).encode()
            else:
                path, lines, body = request_for(mode, rng, places, seed)
            began = time.monotonic()
            try:
                status, _ = await http_post(reader, writer, path, token, body)
            except (OSError, asyncio.IncompleteReadError) as exc:
                stats.errors += 1
                stats.first_error = stats.first_error or repr(exc)
                for code, quantity in lines.items():
                    stats.unknown_units[code] = stats.unknown_units.get(code, 0) + quantity
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            sent += 1
            stats.answered += 1
            if 200 <= status < 300:
                for code, quantity in lines.items():
                    stats.units[code] = stats.units.get(code, 0) + quantity
            if began >= measure_from:
                stats.latencies.append(time.monotonic() - began)
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
    finally:
        writer.close()


async def drive(args, tokens: list[str], mode: str, seconds: float, warmup: float, places: list[str],
                max_requests: int | None = None) -> Stats:
    stats = Stats()
    start = time.monotonic()
    measure_from, stop = start + warmup, start + warmup + seconds
    await asyncio.gather(*[
        client_loop(args.port, token, mode, start, measure_from, stop, stats, seed=i, places=places,
                    max_requests=max_requests)
        for i, token in enumerate(tokens)])
    return stats


# ---------------------------------------------------------------- checks

def counters() -> dict[str, tuple[int, int]]:
    """{"CODE@LOCATION": (on_hand, reserved)} of every stock row."""
    from inventory.models import Stock

    return {f"{code}@{place}": (on_hand, reserved) for code, place, on_hand, reserved in
            Stock.objects.values_list("product__code", "location__code", "on_hand", "reserved")}


def oversell_check(before: dict, after: dict, units: dict[str, int], unknown: dict[str, int]) -> dict:
    from reservations.selectors import reserved_drift

    problems = []
    for code, (on_hand, reserved) in after.items():
        if reserved > on_hand:
            problems.append(f"{code}: reserved {reserved} > on hand {on_hand}")
        delta, granted, lost = reserved - before[code][1], units.get(code, 0), unknown.get(code, 0)
        if not granted <= delta <= granted + lost:
            problems.append(f"{code}: reserved grew by {delta}, clients were granted {granted}"
                            + (f" (and {lost} unit(s) of lost answers)" if lost else ""))
    drift = reserved_drift()
    if drift:
        problems.append(f"reserved differs from active lines for {len(drift)} SKU(s)")
    return {"ok": not problems, "problems": problems[:5]}


def mode_run(args, tokens: list[str], server: subprocess.Popen, mode: str, label: str, places: list[str]) -> dict:
    """Drive one mode for --seconds, print its line and return its figures (oversell check included)."""
    before = counters()
    cpu_before = cpu_seconds(server)
    stats = asyncio.run(drive(args, tokens, mode, args.seconds, args.warmup, places))
    cpu_after = cpu_seconds(server)
    summary = stats.summary(args.seconds)
    # Warm-up requests used CPU too, so divide by every request answered, measured or not.
    answered = stats.answered
    summary["cpu_ms_per_request"] = {
        part: round((cpu_after[part] - cpu_before[part]) * 1000 / answered, 2) if answered else None
        for part in cpu_after}
    summary["server_cpu_ms_per_request"] = summary["cpu_ms_per_request"]["server"]
    summary["oversell_check"] = oversell_check(before, counters(), stats.units, stats.unknown_units)
    print(f"{label:>7}: {summary['rps']:>7} req/s  p50 {summary['p50_ms']} ms  p99 {summary['p99_ms']} ms  "
          f"2xx {summary['2xx']}  409 {summary['409']}  5xx {summary['5xx']}  other {summary['other']}  "
          f"conn-errors {summary['connection_errors']} {summary['first_connection_error']}  "
          f"server CPU {summary['server_cpu_ms_per_request']} ms/req  oversell check "
          f"{'OK' if summary['oversell_check']['ok'] else 'FAILED ' + str(summary['oversell_check'])}")
    print("         CPU ms/req: " + ", ".join(f"{part} {ms}" for part, ms in summary["cpu_ms_per_request"].items()))
    return summary


def locations_run(args, places: list[str], log_path: Path, *, append: bool) -> dict:
    """Reload the data over ``places``, serve it, drive every mode and the rush; the figures by mode."""
    tokens = data_load(args, places)
    where = f"{len(places)} locations, requests naming theirs" if places else "1 location, requests naming none"
    print(f"-- {where}")
    server = server_start(args, log_path, append=append)
    results = {}
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if places and "hot" in modes:
        modes.insert(modes.index("hot") + 1, "hot10")
    try:
        for mode in modes:
            results[mode] = mode_run(args, tokens, server, mode, mode, places)
        before = counters()
        stats = asyncio.run(drive(args, tokens, "rush", 30.0, 0.0, places, max_requests=4))
        granted = sum(stats.units.values())
        rush_ok = granted == RUSH_UNITS and oversell_check(before, counters(), stats.units, stats.unknown_units)["ok"]
        rush = stats.summary(1.0)
        rush_ok = rush_ok and rush["5xx"] == 0 and rush["other"] == 0 and not rush["connection_errors"]
        results["rush"] = {"requests": rush["requests"], "granted": granted, "units": RUSH_UNITS,
                           "409": rush["409"], "5xx": rush["5xx"], "other": rush["other"],
                           "connection_errors": rush["connection_errors"], "ok": rush_ok}
        print(f"   rush: {rush['requests']} requests for the last {RUSH_UNITS} units -> {granted} granted, "
              f"{rush['409']} got 409, 5xx {rush['5xx']}, other {rush['other']}, "
              f"conn-errors {rush['connection_errors']}: {'OK' if rush_ok else 'FAILED'}")
    finally:
        server_stop(server)
    return results


def main() -> int:
    args = parse_args()
    for key, value in server_env(args).items():
        if key in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CACHE_KEY_PREFIX",
                   "CHANNEL_LAYER_PREFIX", "DB_POOL_MIN_SIZE", "DB_POOL_MAX_SIZE"):
            os.environ[key] = value
    os.environ["LOG_LEVEL"] = "WARNING"
    counts = [int(count) for count in args.locations.split(",") if count.strip()]
    if not counts or min(counts) < 1:
        raise SystemExit("--locations: one or more counts of at least 1, e.g. 10 or 1,10")
    database_ensure(args.db_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                   env=server_env(args))
    import django

    django.setup()
    log_path = ROOT / "bench" / "reserve-server.log"
    print(f"bench-reserve: {args.clients} clients, {args.workers} Daphne process(es) on :{args.port}, "
          f"{args.seconds:g} s per mode after {args.warmup:g} s warm-up; server log {log_path.name}; "
          "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    runs = [(count, locations_run(args, location_codes(count), log_path, append=n > 0))
            for n, count in enumerate(counts)]
    # One run keeps the figures' old shape (mode -> figures); several are keyed "locations_N" (then
    # "locations_N_2" ... for a count run again: 1,10,1,10 alternates, so a drift of the machine's
    # load during the runs weighs on both counts alike).
    if len(runs) == 1:
        results = dict(runs[0][1])
    else:
        results = {}
        for count, run in runs:
            key, again = f"locations_{count}", 2
            while key in results:
                key, again = f"locations_{count}_{again}", again + 1
            results[key] = run
    hot_rps = {}
    for count, run in runs:
        if run.get("hot"):
            hot_rps.setdefault(count, []).append(run["hot"]["rps"])
    base = counts[0]
    for count, rates in hot_rps.items():
        if count == base or not hot_rps.get(base):
            continue
        mean, base_mean = sum(rates) / len(rates), sum(hot_rps[base]) / len(hot_rps[base])
        change = (mean / base_mean - 1) * 100 if base_mean else 0.0
        results[f"hot_change_locations_{count}_pct"] = round(change, 1)
        print(f"hot SKU at {count} locations: {mean:.1f}/s (runs {rates}) against {base_mean:.1f}/s "
              f"(runs {hot_rps[base]}) at {base}: {change:+.1f}% ({'within' if change >= -10 else 'OUTSIDE'} "
              "the -10% bound)")
    if args.reference:
        tokens = data_load(args, [])
        # A server of its own: the fast path is chosen when the ASGI application is built.
        server = server_start(args, log_path, append=True, RESERVATION_FAST_PATH="false")
        try:
            results["reference"] = mode_run(args, tokens, server, "hot", "view", [])
        finally:
            server_stop(server)
        print("         (reference: the hot SKU with every request through the Django view; the issue's "
              "machine did about 200/s, p99 about 400 ms)")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    celery_queues_empty(args.redis_url)  # the recomputes queued by the run: no worker of the bench takes them
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    figures = [r for _, run in runs for r in run.values()] + [results.get("reference") or {}]
    failed = any(not r.get("oversell_check", {"ok": r.get("ok", True)})["ok"] or r.get("5xx") for r in figures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
