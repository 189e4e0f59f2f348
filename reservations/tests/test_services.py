"""Tests for reservation services: all-or-nothing creation, confirm, release, extend and the expiry sweep."""
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from core.errors import Conflict, Gone, InsufficientStock, NotFound, UnknownCode, Unprocessable, ValidationFailed
from core.tests.factories import ApiClientFactory
from inventory.models import MovementKind, Stock, StockMovement
from inventory.selectors import ledger_drift
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory
from reservations import services
from reservations.models import Reservation, ReservationStatus
from reservations.selectors import reservation_effective_status, reserved_drift
from reservations.tests.factories import reservation_make

pytestmark = pytest.mark.django_db


def counters(product) -> tuple[int, int, int]:
    stock = Stock.objects.get(product=product)
    return stock.on_hand, stock.reserved, stock.version


def make_due(reservation: Reservation) -> None:
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_single_line_reserves_units_and_bumps_version():
    product = ProductFactory(on_hand=10)
    client = ApiClientFactory()
    assert counters(product) == (10, 0, 1)

    reservation = services.reservation_create(client=client, lines=[{"code": product.code, "quantity": 3}])

    assert counters(product) == (10, 3, 2)
    assert reservation.status == ReservationStatus.ACTIVE
    assert [(line.product.code, line.quantity) for line in reservation.lines.all()] == [(product.code, 3)]
    stored = Reservation.objects.get(pk=reservation.pk)
    assert stored.client == client
    assert timedelta(minutes=14) < stored.expires_at - stored.created_at <= timedelta(minutes=15)
    assert reserved_drift() == []


def test_multi_line_merges_duplicates_and_aliases():
    a = ProductFactory(on_hand=5)
    b = ProductFactory(on_hand=5)
    alias = UnifiedCodeFactory(product=a)

    reservation = services.reservation_create(client=None, lines=[
        {"code": a.code, "quantity": 1}, {"code": b.code.lower(), "quantity": 2}, {"code": alias.code, "quantity": 2},
    ])

    assert counters(a)[1] == 3 and counters(b)[1] == 2
    assert sorted((line.product.code, line.quantity) for line in reservation.lines.all()) == sorted(
        [(a.code, 3), (b.code, 2)])
    assert reservation.lines.count() == 2
    assert reserved_drift() == []


def test_short_cart_reserves_nothing_and_lists_every_short_line():
    a = ProductFactory(code="A-1", on_hand=2)
    b = ProductFactory(code="B-1", on_hand=1)
    c = ProductFactory(code="C-1", on_hand=9)

    with pytest.raises(InsufficientStock) as caught:
        services.reservation_create(client=None, lines=[
            {"code": "C-1", "quantity": 1}, {"code": "B-1", "quantity": 4}, {"code": "A-1", "quantity": 3},
        ])

    assert caught.value.lines == [
        {"code": "A-1", "requested": 3, "available": 2}, {"code": "B-1", "requested": 4, "available": 1}]
    assert [counters(p)[1] for p in (a, b, c)] == [0, 0, 0]
    assert Reservation.objects.count() == 0


def test_single_line_short_reports_real_available():
    product = ProductFactory(code="HOT", on_hand=2)
    services.reservation_create(client=None, lines=[{"code": "HOT", "quantity": 1}])

    with pytest.raises(InsufficientStock) as caught:
        services.reservation_create(client=None, lines=[{"code": "HOT", "quantity": 2}])

    assert caught.value.lines == [{"code": "HOT", "requested": 2, "available": 1}]
    assert counters(product)[1] == 1


def test_unknown_code_and_bad_input_are_refused():
    ProductFactory(code="OK", on_hand=2)
    with pytest.raises(UnknownCode):
        services.reservation_create(client=None, lines=[{"code": "OK", "quantity": 1}, {"code": "NOPE", "quantity": 1}])
    for bad in ([], [{"code": "OK", "quantity": 0}], [{"code": "OK", "quantity": "2"}], [{"quantity": 1}]):
        with pytest.raises(ValidationFailed):
            services.reservation_create(client=None, lines=bad)
    for ttl in (timedelta(seconds=29), timedelta(hours=24, seconds=1)):
        with pytest.raises(ValidationFailed):
            services.reservation_create(client=None, lines=[{"code": "OK", "quantity": 1}], ttl=ttl)
    assert Reservation.objects.count() == 0


