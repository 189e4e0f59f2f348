"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 that records every call and answers as scripted,
and can have an outage: answer 5xx, go silent, or stop listening so connections are refused."""
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    method: str
    payload: dict[str, Any]
    at: float  # time.monotonic() when the request arrived
    status: int = 200  # 0: never answered (silent)


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None
    delay: float = 0.0


def ok(result: Any = True) -> Reply:
    return Reply(200, {"ok": True, "result": result})


def server_error() -> Reply:
    return Reply(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})


def too_many(retry_after: int) -> Reply:
    return Reply(429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                       "parameters": {"retry_after": retry_after}})


def forbidden() -> Reply:
    return Reply(403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})


def chat_not_found() -> Reply:
    return Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})


def parse_error() -> Reply:
    return Reply(400, {"ok": False, "error_code": 400,
                       "description": "Bad Request: can't parse entities: Unsupported start tag"})


def not_modified() -> Reply:
    return Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: message is not modified"})


def migrated(new_chat_id: int) -> Reply:
    return Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: group chat was upgraded",
                       "parameters": {"migrate_to_chat_id": new_chat_id}})


def slow(seconds: float) -> Reply:
    reply = ok()
    reply.delay = seconds
    return reply


@dataclass
class FakeTelegram:
    """Script answers per method with ``script(method, *replies)``; unscripted calls succeed like Telegram does."""

    token: str = "123:TEST"
    calls: list[Call] = field(default_factory=list)
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_message_id: int = 1000
    server: ThreadingHTTPServer | None = None
    # None, "5xx" (every call answered 503) or "silent" (read, held, the connection dropped unanswered).
    outage: str | None = None
    silent_seconds: float = 1.0
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, method: str, *replies: Reply) -> None:
        with self.lock:
            self.scripts.setdefault(method, []).extend(replies)

    def calls_to(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def delivered(self, method: str) -> list[Call]:
        """Calls that were answered 200, i.e. messages Telegram would show."""
        return [c for c in self.calls_to(method) if c.status == 200]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0, delivered: bool = True) -> list[Call]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self.delivered(method) if delivered else self.calls_to(method)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        return self.delivered(method) if delivered else self.calls_to(method)

    def _answer(self, method: str, payload: dict[str, Any]) -> Reply | None:
        if self.outage == "5xx":
            return Reply(503, {"ok": False, "error_code": 503, "description": "Service Unavailable"})
        if self.outage == "silent":
            return None
        with self.lock:
            queue = self.scripts.get(method)
            reply = queue.pop(0) if queue else None
            if reply is None:
                if method in ("sendMessage", "editMessageText"):
                    self.next_message_id += 1
                    message_id = payload.get("message_id") or self.next_message_id
                    reply = ok({"message_id": message_id, "chat": {"id": payload.get("chat_id")},
                                "text": payload.get("text")})
                elif method == "getUpdates":
                    reply = ok([])
                else:
                    reply = ok(True)
            elif reply.status == 200 and reply.body and reply.body.get("result") is True and method == "sendMessage":
                self.next_message_id += 1
                reply = Reply(200, {"ok": True, "result": {"message_id": self.next_message_id}}, reply.delay)
            return reply

    def start(self) -> "FakeTelegram":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    payload = json.loads(raw or b"{}")
                except ValueError:
                    payload = {}
                method = self.path.rsplit("/", 1)[-1]
                call = Call(method=method, payload=payload, at=time.monotonic())
                if not self.path.startswith(f"/bot{fake.token}/"):
                    reply = Reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                else:
                    reply = fake._answer(method, payload)
                call.status = reply.status if reply else 0
                with fake.lock:
                    fake.calls.append(call)
                if reply is None:
                    time.sleep(fake.silent_seconds)
                    self.close_connection = True
                    return
                if reply.delay:
                    time.sleep(reply.delay)
                body = json.dumps(reply.body or {}).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.handler = Handler
        self._listen()
        return self

    def _listen(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def go_down(self) -> None:
        """Stop listening: connections to the port are refused until ``come_back``."""
        self.stop()
        self.server = None

    def come_back(self) -> None:
        """Listen again on the same port and answer normally."""
        self.outage = None
        if self.server is None:
            self._listen()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
