"""Outage benchmark: how fast the served app refuses while PostgreSQL is down and heals when it is back, and how fast
scripts/serve.py replaces a Daphne process killed with SIGKILL, each under a load of mixed requests.

Run with ``make bench-outage``. It starts a PostgreSQL cluster of its own (initdb in a temporary directory, its own
port: core/tests/pg_cluster.py), loads it as `make run` does (migrate, collectstatic, seed_demo) plus one product
with plenty of stock, an API client per load client and a staff session, and serves it with scripts/serve.py
(production settings, its own Redis database and key prefixes). --clients keep-alive clients then send, each in
turn, a stock read (GET /api/v1/stock/{code}/), a reservation through the ASGI fast path (POST
/api/v1/reservations, no Idempotency-Key), the dashboard page (GET /dashboard/, staff session) and a WebSocket
ticket (POST /api/v1/ws-ticket), without pause (closed loop).

1. PostgreSQL outage, once per --pg-stops mode: ``fast`` (pg_ctl stop -m fast, an operator's restart) and ``kill``
   (SIGKILL to the postmaster and every backend, a crash). Prints the time from the stop to the first 503, the
   p50/p95/max latency of the refused requests, every outcome of the requests answered while it was down (the
   promise: 503 with Retry-After, no 500, nothing slower than 2 s), then, after --down-seconds, restarts the
   cluster and prints the time until each kind of request first succeeds and until every request does.
2. Daphne process killed, --kills times: SIGKILL to the serving process that has run longest, then the time until
   a process serves its socket again (its first request counted in its own metrics file: serve.py's spare, or
   with --no-spare a process started after the kill), the longest wait of a request sent meanwhile on a new
   connection (some land on the killed process's socket; /healthz every 20 ms) or a kept-alive one, and the
   requests that failed. Kills are QUICK_DEATH_SECONDS apart or more and each victim has run as long
   (scripts/keep_running.py): each is an ordinary crash, not a crash loop that serve.py backs off from, and the
   spare started at the previous kill has loaded. Ends with min/median/max.

Exits 1 when a promise was broken (a 5xx other than 503, a 503 without Retry-After or an answer slower than
2 s while PostgreSQL was down; a killed process not serving again within 2 s). Stops and removes what it
started; the load is bounded in time.

    .venv/bin/python bench/outage.py [--clients 8] [--workers 2] [--kills 5] [--pg-stops fast,kill]
"""
import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from prometheus_client.multiprocess import MultiProcessCollector

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import celery_queues_empty, percentiles  # noqa: E402
from core.tests.pg_cluster import PrivateCluster  # noqa: E402
from scripts.keep_running import QUICK_DEATH_SECONDS  # noqa: E402

CODE = "OUTAGE-0001"
DATABASE = "stockpulse_bench_outage"
PREFIX = "bench-outage"
PROMISE_SECONDS = 2.0  # issue #18: refused within 2 s while PostgreSQL is down; a dead process back within 2 s
KINDS = ("stock read", "reservation (fast path)", "dashboard page", "ws-ticket")

# Run by `manage.py shell` on the bench's cluster after seed_demo: prints the credentials as one JSON line.
SEED = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from core.services import api_client_create
from inventory.services import product_create, stock_receive
product_create(code="{code}", name="Bench outage", category="bench", unit="un", low_stock_threshold=5, aliases=[])
stock_receive(code="{code}", quantity=1_000_000, reason="bench outage", actor="system:bench")
tokens = [api_client_create(name=f"bench-outage-{{i:03d}}", scopes=["read", "reserve"])[1] for i in range({clients})]
staff = get_user_model().objects.create_user(username="bench-staff", password="bench-outage-not-a-secret",
                                             is_staff=True, is_superuser=True)
