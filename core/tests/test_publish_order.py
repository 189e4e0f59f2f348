"""core/publish_order.py: per product, a process's events leave in version order, held at most a bounded time."""
import time

from core.publish_order import PublishOrder


def _change(code: str, version: int) -> dict:
    return {"type": "stock.changed", "code": code, "version": version}


def _sent(units) -> list[tuple[str, int]]:
    return [(event["code"], event["version"]) for unit in units for event in unit.events]


def test_a_version_handed_over_before_its_predecessor_waits_for_it():
    order = PublishOrder(hold_seconds=5)
    first = order.claim({"A": 2})
    second = order.claim({"A": 3})

    order.hand([_change("A", 3)], second)
    assert order.take() == []

    order.hand([_change("A", 2)], first)
    assert _sent(order.take()) == [("A", 2), ("A", 3)]


def test_other_products_are_not_held_behind_a_claim():
    order = PublishOrder(hold_seconds=5)
    order.claim({"A": 2})

    order.hand([_change("B", 7)], order.claim({"B": 7}))

    assert _sent(order.take()) == [("B", 7)]


def test_a_claim_of_unknown_versions_holds_later_writes_until_it_is_released():
    order = PublishOrder(hold_seconds=5)
    fast_path = order.claim(None)
    later = order.claim({"A": 9})
    order.hand([_change("A", 9)], later)
    assert order.take() == []

    order.hand([_change("A", 8)])  # the fast path's own events, handed over before its claim closes
    order.release(fast_path)

    assert _sent(order.take()) == [("A", 8), ("A", 9)]


def test_a_write_claimed_before_a_claim_of_unknown_versions_is_not_held_by_it():
    order = PublishOrder(hold_seconds=5)
    earlier = order.claim({"A": 4})
    order.claim(None)

    order.hand([_change("A", 4)], earlier)

    assert _sent(order.take()) == [("A", 4)]


def test_a_claim_never_handed_over_holds_a_unit_only_until_its_deadline():
    order = PublishOrder(hold_seconds=0.05)
    order.claim({"A": 2})  # rolled back: never handed over
    order.hand([_change("A", 3)], order.claim({"A": 3}))
    assert order.take() == []

    time.sleep(0.06)

    assert _sent(order.take()) == [("A", 3)]


def test_a_version_older_than_one_already_sent_is_dropped_and_the_rest_of_its_unit_kept():
    order = PublishOrder(hold_seconds=0.01)
    late = order.claim({"A": 2})
    order.hand([_change("A", 3)], order.claim({"A": 3}))
    time.sleep(0.02)
    assert _sent(order.take()) == [("A", 3)]

    order.hand([_change("A", 2), {"type": "reservation.created", "reservation": "r-1"}], late)

    (unit,) = order.take()
    assert unit.events == [{"type": "reservation.created", "reservation": "r-1"}]
    assert order.dropped == 1
