"""Fan-out benchmark: N WebSocket clients, stock changed through the API at a steady rate, commit → receive latency.

Starts the service as `make run` serves it (scripts/serve.py: one Daphne process per core on the
port, production settings, its own database), connects the clients with tickets, posts receipts at
``--rate`` per second, and reports latency percentiles from the event's ``sent_at`` (stamped right
after commit) and ``at`` (stamped inside the transaction) to the moment each client reads the
frame, plus lost and duplicated deliveries. Stops everything it started.

    make bench-ws                      # 1,000 clients, 10 changes/s for 20 s
    .venv/bin/python bench/ws_bench.py --clients 1000 --rate 20 --seconds 20
"""
import argparse
import base64
import json
import multiprocessing
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")
sys.path.insert(0, str(ROOT))

from bench.common import celery_queues_empty, percentiles  # noqa: E402


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
        "CHANNEL_LAYER_BACKEND": args.layer,
        # The servers' metrics files, read after the run for each process's fan-out time.
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-ws-metrics-"),
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
    """The service as `make run` serves it: scripts/serve.py, ``--servers`` Daphne processes on the port."""
    log_dir = ROOT / "bench" / "results"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "ws-daphne.log", "ab")
    procs = [subprocess.Popen(
        [PY, "scripts/serve.py", "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.servers)],
        cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=log,
    )]
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


def fanout_per_process(metrics_dir: str) -> list[tuple[float, int]]:
    """(sum, count) of stockpulse_ws_fanout_seconds for each server process.

    /metrics sums the processes (prometheus_client's multiprocess mode), so each process's share is
    read from its own file in the metrics directory the bench gave the servers.
    """
    from prometheus_client.multiprocess import MultiProcessCollector

    figures = []
    for path in sorted(Path(metrics_dir).glob("histogram_*.db")):
        samples = {s.name: s.value for m in MultiProcessCollector.merge([str(path)], accumulate=True)
                   if m.name == "stockpulse_ws_fanout_seconds" for s in m.samples if not s.labels.get("le")}
        if samples.get("stockpulse_ws_fanout_seconds_count"):
            figures.append((samples["stockpulse_ws_fanout_seconds_sum"],
                            int(samples["stockpulse_ws_fanout_seconds_count"])))
    return figures


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---- client processes ----
#
# 1,000 clients receiving 10,000 frames a second share the 2 cores with the server, so a client costs
# as little as it can: a blocking handshake, then one epoll loop per process that reads each socket,
# notes the time its bytes came off the socket, splits frames and answers Daphne's pings. JSON is
# parsed only after the run. In production the clients are on other machines: here they must take
# as little from the server as they can without changing what is measured.


class BenchClient:
    """One WebSocket client's socket and frame parser; every text frame kept as (receive time, payload)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()
        self.frames: list[tuple[float, bytes]] = []

    def read(self) -> None:
        data = self.sock.recv(1 << 16)
        now = time.time()
        if not data:
            raise ConnectionError("server closed the socket")
        self.buffer += data
        self.split_frames(now)

    def split_frames(self, now: float) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start:start + length])
            del buffer[:start + length]
            if opcode == 0x1:
                self.frames.append((now, payload))
            elif opcode == 0x9:
                self.sock.sendall(masked_frame(0xA, payload))
            elif opcode == 0x8:
                raise ConnectionError(f"server closed the WebSocket: {payload!r}")


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A final client frame (clients must mask, RFC 6455 section 5.3); only short control frames here."""
    mask = os.urandom(4)
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def client_connect(port: int, origin: str, ticket: str) -> BenchClient:
    """Handshake with a ticket and read the ``hello``; returns the client with its socket non-blocking."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/stock/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Origin: {origin}\r\nSec-WebSocket-Protocol: stockpulse.v1, ticket.{ticket}\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        response += chunk
    head, _, rest = response.partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.decode("latin-1"))
    client = BenchClient(sock)
    client.buffer += rest
    client.split_frames(time.time())
    while not client.frames:
        client.read()
    hello = json.loads(client.frames.pop(0)[1])
    assert hello["type"] == "hello", hello
    sock.setblocking(False)
    return client


def client_process(port, origin, tickets, ready_q, go_stop_q, result_q):
    # On this machine the clients share 2 cores with the server they measure; by default each frame
    # sent wakes a client that preempts the server in the middle of its fan-out (a context switch
    # per frame on both sides). SCHED_BATCH clients never preempt on wake-up: they still read every
    # frame as soon as they run, and the receive time is still taken when the bytes are read.
    if hasattr(os, "SCHED_BATCH"):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    try:
        clients = {c.sock.fileno(): c for c in (client_connect(port, origin, t) for t in tickets)}
    except Exception as exc:
        raise SystemExit(f"clients failed to connect: {exc!r}")
    poller = select.epoll()
    for fd in clients:
        poller.register(fd, select.EPOLLIN)
    ready_q.put(len(clients))
    cpu_started = time.process_time()
    while go_stop_q.empty():
        for fd, _ in poller.poll(0.2):
            clients[fd].read()
    cpu_seconds = time.process_time() - cpu_started
    for client in clients.values():
        client.sock.close()
    result_q.put((cpu_seconds, [events_of(client.frames) for client in clients.values()]))


def events_of(frames: list[tuple[float, bytes]]) -> list[tuple[str, int, float, float]]:
    """(code, version, seconds since sent_at, seconds since at) of every stock.changed frame."""
    records = []
    for received, payload in frames:
        if b'"stock.changed"' not in payload:
            continue
        ev = json.loads(payload)
        records.append((ev["code"], ev["version"], received - datetime.fromisoformat(ev["sent_at"]).timestamp(),
                        received - datetime.fromisoformat(ev["at"]).timestamp()))
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="stock changes per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--servers", type=int, default=os.cpu_count() or 1,
                        help="Daphne processes on the port (default: one per core, as `make run`)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_WS_PORT", 8102)))
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_WS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stockpulse_bench_ws"))
    # A Redis database of its own: on `make run`'s (0) the bench's queued tasks would reach its workers.
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"))
    parser.add_argument("--layer", choices=["pubsub", "core"], default=os.environ.get("CHANNEL_LAYER_BACKEND", "pubsub"),
                        help="channel layer the servers use (CHANNEL_LAYER_BACKEND): Redis Pub/Sub or channels-redis core")
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
                args.port, base, tickets[i::args.procs], ready_q, stop_q, result_q))
            p.start()
            procs.append(p)
            stop_qs.append(stop_q)
        connected = sum(ready_q.get(timeout=180) for _ in procs)
        print(f"{connected} clients connected; changing stock at {args.rate}/s for {args.seconds}s", flush=True)
        time.sleep(1)

        expected: set[tuple[str, int]] = set()
        errors = 0
        interval, n = 1.0 / args.rate, int(args.rate * args.seconds)
        load_before = os.getloadavg()
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
        load_after = os.getloadavg()
        time.sleep(2)
        fanouts = fanout_per_process(env["PROMETHEUS_MULTIPROC_DIR"])
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
        shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
        celery_queues_empty(args.redis_url)

    lat_sent, lat_at, lost, dups, foreign = [], [], 0, 0, 0
    client_cpu = sum(cpu for cpu, _ in results)
    for _, per_client in results:
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
    ms = lambda v: f"{float('nan') if v is None else v:7.1f} ms"  # noqa: E731  (nan: no deliveries at all)
    print(f"\nclients {args.clients}, changes {len(expected)} ok / {errors} failed, achieved {achieved:.1f}/s, "
          f"channel layer {args.layer}")
    print(f"deliveries expected {len(expected) * args.clients}, received {len(lat_sent)}, "
          f"lost {lost}, duplicated {dups}, unexpected {foreign}")
    sent_p50, sent_p99 = percentiles(lat_sent, 0.5, 0.99)
    at_p50, at_p99 = percentiles(lat_at, 0.5, 0.99)
    print(f"commit → client (sent_at): p50 {ms(sent_p50)}  p99 {ms(sent_p99)}  max {ms(max(lat_sent or [0]))}")
    print(f"in-transaction stamp (at) → client: p50 {ms(at_p50)}  p99 {ms(at_p99)}  max {ms(max(lat_at or [0]))}")
    print(f"client processes: {args.procs}, CPU while the stock changed {client_cpu:.1f} s in all")
    for total, count in fanouts:
        if count:
            print(f"server fan-out, one of {args.servers} Daphne process(es): {count} batches, "
                  f"mean {ms(total / count * 1000)} per batch")
    print("load average (1, 5, 15 min) before / after the run: "
          + " / ".join(", ".join(f"{v:.2f}" for v in load) for load in (load_before, load_after)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
