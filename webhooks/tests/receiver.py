"""A real HTTP webhook receiver on 127.0.0.1 for tests: verifies signatures, answers scripted statuses, and can
hold its answers (a slow receiver) until the test opens its gate."""
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, signature_verify


@dataclass
class Received:
    event_id: str
    event_type: str
    body: dict
    signature_ok: bool
    answered: int


def _open() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


@dataclass
class FakeReceiver:
    secret: str
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    # Cleared, every request is recorded on arrival and then waits (up to 60 s) for it to be set again.
    gate: threading.Event = field(default_factory=_open)

    def start(self) -> "FakeReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = signature_verify(secret=receiver.secret, header=self.headers.get(SIGNATURE_HEADER, ""), body=raw)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.received.append(Received(self.headers.get(EVENT_ID_HEADER, ""),
                                                  self.headers.get("X-StockPulse-Event-Type", ""),
                                                  json.loads(raw), ok, status))
                receiver.gate.wait(60)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status < 300 else b'{"error": "try later"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/stockpulse"

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
