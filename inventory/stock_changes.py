"""What follows a change of stock counters, registered inside the writing transaction.

Every service that changes Stock rows calls ``stock_rows_changed`` once per transaction with the
rows as they now are (still locked). The events are built here, from those exact values, and sent
after commit, so a rolled-back change publishes nothing and every event carries its own version;
per product, they leave this process in version order whichever path wrote them (core/realtime.py).
"""
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.publish_order import stream_key
from core.realtime import realtime_claim, realtime_publish, realtime_publish_soon
from inventory.models import Stock
from notifications.services import alert_states_evaluate
from projections.services import projection_mark_dirty_stocks, projection_recompute_schedule_soon_stocks
from webhooks.services import webhooks_stock_rows_changed


def stock_event(stock: Stock, *, at: datetime | None = None) -> dict[str, Any]:
    return {
        "type": "stock.changed",
        "code": stock.product.code,
        "location": stock.location.code,
        "name": stock.product.name,
        "category": stock.product.category,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.on_hand - stock.reserved,
        "threshold": stock.product.low_stock_threshold,
        "version": stock.version,
        "at": (at or timezone.now()).isoformat(),
    }


def stock_rows_changed(*, stocks: list[Stock], extra_events: list[dict[str, Any]] | None = None,
                       alert_levels_unchanged: bool = False) -> None:
    """Register the after-commit side effects of these changed rows. Call inside the transaction.

    ``alert_levels_unchanged``: the write itself guaranteed no alert level moved (the one-code
    reservation statement checks it), so the alert-state query is skipped.
    """
    now = timezone.now()
    transitions = [] if alert_levels_unchanged else alert_states_evaluate(stocks=stocks)
    events = [stock_event(stock, at=now) for stock in stocks] + list(extra_events or [])
    webhooks_stock_rows_changed(stock_events=events, transitions=transitions)
    # Claimed while the rows are locked, so no later version of them leaves this process before these.
    claim = realtime_claim({stream_key(stock.product.code, stock.location.code): stock.version for stock in stocks})
    transaction.on_commit(partial(realtime_publish, events, claim=claim))
    projection_mark_dirty_stocks(stocks=stocks)


def stock_rows_committed_soon(*, stocks: list[Stock], extra_events: list[dict[str, Any]] | None = None) -> None:
    """``stock_rows_changed`` for a write already committed by async code on a server loop (the
    one-code reservation statement), which moved no alert level and feeds no webhook endpoint:
    the events and the projection recompute, handed to this loop's batches. Returns at once."""
    now = timezone.now()
    realtime_publish_soon([stock_event(stock, at=now) for stock in stocks] + list(extra_events or []))
    projection_recompute_schedule_soon_stocks(stocks)