def test_confirm_turns_reservation_into_sale_with_ledger_rows():
    product = ProductFactory(on_hand=10)
    reservation = reservation_make(lines=[{"code": product.code, "quantity": 4}], reference="ORDER-9")

    confirmed = services.reservation_confirm(reservation_id=reservation.pk, client=None)

    assert confirmed.status == ReservationStatus.CONFIRMED
    assert counters(product)[:2] == (6, 0)
    sale = StockMovement.objects.get(product=product, kind=MovementKind.SALE)
    assert (sale.quantity, sale.on_hand_after, sale.reservation_id, sale.reference) == (-4, 6, reservation.pk, "ORDER-9")
    assert ledger_drift() == [] and reserved_drift() == []


def test_confirm_twice_is_idempotent():
    product = ProductFactory(on_hand=10)
    reservation = reservation_make(lines=[{"code": product.code, "quantity": 4}])
    services.reservation_confirm(reservation_id=reservation.pk, client=None)

    again = services.reservation_confirm(reservation_id=reservation.pk, client=None)

    assert again.status == ReservationStatus.CONFIRMED
    assert counters(product)[:2] == (6, 0)
    assert StockMovement.objects.filter(kind=MovementKind.SALE).count() == 1


def test_confirm_after_expiry_before_sweep_is_gone_and_units_return():
    product = ProductFactory(on_hand=5)
    reservation = reservation_make(lines=[{"code": product.code, "quantity": 5}])
    make_due(reservation)
    assert reservation_effective_status(Reservation.objects.get(pk=reservation.pk)) == ReservationStatus.EXPIRED

    with pytest.raises(Gone):
        services.reservation_confirm(reservation_id=reservation.pk, client=None)

    assert Reservation.objects.get(pk=reservation.pk).status == ReservationStatus.EXPIRED
    assert counters(product)[:2] == (5, 0)
    assert services.reservation_expire_due() == 0
    assert reserved_drift() == []


def test_confirm_released_is_conflict():
    product = ProductFactory(on_hand=5)
    reservation = reservation_make(lines=[{"code": product.code, "quantity": 2}])
    services.reservation_release(reservation_id=reservation.pk, client=None)

    with pytest.raises(Conflict):
        services.reservation_confirm(reservation_id=reservation.pk, client=None)
    assert counters(product)[:2] == (5, 0)


def test_release_returns_units_once():
    product = ProductFactory(on_hand=5)
    reservation = reservation_make(lines=[{"code": product.code, "quantity": 2}])
    assert counters(product)[1] == 2

    services.reservation_release(reservation_id=reservation.pk, client=None)
    again = services.reservation_release(reservation_id=reservation.pk, client=None)

    assert again.status == ReservationStatus.RELEASED
    assert counters(product)[:2] == (5, 0)
    assert reserved_drift() == []


def test_other_clients_reservation_is_not_found():
    product = ProductFactory(on_hand=5)
    owner, other = ApiClientFactory(), ApiClientFactory()
    reservation = reservation_make(client=owner, lines=[{"code": product.code, "quantity": 2}])

    for action in (services.reservation_confirm, services.reservation_release):
        with pytest.raises(NotFound):
            action(reservation_id=reservation.pk, client=other)
    with pytest.raises(NotFound):
        services.reservation_confirm(reservation_id="not-a-uuid", client=owner)
    assert counters(product)[1] == 2


def test_extend_pushes_expiry_within_bounds():
    product = ProductFactory(on_hand=5)
    reservation = reservation_make(lines=[{"code": product.code, "quantity": 1}], ttl_seconds=60)
    before = Reservation.objects.get(pk=reservation.pk).expires_at

    services.reservation_extend(reservation_id=reservation.pk, client=None, ttl=timedelta(minutes=30))

    after = Reservation.objects.get(pk=reservation.pk).expires_at
    assert after - before > timedelta(minutes=28)
    with pytest.raises(ValidationFailed):
        services.reservation_extend(reservation_id=reservation.pk, client=None, ttl=timedelta(hours=25))


