"""HMAC-SHA256 signatures of webhook bodies: how we sign, and how a receiver verifies (see the docs)."""
import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-StockPulse-Signature"
TIMESTAMP_HEADER = "X-StockPulse-Timestamp"
EVENT_ID_HEADER = "X-StockPulse-Event-Id"
EVENT_TYPE_HEADER = "X-StockPulse-Event-Type"
DEFAULT_TOLERANCE_SECONDS = 300


def signature_compute(*, secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256 over ``f"{timestamp}.".encode() + body``: the timestamp is signed so a replay can be refused."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(*, secret: str, body: bytes, event_id: str, event_type: str,
                      timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: f"t={ts},v1={signature_compute(secret=secret, timestamp=ts, body=body)}",
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
    }


def signature_verify(*, secret: str, header: str, body: bytes, now: int | None = None,
                     tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """True when ``header`` (``t=...,v1=...``) signs ``body`` with ``secret`` and is fresh enough."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        ts = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError):
        return False
    current = int(time.time()) if now is None else now
    if abs(current - ts) > tolerance:
        return False
    return hmac.compare_digest(given, signature_compute(secret=secret, timestamp=ts, body=body))
