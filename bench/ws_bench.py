"""Fan-out benchmark: N WebSocket clients, stock changed through the API at a steady rate, commit → receive latency.

Starts Daphne as `make run` does (production settings, its own database), connects the clients with
tickets, posts receipts at ``--rate`` per second, and reports latency percentiles from the event's
``sent_at`` (stamped right after commit) and ``at`` (stamped inside the transaction) to the moment
each client reads the frame, plus lost and duplicated deliveries. Stops everything it started.

    make bench-ws                      # 1,000 clients, 10 changes/s for 20 s
    .venv/bin/python bench/ws_bench.py --clients 1000 --rate 20 --seconds 20
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import requests
import websockets

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")


def env_for_server(args) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-ws-secret-key-not-for-production"),
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CHANNEL_LAYER_PREFIX": "bench-ws.ws",
        "CACHE_KEY_PREFIX": "bench-ws",
        "LOG_LEVEL": "WARNING",
        "API_RATE_LIMIT": "1000000/min",
        # Tickets for 1,000 clients are fetched up front; connecting them all takes longer than 30 s.
        "WS_TICKET_TTL_SECONDS": "600",
    }


SETUP = """
import django; django.setup()
from core.models import ApiClient, token_generate, token_hash
from inventory.models import Product
from inventory.services import product_create, stock_receive
n = {products}
for i in range(n):
    code = f"BENCH-{{i:04d}}"
    if not Product.objects.filter(code=code).exists():
        product_create(code=code, name=f"Bench product {{i}}", category=f"cat-{{i % 10}}")
        stock_receive(code=code, quantity=1000)