def test_extend_due_reservation_is_gone():
    product = ProductFactory(on_hand=5)
    reservation = reservation_make(lines=[{"code": product.code, "quantity": 1}])
    make_due(reservation)

    with pytest.raises(Gone):
        services.reservation_extend(reservation_id=reservation.pk, client=None, ttl=timedelta(minutes=5))
    assert counters(product)[1] == 0


def test_sweep_expires_only_due_reservations():
    product = ProductFactory(on_hand=10)
    due = [reservation_make(lines=[{"code": product.code, "quantity": 2}]) for _ in range(3)]
    keep = reservation_make(lines=[{"code": product.code, "quantity": 1}])
    for reservation in due:
        make_due(reservation)
    assert counters(product)[1] == 7

    assert services.reservation_expire_due(batch_size=2) == 3

    assert counters(product)[1] == 1
    assert Reservation.objects.get(pk=keep.pk).status == ReservationStatus.ACTIVE
    assert set(Reservation.objects.filter(status=ReservationStatus.EXPIRED).values_list("pk", flat=True)) == {
        r.pk for r in due}
    assert reserved_drift() == []


def test_idempotency_key_replays_and_refuses_other_body():
    product = ProductFactory(on_hand=10)
    client = ApiClientFactory()
    lines = [{"code": product.code, "quantity": 2}]
    first = services.reservation_create(client=client, lines=lines, idempotency_key="k-1")

    again = services.reservation_create(client=client, lines=lines, idempotency_key="k-1")

    assert again.pk == first.pk and again.replayed
    assert counters(product)[1] == 2
    with pytest.raises(Unprocessable):
        services.reservation_create(client=client, lines=[{"code": product.code, "quantity": 3}],
                                    idempotency_key="k-1")
    other_client = services.reservation_create(client=ApiClientFactory(), lines=lines, idempotency_key="k-1")
    assert other_client.pk != first.pk
    assert counters(product)[1] == 4