browser = Client()
browser.force_login(staff)
print(json.dumps({{"tokens": tokens, "session": browser.cookies["sessionid"].value}}))
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=int(os.environ.get("BENCH_CLIENTS", 8)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", os.cpu_count() or 2)),
                        help="Daphne processes of scripts/serve.py (make run: one per core)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", 8107)))
    parser.add_argument("--pg-stops", default="fast,kill", help="comma-separated: fast, kill; or none")
    parser.add_argument("--down-seconds", type=float, default=5.0, help="how long PostgreSQL stays down")
    parser.add_argument("--kills", type=int, default=5, help="Daphne processes killed, one after the other")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"))
    parser.add_argument("--no-demo", dest="demo", action="store_false", help="skip seed_demo (bench data only)")
    parser.add_argument("--spare", action=argparse.BooleanOptionalAction, default=True,
                        help="serve.py keeps a loaded spare process (WEB_SPARE, on as in make run)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    args.pg_stops = [mode.strip() for mode in args.pg_stops.split(",") if mode.strip() and mode.strip() != "none"]
    unknown = set(args.pg_stops) - {"fast", "kill"}
    if unknown:
        parser.error(f"unknown --pg-stops mode(s): {', '.join(sorted(unknown))}")
    return args


def server_env(args, database_url: str, metrics_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "bench-outage-secret-key-not-for-production-use-0123456789",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.redis_url,
        "CACHE_KEY_PREFIX": PREFIX,
        "CHANNEL_LAYER_PREFIX": f"{PREFIX}.ws",
        "DB_POOL_MIN_SIZE": os.environ.get("DB_POOL_MIN_SIZE", "2"),
        "DB_POOL_MAX_SIZE": os.environ.get("DB_POOL_MAX_SIZE", "8"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "WEB_SPARE": "1" if args.spare else "0",
        "LOG_LEVEL": "WARNING",
        "ACCESS_LOG_LEVEL": "WARNING",
        # Closed-loop clients get refusals in a few ms while PostgreSQL is down: they must meet the outage's
        # 503, not the per-client rate limit's 429.
        "API_RATE_LIMIT": "1000000/min",
    }


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode:
        raise SystemExit(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def data_load(args, env: dict[str, str]) -> dict:
    """What `make run` does before serving (migrate, collectstatic, seed_demo), then the bench's own rows."""
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "collectstatic", "--noinput", "-v", "0")
    if args.demo:
        manage(env, "seed_demo")
    out = manage(env, "shell", "-c", SEED.format(code=CODE, clients=args.clients))
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------- the server

def server_start(args, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = log_path.open("wb")  # a file, not a pipe: nobody reads it while the bench runs
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), "--host", "127.0.0.1", "--port", str(args.port),
         "--workers", str(args.workers)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve.py exited at start, see {log_path}")
        try:
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/healthz", timeout=5) as response:
                if response.status == 200 and len(children(process)) >= args.workers:
                    return process
        except OSError:
            pass
        time.sleep(0.2)
    server_stop(process)
    raise SystemExit(f"serve.py did not answer /healthz within 60 s, see {log_path}")


def server_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: serve.py and its Daphne children
            process.wait()


def children(process: subprocess.Popen) -> list[int]:
    """The pids of the Daphne processes serve.py runs now."""
    try:
        text = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
    except OSError:
        return []
    return sorted(int(pid) for pid in text.split())


def requests_counted(metrics_dir: Path, pid: int) -> float:
    """HTTP requests one Daphne process has counted so far, from its own metrics file (0 before it has one)."""
    path = metrics_dir / f"counter_{pid}.db"
    if not path.exists():
        return 0.0
    try:
        families = MultiProcessCollector.merge([str(path)])
    except (OSError, ValueError, struct.error):  # being created right now
        return 0.0
    return sum(sample.value for family in families for sample in family.samples
               if sample.name == "stockpulse_http_requests_total")


def postgres_kill(cluster: PrivateCluster) -> None:
    """A crash of the whole server: SIGKILL to the postmaster and all its processes at once."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------- the load

@dataclass
class Sample:
    kind: str
    started: float
    ended: float
    status: int | None  # None: no answer (connection lost or timed out)
    error: str = ""
    retry_after: bool = False

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    port: int
    tokens: list[str]
    session: str
    timeout: float = 10.0
    samples: list[Sample] = field(default_factory=list)
    probe_samples: list[Sample] = field(default_factory=list)
    stopping: bool = False
    probing: bool = False

    def request_for(self, kind: str, token: str, rng: random.Random) -> tuple[str, str, dict[str, str], bytes]:
        api = {"Authorization": f"Bearer {token}"}
        if kind == "stock read":
            return "GET", f"/api/v1/stock/{CODE}/", api, b""
        if kind == "reservation (fast path)":
            body = json.dumps({"lines": [{"code": CODE, "quantity": rng.randint(1, 2)}]}).encode()
            return "POST", "/api/v1/reservations", {**api, "Content-Type": "application/json"}, body
        if kind == "dashboard page":
            return "GET", "/dashboard/", {"Cookie": f"sessionid={self.session}", "Accept": "text/html"}, b""
        return "POST", "/api/v1/ws-ticket", api, b""

    async def client(self, index: int) -> None:
        rng = random.Random(index)
        token = self.tokens[index % len(self.tokens)]
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        turn = index
        while not self.stopping:
            kind = KINDS[turn % len(KINDS)]
            turn += 1
            method, path, headers, body = self.request_for(kind, token, rng)
            started = time.monotonic()
            try:
                if connection is None:
                    connection = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), self.timeout)
                status, retry_after, keep = await asyncio.wait_for(
                    http_request(*connection, method, path, headers, body), self.timeout - (time.monotonic() - started))
            except NO_ANSWER as exc:
                self.samples.append(Sample(kind, started, time.monotonic(), None, failure(exc)))
                connection_close(connection)
                connection = None
                await asyncio.sleep(0.01)  # a refused connection must not spin
                continue
            self.samples.append(Sample(kind, started, time.monotonic(), status, retry_after=retry_after))
            if not keep:
                connection_close(connection)
                connection = None

    async def probes(self, every: float = 0.02) -> None:
        """GET /healthz on a new connection every ``every`` seconds, whatever became of the earlier ones (open
        loop): the kernel hands each new connection to one of serve.py's listening sockets, so some land on the
        socket of a killed process and wait there until its successor serves."""
        pending: set[asyncio.Task] = set()
        while self.probing:
            task = asyncio.create_task(self.probe())
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(every)
        if pending:
            await asyncio.wait(pending, timeout=self.timeout + 1)

    async def probe(self) -> None:
        started = time.monotonic()
        connection = None
        try:
            connection = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), self.timeout)
            status, _, _ = await asyncio.wait_for(
                http_request(*connection, "GET", "/healthz", {"Connection": "close"}, b""),
                self.timeout - (time.monotonic() - started))
            self.probe_samples.append(Sample("healthz, new connection", started, time.monotonic(), status))
        except NO_ANSWER as exc:
            self.probe_samples.append(Sample("healthz, new connection", started, time.monotonic(), None,
                                             failure(exc)))
        finally:
            connection_close(connection)

    def between(self, start: float, end: float) -> list[Sample]:
        """Samples answered (or failed) at or after ``start`` that had been sent before ``end``."""
        return [s for s in self.samples if s.ended >= start and s.started < end]


# What a request can end in instead of an answer: a connection refused or cut, a reply cut short, no reply in time.
NO_ANSWER = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError)


def failure(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__


def connection_close(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    if connection is not None:
        connection[1].close()


async def http_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, path: str,
                       headers: dict[str, str], body: bytes) -> tuple[int, bool, bool]:
    """One HTTP/1.1 exchange on a kept-alive connection: (status, whether it had Retry-After, whether the
    connection may be used again)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if b"content-length" in fields:
        await reader.readexactly(int(fields[b"content-length"]))
    elif fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.read()  # delimited by the close
        return status, b"retry-after" in fields, False
    return status, b"retry-after" in fields, fields.get(b"connection", b"").lower() != b"close"


# ---------------------------------------------------------------- figures

def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def outcome(sample: Sample) -> str:
    if sample.status is None:
        return sample.error
    if sample.status == 503:
        return "503" if sample.retry_after else "503 without Retry-After"
    if 200 <= sample.status < 300:
        return "2xx"
    return str(sample.status)


def outcomes(samples: list[Sample]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for sample in samples:
        counted[outcome(sample)] = counted.get(outcome(sample), 0) + 1
    return dict(sorted(counted.items(), key=lambda item: -item[1]))


def shares(counted: dict[str, int]) -> str:
    total = sum(counted.values()) or 1
    return ", ".join(f"{name} {n} ({n * 100 / total:.1f}%)" for name, n in counted.items())


# ---------------------------------------------------------------- phases

async def warm_up(load: Load, seconds: float = 3.0) -> dict:
    start = time.monotonic()
    await asyncio.sleep(seconds)
    samples = load.between(start, time.monotonic())
    by_kind = {kind: [s for s in samples if s.kind == kind] for kind in KINDS}
    print(f"warm-up ({seconds:g} s, PostgreSQL up): {len(samples) / seconds:.0f} requests/s; "
          + "; ".join(f"{kind} p50 {ms(percentiles([s.latency for s in got], 0.5)[0])} {outcomes(got)}"
                      for kind, got in by_kind.items()))
    bad = [kind for kind, got in by_kind.items() if not got or any(outcome(s) != "2xx" for s in got)]
    if bad:
        raise SystemExit(f"not every request succeeded before the outage ({', '.join(bad)}): see the server log")
    return {"requests_per_second": round(len(samples) / seconds), "by_kind": {
        kind: {"p50_ms": round(percentiles([s.latency for s in got], 0.5)[0] * 1000, 1), "requests": len(got)}
        for kind, got in by_kind.items()}}


async def postgres_outage(load: Load, cluster: PrivateCluster, mode: str, down_seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(1.0)  # some normal traffic first
    stop_at = time.monotonic()
    if mode == "fast":
        await loop.run_in_executor(None, cluster.stop)
    else:
        postgres_kill(cluster)
    stopped_at = time.monotonic()
    await asyncio.sleep(down_seconds)
    restart_at = time.monotonic()
    await loop.run_in_executor(None, cluster.start)  # pg_ctl start -w: returns once it accepts connections
    accepting_at = time.monotonic()
    # Until every kind has succeeded again and a second has passed with no failure at all: each Daphne process
    # has a circuit of its own, so one process's success does not mean the other's requests succeed yet.
    back: dict[str, float] = {}
    last_failure = restart_at
    deadline = restart_at + 30
    seen = 0  # samples are appended as they end: only the new ones need a look each time
    while time.monotonic() < deadline:
        fresh, seen = load.samples[seen:], len(load.samples)
        for sample in fresh:
            if sample.started < restart_at:
                continue
            if outcome(sample) == "2xx":
                back[sample.kind] = min(back.get(sample.kind, sample.ended), sample.ended)
            else:
                last_failure = max(last_failure, sample.ended)
        if len(back) == len(KINDS) and time.monotonic() - last_failure >= 1.0:
            break
        await asyncio.sleep(0.05)
    end = time.monotonic()

    down = load.between(stop_at, restart_at)
    refused = [s for s in down if s.status == 503]
    first_503 = min((s.ended for s in refused), default=None)
    after = [s for s in load.between(restart_at, end) if s.started >= restart_at]
    first_back = min(back.values(), default=None)
    healed = len(back) == len(KINDS) and end - last_failure >= 1.0
    result = {
        "mode": mode,
        "stop_command_s": round(stopped_at - stop_at, 3),
        "first_503_s": None if first_503 is None else round(first_503 - stop_at, 3),
        "refused": len(refused),
        "refused_p50_ms": round(percentiles([s.latency for s in refused], 0.5)[0] * 1000, 1) if refused else None,
        "refused_p95_ms": round(percentiles([s.latency for s in refused], 0.95)[0] * 1000, 1) if refused else None,
        "refused_max_ms": round(max(s.latency for s in refused) * 1000, 1) if refused else None,
        "while_down": outcomes(down),
        "while_down_by_kind": {kind: outcomes([s for s in down if s.kind == kind]) for kind in KINDS},
        "slowest_while_down_ms": round(max((s.latency for s in down), default=0) * 1000, 1),
        "over_2s_while_down": sum(1 for s in down if s.latency > PROMISE_SECONDS),
        # Requests that need PostgreSQL yet succeeded after the stop: those it answered before the stop took hold.
        "database_2xx_after_stop": sum(1 for s in down if s.kind != "ws-ticket" and outcome(s) == "2xx"),
        "last_database_2xx_after_stop_s": round(max((s.ended for s in down if s.kind != "ws-ticket"
                                                     and outcome(s) == "2xx"), default=stop_at) - stop_at, 3),
        "first_503_by_kind_s": {kind: round(min(s.ended for s in refused if s.kind == kind) - stop_at, 3)
                                for kind in KINDS if any(s.kind == kind for s in refused)},
        "postgres_start_s": round(accepting_at - restart_at, 3),
        "first_success_s": None if first_back is None else round(first_back - restart_at, 3),
        "every_request_succeeds_s": round(last_failure - restart_at, 3) if healed else None,
        "first_success_by_kind_s": {kind: round(at - restart_at, 3) for kind, at in back.items()},
        "after_restart": outcomes(after),
        "after_restart_by_kind": {kind: outcomes([s for s in after if s.kind == kind]) for kind in KINDS},
        "last_refusal_after_restart_s": {
            kind: round(max(s.ended for s in after if s.kind == kind and outcome(s) != "2xx") - restart_at, 3)
            for kind in KINDS if any(s.kind == kind and outcome(s) != "2xx" for s in after)},
    }
    broken = [name for name in result["while_down"] if name not in ("503", "2xx")]
    broken += [name for name in result["after_restart"] if name not in ("503", "2xx")]
    result["promise_kept"] = not broken and result["over_2s_while_down"] == 0 and healed
    label = {"fast": "fast shutdown (pg_ctl stop -m fast)", "kill": "crash (SIGKILL to every PostgreSQL process)"}
    print(f"\nPostgreSQL {label[mode]}, down {down_seconds:g} s, then pg_ctl start:")
    print(f"  stop -> first 503: {ms(first_503 and first_503 - stop_at)} (the stop command took "
          f"{ms(stopped_at - stop_at)}); by kind: "
          + ", ".join(f"{kind} {ms(t)}" for kind, t in
                      ((k, v) for k, v in result["first_503_by_kind_s"].items())))
    refused_latencies = [s.latency for s in refused]
    print(f"  refused (503) requests: {len(refused)}, latency p50 {ms(percentiles(refused_latencies, 0.5)[0])}, "
          f"p95 {ms(percentiles(refused_latencies, 0.95)[0])}, max {ms(max(refused_latencies, default=None))}")
    print(f"  every request answered while down ({len(down)}): {shares(result['while_down'])}; slowest "
          f"{ms(max((s.latency for s in down), default=None))}, {result['over_2s_while_down']} over 2 s")
    for kind in KINDS:
        print(f"    {kind:<24} {shares(result['while_down_by_kind'][kind])}")
    print(f"  requests that need PostgreSQL answered 2xx after the stop: {result['database_2xx_after_stop']}, the last "
          f"{ms(result['last_database_2xx_after_stop_s'])} after it")
    print(f"  restart: PostgreSQL accepting after {ms(accepting_at - restart_at)}; first success after "
          f"{ms(first_back and first_back - restart_at)} ("
          + ", ".join(f"{kind} {ms(t)}" for kind, t in result["first_success_by_kind_s"].items())
          + f"); every request succeeds from {ms(result['every_request_succeeds_s'])} on (last failure by kind: "
          + (", ".join(f"{kind} {ms(t)}" for kind, t in result["last_refusal_after_restart_s"].items()) or "none")
          + ")")
    print(f"  requests sent after the restart until then + 1 s: {shares(result['after_restart'])}")
    print(f"  promise (503 + Retry-After within 2 s, no 5xx, heals by itself): "
          f"{'kept' if result['promise_kept'] else 'BROKEN'}")
    return result


async def process_kills(load: Load, server: subprocess.Popen, metrics_dir: Path, kills: int,
                        born: dict[int, float], spare: bool) -> dict:
    rounds = []
    print(f"\nDaphne process killed with SIGKILL under load, {kills} times, {QUICK_DEATH_SECONDS:g} s apart or more "
          f"(serve.py {'with' if spare else 'without'} a spare):")
    load.probing = True
    probing = asyncio.create_task(load.probes())
    await asyncio.sleep(1.0)
    round_start = time.monotonic()
    killed_at = 0.0
    for number in range(1, kills + 1):
        # The processes serving now (a spare waiting for a socket has counted no request); the oldest goes.
        now_children = children(server)
        serving_before = [pid for pid in now_children if requests_counted(metrics_dir, pid) > 0]
        for pid in serving_before:
            born.setdefault(pid, time.monotonic())
        victim = min(serving_before, key=lambda pid: born[pid])
        # An ordinary crash, not a crash loop: the victim has run QUICK_DEATH_SECONDS, and as long has passed
        # since the last kill (the spare started then has loaded by now).
        wait = max(born[victim] + QUICK_DEATH_SECONDS, killed_at + QUICK_DEATH_SECONDS) + 0.5 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        now_children = children(server)
        others = [pid for pid in serving_before if pid != victim]
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        started_at = serving_at = newcomer = None
        while time.monotonic() - killed_at < 30:
            current = children(server)
            if started_at is None and any(pid not in now_children for pid in current):
                started_at = time.monotonic()  # a process started after the kill: a new spare, or the replacement
            for pid in current:
                if pid not in serving_before and requests_counted(metrics_dir, pid) > 0:
                    newcomer, serving_at = pid, time.monotonic()
                    born[pid] = serving_at
            if serving_at is not None:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)
        end = time.monotonic()
        window = load.between(round_start, end)
        probes = [s for s in load.probe_samples if s.ended >= round_start and s.started < end]
        load_after = [s for s in window if s.started >= killed_at]
        probes_after = [s for s in probes if s.started >= killed_at]
        failed = [s for s in window + probes if outcome(s) != "2xx"]
        figures = {
            "victim": victim,
            "replaced_by": None if newcomer is None else "spare" if newcomer in now_children else "new process",
            "new_process_s": None if started_at is None else round(started_at - killed_at, 3),
            "serving_again_s": None if serving_at is None else round(serving_at - killed_at, 3),
            "longest_new_connection_wait_s": round(max((s.latency for s in probes_after), default=0), 3),
            "longest_kept_alive_wait_s": round(max((s.latency for s in load_after), default=0), 3),
            "waited_over_2s": sum(1 for s in load_after + probes_after if s.latency > PROMISE_SECONDS),
            "failed": len(failed),
            "failed_outcomes": outcomes(failed),
            "failed_sent_before_kill": sum(1 for s in failed if s.started < killed_at),
            "answered_meanwhile": sum(1 for s in window + probes if outcome(s) == "2xx" and killed_at <= s.ended
                                      and (serving_at is None or s.ended <= serving_at)),
            "others_alive": all(pid in children(server) for pid in others),
        }
        rounds.append(figures)
        print(f"  kill {number}: pid {victim}; a process started after {ms(figures['new_process_s'])}; the "
              f"{figures['replaced_by'] or 'replacement'} serving after {ms(figures['serving_again_s'])}; "
              "longest wait of a new connection "
              f"{ms(figures['longest_new_connection_wait_s'])}, of a kept-alive client "
              f"{ms(figures['longest_kept_alive_wait_s'])}, {figures['waited_over_2s']} over 2 s; "
              f"{figures['answered_meanwhile']} answered meanwhile; failed {figures['failed']} "
              f"{figures['failed_outcomes'] or ''} ({figures['failed_sent_before_kill']} sent before the kill); "
              f"others {'kept serving' if figures['others_alive'] else 'RESTARTED'}")
        round_start = end
    load.probing = False
    await probing

    def spread(key: str) -> dict:
        values = [r[key] for r in rounds if r[key] is not None]
        if not values:
            return {"min": None, "median": None, "max": None}
        return {"min": min(values), "median": statistics.median(values), "max": max(values)}

    summary = {key: spread(key) for key in ("new_process_s", "serving_again_s", "longest_new_connection_wait_s",
                                            "failed")}
    missing = sum(1 for r in rounds if r["serving_again_s"] is None)
    print("  min / median / max over the kills: "
          + "; ".join(f"{name} {fmt(summary[key]['min'])} / {fmt(summary[key]['median'])} / {fmt(summary[key]['max'])}"
                      for name, key, fmt in (("new process", "new_process_s", ms), ("serving", "serving_again_s", ms),
                                             ("longest wait of a new connection", "longest_new_connection_wait_s", ms),
                                             ("failed requests", "failed", lambda v: "-" if v is None else f"{v:g}"))))
    kept = not missing and summary["serving_again_s"]["max"] <= PROMISE_SECONDS \
        and all(r["others_alive"] for r in rounds)
    print(f"  promise (serving again within 2 s, the others untouched): "
          f"{'kept' if kept else 'BROKEN'}")
    return {"rounds": rounds, "summary": summary, "promise_kept": kept}


async def run_load(args, credentials: dict, cluster: PrivateCluster, server: subprocess.Popen,
                   metrics_dir: Path, born: dict[int, float]) -> dict:
    load = Load(port=args.port, tokens=credentials["tokens"], session=credentials["session"])
    clients = [asyncio.create_task(load.client(i)) for i in range(args.clients)]
    results: dict = {}
    try:
        results["warm_up"] = await warm_up(load)
        results["postgres"] = [await postgres_outage(load, cluster, mode, args.down_seconds) for mode in args.pg_stops]
        if args.kills:
            results["kills"] = await process_kills(load, server, metrics_dir, args.kills, born, args.spare)
    finally:
        load.stopping = True
        await asyncio.wait(clients, timeout=load.timeout + 1)
        for task in clients:
            task.cancel()
    results["requests"] = len(load.samples)
    return results


def redis_keys_forget(redis_url: str) -> None:
    """The bench's cache, rate-limit and ticket keys in its own Redis database (its prefix only)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(f"{PREFIX}*", count=1000):
            client.delete(key)
    finally:
        client.close()
    celery_queues_empty(redis_url)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} CPU ({model}), load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"


def main() -> int:
    args = parse_args()
    at_start = machine()
    print(f"bench-outage: {args.clients} clients, {args.workers} Daphne process(es) on :{args.port}; {at_start}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    workdir = Path(tempfile.mkdtemp(prefix="sp-bench-outage-"))
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    log_path = ROOT / "bench" / "outage-server.log"
    cluster = PrivateCluster()
    server = None
    try:
        cluster.init().start()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
        env = server_env(args, cluster.url(DATABASE), metrics_dir)
        started = time.monotonic()
        credentials = data_load(args, env)
        print(f"private PostgreSQL on :{cluster.port}, data loaded in {time.monotonic() - started:.1f} s "
              f"({'demo catalogue + ' if args.demo else ''}{CODE}); server log {log_path.relative_to(ROOT)}")
        server_started = time.monotonic()
        server = server_start(args, env, log_path)
        born = {pid: server_started for pid in children(server)}
        results = asyncio.run(run_load(args, credentials, cluster, server, metrics_dir, born))
        if server.poll() is not None:
            print(f"serve.py exited with {server.returncode} during the bench, see {log_path}")
            results["server_exited"] = server.returncode
    finally:
        if server is not None:
            server_stop(server)
        cluster.destroy()
        redis_keys_forget(args.redis_url)
        shutil.rmtree(workdir, ignore_errors=True)
    results["machine_at_start"], results["machine"] = at_start, machine()
    print(f"\n{results['requests']} requests in all; {machine()}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    kept = all(r["promise_kept"] for r in results["postgres"]) and results.get("kills", {}).get("promise_kept", True) \
        and "server_exited" not in results
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())
