"""Per product, the version order in which one process's realtime events may leave it (used by core/realtime.py).

Two writes to one product commit in version order (the row lock), but their events can reach the
publisher the other way round: a sync view hands its events over after commit from a worker
thread, the reservation fast path from the server loop, and either can be overtaken between its
commit and that hand-over. So events are held here until their predecessors in this process have
left:

- A write *claims* its product versions before it commits: a transaction its ``{code: version}``
  while it holds the rows' locks (``stock_rows_changed``); the fast path, whose one statement locks,
  writes and commits at once, a claim on every code with unknown versions while the statement runs.
- Events are handed over in *units* (one write's events, with its claim). A unit leaves once no open
  claim and no held unit of this process could carry an older version of one of its products. The
  unit's own claim is closed when it is handed over.
- A unit never waits longer than ``hold_seconds``: a claim whose write was rolled back is never
  handed over. Past that, the claims and held units in its way are given up and it leaves.
- A ``stock.changed`` event whose version is not above the last one sent for its product (a unit
  handed over after its hold was given up) is dropped, never sent out of order; the client has
  already seen the gap and reloaded the product.

Nothing here can order events of different processes: docs/realtime.md says what a client sees.
"""
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

logger = logging.getLogger(__name__)

# A claim is forgotten after this long even if never handed over: a rolled-back write's claim must
# not live for ever, and a write's own events can only be overtaken after it commits.
CLAIM_MAX_SECONDS = 60.0
# Last version sent, kept for this many products (least recently sent forgotten first).
LAST_SENT_KEPT = 100_000


class Claim:
    """Product versions a write in this process is about to commit; ``versions`` None: any code, unknown versions."""

    __slots__ = ("seq", "versions", "since")

    def __init__(self, seq: int, versions: dict[str, int] | None) -> None:
        self.seq = seq
        self.versions = versions
        self.since = time.monotonic()


def stream_key(code: str, location: str | None) -> str:
    """What versions count along: one stock row, i.e. a product code at a location code."""
    return f"{code}@{location}" if location else code


def stock_versions(events: list[dict[str, Any]]) -> Iterator[tuple[str, int]]:
    """(stream key, version) of each ``stock.changed`` event."""
    for event in events:
        if event.get("type") == "stock.changed" and event.get("version") is not None:
            yield stream_key(str(event["code"]), event.get("location")), int(event["version"])


class Unit:
    """Events handed over together (one write's), their product versions, and the sender's result."""

    __slots__ = ("events", "versions", "claim", "deadline", "future")

    def __init__(self, events: list[dict[str, Any]], claim: Claim | None, deadline: float) -> None:
        self.events = events
        self.versions: dict[str, int] = {}
        for code, version in stock_versions(events):
            self.versions[code] = min(version, self.versions.get(code, version))
        self.claim = claim
        self.deadline = deadline
        # Set by the sender once the events left (or could not): True, or the exception.
        self.future: Future = Future()


class PublishOrder:
    """Claims, held units and the units ready to send, in the order they may leave. Thread-safe."""

    def __init__(self, hold_seconds: float) -> None:
        self.hold_seconds = hold_seconds
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._claims: dict[int, Claim] = {}
        self._held: list[Unit] = []
        self._ready: list[Unit] = []
        self._last_sent: OrderedDict[str, int] = OrderedDict()
        self.dropped = 0

    def claim(self, versions: dict[str, int] | None) -> Claim:
        with self._lock:
            claim = Claim(next(self._seq), dict(versions) if versions is not None else None)
            self._claims[claim.seq] = claim
            old = claim.since - CLAIM_MAX_SECONDS
            for stale in [c for c in self._claims.values() if c.since < old]:
                del self._claims[stale.seq]
            return claim

    def release(self, claim: Claim) -> None:
        """Close a claim without events (its write changed nothing)."""
        with self._lock:
            if self._claims.pop(claim.seq, None) is not None:
                self._advance()

    def hand(self, events: list[dict[str, Any]], claim: Claim | None = None) -> Unit:
        """Hand over one write's events; they go to the ready list now or once their predecessors left."""
        with self._lock:
            unit = Unit(events, claim, time.monotonic() + self.hold_seconds)
            if claim is not None:
                self._claims.pop(claim.seq, None)
            # Another claim on the very same version is a rolled-back write's: that version was written again.
            for other in list(self._claims.values()):
                if other.versions and any(other.versions.get(code) == v for code, v in unit.versions.items()):
                    del self._claims[other.seq]
            self._held.append(unit)
            self._advance()
            return unit

    def take(self, now: float | None = None) -> list[Unit]:
        """The units that may leave now, in order (units held past their deadline included)."""
        with self._lock:
            now = time.monotonic() if now is None else now
            overdue = [unit for unit in self._held if unit.deadline <= now]
            if overdue:
                given_up: set[int] = set()
                for unit in overdue:
                    self._give_up_for(unit, given_up)
                self._advance()
                # Only held units can still be in the way (units that block each other): they go as they came.
                for unit in [unit for unit in self._held if unit.deadline <= now]:
                    self._held.remove(unit)
                    self._ready.append(self._sendable(unit))
            ready, self._ready = self._ready, []
            return ready

    def next_deadline(self) -> float | None:
        with self._lock:
            return min((unit.deadline for unit in self._held), default=None)

    def pending(self) -> int:
        """Units handed over and not yet taken by the sender."""
        with self._lock:
            return len(self._held) + len(self._ready)

    def _blocked(self, unit: Unit) -> bool:
        if not unit.versions:
            return False
        for claim in self._claims.values():
            if claim.versions is None:
                # Unknown versions: it may commit before this unit's write unless it was claimed later.
                if unit.claim is None or unit.claim.seq > claim.seq:
                    return True
            elif any(claim.versions.get(code, v) < v for code, v in unit.versions.items()):
                return True
        return any(other is not unit and any(other.versions.get(code, v) < v for code, v in unit.versions.items())
                   for other in self._held)

    def _advance(self) -> None:
        moved = True
        while moved:
            moved = False
            for unit in list(self._held):
                if not self._blocked(unit):
                    self._held.remove(unit)
                    self._ready.append(self._sendable(unit))
                    moved = True

    def _give_up_for(self, unit: Unit, given_up: set[int]) -> None:
        """Drop every claim in the unit's way, and give up for the held units in its way too."""
        if id(unit) in given_up:
            return
        given_up.add(id(unit))
        for claim in list(self._claims.values()):
            if claim.versions is None or any(claim.versions.get(code, v) < v for code, v in unit.versions.items()):
                del self._claims[claim.seq]
        for other in list(self._held):
            if other is not unit and any(other.versions.get(code, v) < v for code, v in unit.versions.items()):
                self._give_up_for(other, given_up)

    def _sendable(self, unit: Unit) -> Unit:
        """The unit without stock events older than what already left for their product; records the rest."""
        kept = []
        for event in unit.events:
            if event.get("type") == "stock.changed" and event.get("version") is not None:
                code, version = stream_key(str(event["code"]), event.get("location")), int(event["version"])
                if self._last_sent.get(code, -1) >= version:
                    self.dropped += 1
                    logger.warning("realtime event dropped: older than one already sent",
                                   extra={"code": code, "version": version})
                    continue
                self._last_sent[code] = version
                self._last_sent.move_to_end(code)
                if len(self._last_sent) > LAST_SENT_KEPT:
                    self._last_sent.popitem(last=False)
            kept.append(event)
        unit.events = kept
        return unit