def _queries_for_cart(size: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # Plenty of stock so no low-stock alert opens: that hook's own writes are not what is measured here.
    products = [ProductFactory(on_hand=100) for _ in range(size)]
    lines = [{"code": p.code, "quantity": 1} for p in products]
    with CaptureQueriesContext(connection) as captured:
        services.reservation_create(client=None, lines=lines)
    return len(captured.captured_queries)


def test_reserving_n_lines_runs_a_constant_number_of_queries(django_assert_max_num_queries):
    _queries_for_cart(2)  # warm per-process caches (webhook endpoints) first
    counts = {size: _queries_for_cart(size) for size in (2, 4, 8)}

    assert counts[2] == counts[4] == counts[8]
    lines = [{"code": p.code, "quantity": 1} for p in [ProductFactory(on_hand=100) for _ in range(16)]]
    with django_assert_max_num_queries(counts[2]):
        services.reservation_create(client=None, lines=lines)


def test_single_line_reservation_is_one_statement_plus_lookup(django_assert_max_num_queries):
    product = ProductFactory(on_hand=100)
    services.reservation_create(client=None, lines=[{"code": product.code, "quantity": 1}])
    # savepoint + release (test transaction), code lookup, the reserve statement, stock hook.
    with django_assert_max_num_queries(5):
        services.reservation_create(client=None, lines=[{"code": product.code, "quantity": 1}])
    assert Stock.objects.get(product=product).reserved == 2


def test_events_name_reservation_lines_without_customer_data(django_capture_on_commit_callbacks):
    product = ProductFactory(code="EV-1", on_hand=3)
    client = ApiClientFactory()

    with django_capture_on_commit_callbacks() as callbacks:
        reservation = services.reservation_create(client=client, lines=[{"code": "EV-1", "quantity": 2}],
                                                  reference="customer-42")

    events = [e for cb in callbacks if getattr(cb, "args", None) for e in cb.args[0] if isinstance(e, dict)]
    created = [e for e in events if e.get("type") == "reservation.created"]
    assert len(created) == 1
    assert created[0]["reservation_id"] == str(reservation.pk)
    assert created[0]["lines"] == [{"code": "EV-1", "location": "PRINCIPAL", "quantity": 2}]
    assert "customer-42" not in str(created[0]) and client.name not in str(created[0])
    stock_events = [e for e in events if e.get("type") == "stock.changed"]
    assert stock_events and stock_events[0]["reserved"] == 2 and stock_events[0]["available"] == 1
    assert Stock.objects.get(product=product).reserved == 2


def test_single_code_through_alias_reserves_canonical_product():
    alias = UnifiedCodeFactory(code="OLD-9", product=ProductFactory(code="NEW-9", on_hand=4))

    reservation = services.reservation_create(client=None, lines=[{"code": " old-9 ", "quantity": 3}])

    assert [(line.product.code, line.quantity) for line in reservation.lines.all()] == [("NEW-9", 3)]
    assert counters(alias.product)[1] == 3


def test_inactive_product_is_refused_and_nothing_reserved():
    product = ProductFactory(code="GONE-1", on_hand=4, active=False)

    with pytest.raises(Conflict):
        services.reservation_create(client=None, lines=[{"code": "GONE-1", "quantity": 1}])
    assert counters(product)[1] == 0 and Reservation.objects.count() == 0


# ---------------------------------------------------------------- one-code batches (the fast path's)

def _kinds(outcomes) -> list[str | None]:
    return ["reserved" if isinstance(o, Reservation) else "short" if isinstance(o, services.ReservationShort)
            else "unsettled" if isinstance(o, services.ReservationUnsettled) else None for o in outcomes]


def _asks(client, *pairs: tuple[str, int]) -> list[services.ReservationAsk]:
    """One-code asks."""
    return [services.ReservationAsk(client=client, lines=((code, quantity),), ttl=timedelta(minutes=15))
            for code, quantity in pairs]


@pytest.fixture
async def async_pool_closed():
    from core import aio
    from core.realtime import realtime_publisher_drain
    from projections.services import projection_marks_drain

    yield
    await realtime_publisher_drain()
    await projection_marks_drain()
    await aio.clients_close()


@pytest.mark.django_db(transaction=True)
async def test_batch_of_one_code_asks_grants_each_product_the_run_of_asks_that_fits(async_pool_closed):
    wide = await sync_to_async(ProductFactory)(code="BATCH-A", on_hand=10, low_stock_threshold=2)
    narrow = await sync_to_async(ProductFactory)(code="BATCH-B", on_hand=3, low_stock_threshold=0)
    await sync_to_async(UnifiedCodeFactory)(code="BATCH-A-OLD", product=wide)
    client = await sync_to_async(ApiClientFactory)()
    assert await sync_to_async(counters)(wide) == (10, 0, 1)
    assert await sync_to_async(counters)(narrow) == (3, 0, 1)

    created = await services.reservation_create_batch_async(asks=_asks(
        client, ("BATCH-A", 2), ("BATCH-B", 2), ("BATCH-A-OLD", 2), ("NOPE-1", 1), ("BATCH-B", 2), ("BATCH-B", 1),
        ("BATCH-A", 1)))

    # Unknown: the general path says so. BATCH-B has 1 left after its first ask: the next (2) is short
    # at commit, and the one behind it (1) is unsettled: judged as if the short one had taken its
    # units, it is left to a later batch or the general path, either of which will grant it.
    assert _kinds(created) == ["reserved", "reserved", "reserved", None, "short", "unsettled", "reserved"]
    assert created[5] == services.ReservationUnsettled(codes=("BATCH-B",))
    assert created[4] == services.ReservationShort(lines=(("BATCH-B", 2, 1, "PRINCIPAL"),))
    # Each changed row moved once: its reserved by the run's total, its version by one.
    assert await sync_to_async(counters)(wide) == (10, 5, 2)
    assert await sync_to_async(counters)(narrow) == (3, 2, 2)
    assert [(line.product.code, line.quantity) for line in created[2].lines.all()] == [("BATCH-A", 2)]
    saved = await sync_to_async(lambda: sorted(
        (str(r.pk), r.client_id, r.status) for r in Reservation.objects.all()))()
    assert saved == sorted((str(r.pk), client.pk, "active") for r in created if isinstance(r, Reservation))
    assert await sync_to_async(reserved_drift)() == []


@pytest.mark.django_db(transaction=True)
async def test_batch_of_one_code_asks_leaves_asks_that_move_the_alert_level_to_the_general_path(async_pool_closed):
    product = await sync_to_async(ProductFactory)(code="BATCH-C", on_hand=7, low_stock_threshold=5)
    client = await sync_to_async(ApiClientFactory)()

    created = await services.reservation_create_batch_async(asks=_asks(
        client, ("BATCH-C", 1), ("BATCH-C", 1), ("BATCH-C", 1), ("BATCH-C", 1)))

    # 6 and 5 left stay "ok"; 4 left would be "low", so that ask and the one behind it are unsettled:
    # the general path records the level (neither is short: 5 units are left).
    assert _kinds(created) == ["reserved", "reserved", "unsettled", "unsettled"]
    assert created[2] == created[3] == services.ReservationUnsettled(codes=("BATCH-C",))
    assert await sync_to_async(counters)(product) == (7, 2, 2)
    assert await sync_to_async(Reservation.objects.count)() == 2


@pytest.mark.django_db(transaction=True)
async def test_batch_of_one_code_asks_publishes_one_stock_event_per_product_and_one_per_reservation(async_pool_closed):
    import asyncio
    import json

    from channels.layers import get_channel_layer

    from core.groups import group_for_code

    await sync_to_async(ProductFactory)(code="BATCH-D", on_hand=20)
    client = await sync_to_async(ApiClientFactory)()
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_for_code("BATCH-D"), channel)

    created = await services.reservation_create_batch_async(asks=_asks(
        client, ("BATCH-D", 1), ("BATCH-D", 2), ("BATCH-D", 3)))

    message = await asyncio.wait_for(layer.receive(channel), 5)
    events = [json.loads(text) for _, text in message["items"]]
    changed = [e for e in events if e["type"] == "stock.changed"]
    assert [(e["reserved"], e["available"], e["version"]) for e in changed] == [(6, 14, 2)]
    assert sorted(e["reservation_id"] for e in events if e["type"] == "reservation.created") == sorted(
        str(r.pk) for r in created)
    await layer.group_discard(group_for_code("BATCH-D"), channel)


