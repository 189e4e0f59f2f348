"""Telegram alert benchmark: 100 threshold crossings pushed through the API, commit → fake Bot API receipt.

Run with ``make bench-telegram``. It recreates its own database (BENCH_DATABASE_URL), starts a fake Telegram
Bot API on 127.0.0.1:BENCH_FAKE_PORT, Daphne on BENCH_PORT, the two Celery workers of the Procfile and one beat with production
settings, pushes the crossings, prints p50/p99 and stops everything it started.
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_PORT", 8103))
FAKE_PORT = int(os.environ.get("BENCH_FAKE_PORT", 8113))
CROSSINGS = int(os.environ.get("BENCH_CROSSINGS", 100))
DRIVERS = int(os.environ.get("BENCH_DRIVERS", 10))
PACE = float(os.environ.get("BENCH_PACE_SECONDS", 0.1))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sp_bench_tg")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
TOKEN = "424242:BENCH"

ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "bench-telegram-secret-key-not-for-production",
    "DATABASE_URL": DB_URL,
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "CACHE_KEY_PREFIX": "bench-telegram",
    "CHANNEL_LAYER_PREFIX": "bench-telegram.ws",
    "API_RATE_LIMIT": "1000000/min",
    "LOG_LEVEL": "WARNING",
    "TELEGRAM_API_BASE": f"http://127.0.0.1:{FAKE_PORT}",
    "TELEGRAM_BOT_TOKEN": TOKEN,
    "ALERT_SWEEP_EVERY_SECONDS": "2",
}
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))

from bench.common import database_recreate as bench_database_recreate, manage, percentiles  # noqa: E402

CODE = re.compile(r"BT-\d{4}")
receipts: dict[str, float] = {}
calls: list[str] = []
lock = threading.Lock()


class FakeTelegram(BaseHTTPRequestHandler):
    """Records when each product code first reaches "Telegram" and answers like the Bot API."""

    counter = 0

    def do_POST(self):  # noqa: N802
        at = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.loads(body or b"{}")
        method = self.path.rsplit("/", 1)[-1]
        with lock:
            calls.append(method)
            FakeTelegram.counter += 1
            message_id = FakeTelegram.counter
            for line in payload.get("text", "").splitlines():
                # Substitute suggestions name other products: only the alerted product counts as received.
                if not line.startswith(("Substitutos", "Substitutes")):
                    for code in CODE.findall(line):
                        receipts.setdefault(code, at)
        answer = json.dumps({"ok": True, "result": {"message_id": message_id}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def run(*args: str) -> None:
    manage(*args, env=ENV)


def database_recreate() -> None:
    bench_database_recreate(DB_URL)


def redis_keys_clear() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for pattern in ("bench-telegram*", "celery*", "_kombu*", "unacked*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    client.close()


def wait_http(url: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


# The Celery queues (config/settings/base.py, CELERY_TASK_QUEUES).
QUEUES = ("celery", "projections", "alerts", "orders")


def queue_drain(timeout: float = 60) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    end = time.monotonic() + timeout
    idle = 0
    while time.monotonic() < end and idle < 5:
        idle = idle + 1 if not any(client.llen(queue) for queue in QUEUES) else 0
        time.sleep(0.2)
    client.close()


def main() -> None:
    print(f"telegram bench: {CROSSINGS} crossings, {DRIVERS} drivers, one crossing every {PACE * 1000:.0f} ms")
    database_recreate()
    redis_keys_clear()
    run("migrate", "--noinput")

    import django

    django.setup()
    import logging

    logging.getLogger("django.request").setLevel(logging.ERROR)
    from core.models import ApiClient, token_generate, token_hash
    from inventory.services import product_create, stock_receive
    from notifications.models import AlertOutbox, Driver, Subscription

    categories = [f"cat{n}" for n in range(DRIVERS)]
    codes = []
    for n in range(CROSSINGS):
        code = f"BT-{n:04d}"
        product_create(code=code, name=f"Bench product {n}", category=categories[n % DRIVERS], low_stock_threshold=5)
        stock_receive(code=code, quantity=10, reason="bench")
        codes.append(code)
    for n, category in enumerate(categories):
        Driver.objects.create(name=f"Driver {n}", chat_id=900_000 + n, subscription=Subscription.CATEGORIES,
                              categories=[category])
    raw = token_generate()
    ApiClient.objects.create(name="bench", token_hash=token_hash(raw), token_hint=raw[:10],
                             scopes=["read", "manage"])
    from django.db import connections

    connections.close_all()

    server = ThreadingHTTPServer(("127.0.0.1", FAKE_PORT), FakeTelegram)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "core.daphne_main", "-v", "0", "-b", "127.0.0.1", "-p", str(PORT), "config.asgi:application"],
            cwd=ROOT, env=ENV, start_new_session=True))
        # The two workers of the Procfile: the default and projections queues, and alerts on their own.
        for queues, name in (("celery,projections", "bench-default"), ("alerts", "bench-alerts")):
            procs.append(subprocess.Popen(
                [str(ROOT / ".venv/bin/celery"), "-A", "config.celery_app", "worker", "-Q", queues,
                 "--concurrency=2", "-n", f"{name}@%h",
                 f"--loglevel={os.environ.get('BENCH_WORKER_LOGLEVEL', 'WARNING')}"],
                cwd=ROOT, env=ENV, start_new_session=True))
        procs.append(subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "config.celery_app", "beat", "--loglevel=WARNING",
             "--schedule", "/tmp/bench-telegram-beat-schedule"], cwd=ROOT, env=ENV, start_new_session=True))
        wait_http(f"http://127.0.0.1:{PORT}/healthz")
        queue_drain()  # the set-up's own after-commit tasks (projections and such) must not count

        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {raw}"
        sent_at: dict[str, tuple[float, float]] = {}
        for code in codes:
            started = time.time()
            response = session.post(f"http://127.0.0.1:{PORT}/api/v1/stock/{code}/movements",
                                    json={"kind": "adjustment", "quantity": -6, "reason": "bench"}, timeout=10)
            answered = time.time()
            if response.status_code != 201:
                raise RuntimeError(f"{code}: {response.status_code} {response.text[:200]}")
            sent_at[code] = (started, answered)
            time.sleep(max(0.0, PACE - (answered - started)))

        end = time.monotonic() + 30
        while time.monotonic() < end and len(receipts) < len(codes):
            time.sleep(0.1)

        upper = [receipts[c] - sent_at[c][0] for c in codes if c in receipts]
        lower = [receipts[c] - sent_at[c][1] for c in codes if c in receipts]
        api = [sent_at[c][1] - sent_at[c][0] for c in codes]
        print(f"received {len(receipts)}/{len(codes)} crossings in {calls.count('sendMessage')} sendMessage calls "
              f"({len(calls)} Bot API calls in all)")
        if upper:
            print(f"commit → receipt, upper bound (from request start): p50 {statistics.median(upper) * 1000:.0f} ms, "
                  f"p99 {percentiles(upper, 0.99)[0] * 1000:.0f} ms, max {max(upper) * 1000:.0f} ms")
            print(f"commit → receipt, lower bound (from API response):  p50 {statistics.median(lower) * 1000:.0f} ms, "
                  f"p99 {percentiles(lower, 0.99)[0] * 1000:.0f} ms, max {max(lower) * 1000:.0f} ms")
        if upper:
            print(f"within 1 s: {sum(v <= 1 for v in upper)}/{len(upper)}, within 2 s: {sum(v <= 2 for v in upper)}/"
                  f"{len(upper)} (upper bound)")
        print(f"API movement POST: p50 {statistics.median(api) * 1000:.0f} ms, "
              f"p99 {percentiles(api, 0.99)[0] * 1000:.0f} ms")
        time.sleep(1)  # the worker marks rows sent just after the fake answered
        states = dict(AlertOutbox.objects.values_list("state").annotate(n=django.db.models.Count("id")))
        print(f"outbox rows by state: {states}")
    finally:
        for proc in procs:
            proc.terminate()  # the main process only: Celery then shuts its pool down warmly
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