raw = token_generate()
ApiClient.objects.filter(name="bench-ws").delete()
ApiClient.objects.create(name="bench-ws", token_hash=token_hash(raw), token_hint=raw[:10], scopes=["read", "manage"])
print(raw)
"""


def prepare(args, env) -> str:
    subprocess.run([PY, "scripts/create_database.py"], cwd=ROOT, env=env, check=True)
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([PY, "-c", SETUP.format(products=args.products)], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def start_servers(args, env) -> list[subprocess.Popen]:
    """One Daphne as `make run` starts it, or ``--servers N`` sharing one listening socket (``--fd``)."""
    log_dir = ROOT / "bench" / "results"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "ws-daphne.log", "ab")
    daphne = [str(ROOT / ".venv" / "bin" / "daphne"), "-v", "0", "--proxy-headers"]
    procs = []
    if args.servers == 1:
        procs.append(subprocess.Popen(
            [*daphne, "-b", "127.0.0.1", "-p", str(args.port), "config.asgi:application"],
            cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=log,
        ))
    else:
        # The kernel hands each new connection to whichever process accepts it first.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", args.port))
        listener.listen(1024)
        # Non-blocking, or the process that loses the race for a connection blocks in accept().
        listener.setblocking(False)
        for _ in range(args.servers):
            procs.append(subprocess.Popen(
                [*daphne, "--fd", str(listener.fileno()), "config.asgi:application"],
                cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=log, pass_fds=[listener.fileno()],
            ))
        listener.close()
    base = f"http://127.0.0.1:{args.port}"
    for _ in range(300):
        try:
            if requests.get(base + "/healthz", timeout=1).ok:
                return procs
        except requests.RequestException:
            time.sleep(0.1)
    for proc in procs:
        proc.kill()
    raise SystemExit("daphne did not start")


def fanout_seconds(base: str) -> tuple[float, int]:
    """(sum, count) of stockpulse_ws_fanout_seconds in the process that answers /metrics."""
    total, count = 0.0, 0
    for line in requests.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith("stockpulse_ws_fanout_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("stockpulse_ws_fanout_seconds_count"):
            count = int(float(line.split()[-1]))
    return total, count


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---- client processes ----

async def _client(base_ws: str, origin: str, ticket: str, ready: asyncio.Event, counter: list, records: list,
                  stop: asyncio.Event, gate: asyncio.Semaphore):
    # Daphne drops a handshake its application has not accepted within 5 s: keep few in flight.
    await gate.acquire()
    async with websockets.connect(base_ws, origin=origin, subprotocols=["stockpulse.v1", f"ticket.{ticket}"],
                                  max_queue=None, ping_interval=None, compression=None,
                                  open_timeout=120) as ws:
        hello = json.loads(await ws.recv())
        gate.release()
        assert hello["type"] == "hello", hello
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        while not stop.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except asyncio.TimeoutError:
                continue
            now = time.time()
            if '"stock.changed"' not in text:
                continue
            ev = json.loads(text)
            records.append((ev["code"], ev["version"], now - datetime.fromisoformat(ev["sent_at"]).timestamp(),
                            now - datetime.fromisoformat(ev["at"]).timestamp()))


def client_process(base_ws, origin, tickets, ready_q, go_stop_q, result_q):
    async def main():
        ready, stop, gate = asyncio.Event(), asyncio.Event(), asyncio.Semaphore(20)
        counter = [0, len(tickets)]
        per_client: list[list] = [[] for _ in tickets]
        tasks = []
        for i, t in enumerate(tickets):
            tasks.append(asyncio.create_task(_client(base_ws, origin, t, ready, counter, per_client[i], stop, gate)))
        done, _ = await asyncio.wait([asyncio.create_task(ready.wait()), *tasks], timeout=240,
                                     return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed or not ready.is_set():
            raise SystemExit(f"clients failed to connect: {failed[0].exception() if failed else 'timeout'}")
        ready_q.put(len(tickets))
        await asyncio.get_running_loop().run_in_executor(None, go_stop_q.get)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        result_q.put(per_client)

    asyncio.run(main())


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="stock changes per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--servers", type=int, default=1, help="Daphne processes sharing the port")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_WS_PORT", 8102)))
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_WS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stockpulse_bench_ws"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    env = env_for_server(args)
    print(f"preparing database {args.database_url.rsplit('/', 1)[-1]} ...", flush=True)
    token = prepare(args, env)
    servers = start_servers(args, env)
    procs = []
    try:
        base = f"http://127.0.0.1:{args.port}"
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        tickets = [http.post(base + "/api/v1/ws-ticket", timeout=10).json()["ticket"] for _ in range(args.clients)]
        ready_q, result_q = multiprocessing.Queue(), multiprocessing.Queue()
        stop_qs = []
        for i in range(args.procs):
            stop_q = multiprocessing.Queue()
            p = multiprocessing.Process(target=client_process, args=(
                f"ws://127.0.0.1:{args.port}/ws/stock/", base, tickets[i::args.procs], ready_q, stop_q, result_q))
            p.start()
            procs.append(p)
            stop_qs.append(stop_q)
        connected = sum(ready_q.get(timeout=180) for _ in procs)
        print(f"{connected} clients connected; changing stock at {args.rate}/s for {args.seconds}s", flush=True)
        time.sleep(1)

        expected: set[tuple[str, int]] = set()
        errors = 0
        interval, n = 1.0 / args.rate, int(args.rate * args.seconds)
        start = time.monotonic()
        for i in range(n):
            target = start + i * interval
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            code = f"BENCH-{i % args.products:04d}"
            r = http.post(f"{base}/api/v1/stock/{code}/movements", json={"kind": "receipt", "quantity": 1}, timeout=10)
            if r.status_code == 201:
                expected.add((code, r.json()["stock"]["version"]))
            else:
                errors += 1
        achieved = n / (time.monotonic() - start)
        time.sleep(2)
        fanout_sum, fanout_count = fanout_seconds(base)
        for q in stop_qs:
            q.put("stop")
        results = [result_q.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for server in servers:
            stop_server(server)

    lat_sent, lat_at, lost, dups, foreign = [], [], 0, 0, 0
    for per_client in results:
        for records in per_client:
            seen = set()
            for code, version, d_sent, d_at in records:
                key = (code, version)
                if key not in expected:
                    foreign += 1
                    continue
                if key in seen:
                    dups += 1
                    continue
                seen.add(key)
                lat_sent.append(d_sent * 1000)
                lat_at.append(d_at * 1000)
            lost += len(expected - seen)
    ms = lambda v: f"{v:7.1f} ms"  # noqa: E731
    print(f"\nclients {args.clients}, changes {len(expected)} ok / {errors} failed, achieved {achieved:.1f}/s")
    print(f"deliveries expected {len(expected) * args.clients}, received {len(lat_sent)}, "
          f"lost {lost}, duplicated {dups}, unexpected {foreign}")
    print(f"commit → client (sent_at): p50 {ms(pct(lat_sent, 50))}  p99 {ms(pct(lat_sent, 99))}  max {ms(max(lat_sent or [0]))}")
    print(f"in-transaction stamp (at) → client: p50 {ms(pct(lat_at, 50))}  p99 {ms(pct(lat_at, 99))}  max {ms(max(lat_at or [0]))}")
    if fanout_count:
        print(f"server fan-out ({'one of the processes' if args.servers > 1 else 'Daphne'}): "
              f"{fanout_count} batches, mean {ms(fanout_sum / fanout_count * 1000)} per batch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