@pytest.mark.django_db(transaction=True)
async def test_batch_of_carts_judges_each_cart_as_a_whole_after_those_before_it(async_pool_closed):
    first = await sync_to_async(ProductFactory)(code="BATCH-E", on_hand=10, low_stock_threshold=0)
    second = await sync_to_async(ProductFactory)(code="BATCH-F", on_hand=4, low_stock_threshold=0)
    client = await sync_to_async(ApiClientFactory)()

    def cart(*lines):
        return services.ReservationAsk(client=client, lines=lines, ttl=timedelta(minutes=15))

    created = await services.reservation_create_batch_async(asks=[
        cart(("BATCH-E", 2), ("BATCH-F", 1)),
        cart(("BATCH-F", 5), ("BATCH-E", 1)),     # F wants 5 of the 3 left: short, takes nothing
        cart(("BATCH-E", 1), ("NOPE-2", 1)),      # an unknown code: the general path says which
        cart(("BATCH-E", 3), ("BATCH-E", 1)),     # merged into one line of 4
        cart(("BATCH-E", 4)),                     # judged as if the second cart took its unit of E
    ])

    assert _kinds(created) == ["reserved", "short", None, "reserved", "unsettled"]
    assert created[4] == services.ReservationUnsettled(codes=("BATCH-E",))
    assert created[1] == services.ReservationShort(lines=(("BATCH-F", 5, 3, "PRINCIPAL"),))
    assert [(line.product.code, line.quantity) for line in created[0].lines.all()] == [("BATCH-E", 2), ("BATCH-F", 1)]
    assert [(line.product.code, line.quantity) for line in created[3].lines.all()] == [("BATCH-E", 4)]
    # 4 of E are really left: the last cart fits, and the general path will grant it.
    assert await sync_to_async(counters)(first) == (10, 6, 2)
    assert await sync_to_async(counters)(second) == (4, 1, 2)
    assert await sync_to_async(reserved_drift)() == []


def test_release_moves_the_stock_rows_updated_at():
    product = ProductFactory(on_hand=5)
    reservation = services.reservation_create(client=None, lines=[{"code": product.code, "quantity": 2}])
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Stock.objects.filter(product=product).update(updated_at=an_hour_ago)

    services.reservation_release(reservation_id=reservation.pk, client=None)

    after = Stock.objects.get(product=product)
    assert after.reserved == 0
    assert after.updated_at > an_hour_ago + timedelta(minutes=59)
