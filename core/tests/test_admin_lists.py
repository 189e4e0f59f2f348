"""Tests for the admin lists of tables that grow without bound: one capped count, no year list, "more than"."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.admin_lists import CappedCountPaginator
from core.tests.factories import ApiClientFactory
from inventory.tests.factories import ProductFactory
from orders.services import order_create
from reservations import services as reservation_services

pytestmark = pytest.mark.django_db

GROWING_LISTS = {
    "admin:inventory_stockmovement_changelist": "inventory_stockmovement",
    "admin:reservations_reservation_changelist": "reservations_reservation",
    "admin:orders_order_changelist": "orders_order",
    "admin:webhooks_webhookdelivery_changelist": "webhooks_webhookdelivery",
    "admin:notifications_alertoutbox_changelist": "notifications_alertoutbox",
}


@pytest.mark.parametrize("url_name", sorted(GROWING_LISTS))
@pytest.mark.parametrize("params", [{}, {"q": "X-1"}], ids=["list", "search"])
def test_a_growing_list_counts_once_through_a_limit_and_reads_no_year_list(staff_client, url_name, params):
    ProductFactory(code="X-1", on_hand=3)
    table = GROWING_LISTS[url_name]

    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(reverse(url_name), params)

    assert response.status_code == 200
    on_table = [q["sql"] for q in queries if f'FROM "{table}"' in q["sql"]]
    counts = [sql for sql in on_table if "COUNT(" in sql]
    assert len(counts) == 1 and f"LIMIT {CappedCountPaginator.cap + 1}" in counts[0], counts
    assert not any("DATE_TRUNC" in sql for sql in on_table), on_table


def test_past_the_cap_the_reservations_list_says_more_than(staff_client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    ProductFactory(code="X-2", on_hand=10)
    client = ApiClientFactory()
    for _ in range(3):
        reservation_services.reservation_create(client=client, lines=[{"code": "X-2", "quantity": 1}])

    response = staff_client.get(reverse("admin:reservations_reservation_changelist"))

    assert response.context["cl"].result_count == 2 and response.context["cl"].paginator.capped
    assert "Mais de 2 reservas" in response.content.decode()


def test_at_the_cap_the_orders_list_gives_the_exact_count(staff_client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    ProductFactory(code="X-3", on_hand=10)
    client = ApiClientFactory()
    for _ in range(2):
        order_create(client=client, lines=[{"code": "X-3", "quantity": 1}])

    response = staff_client.get(reverse("admin:orders_order_changelist"))

    assert response.context["cl"].result_count == 2 and not response.context["cl"].paginator.capped
    assert "Mais de" not in response.content.decode()


def test_the_paginator_counts_exactly_below_the_cap_and_stops_above_it(monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 4)
    product = ProductFactory(code="X-4", on_hand=1)
    rows = product.movements.all().order_by("-id")

    below = CappedCountPaginator(rows, 2)
    assert (below.count, below.capped, below.num_pages) == (1, False, 1)

    location_id = product.movements.get().location_id
    for n in range(5):
        product.movements.create(location_id=location_id, kind="adjustment", quantity=0, on_hand_after=1,
                                 reason=f"contagem {n}")
    above = CappedCountPaginator(product.movements.all().order_by("-id"), 2)
    assert (above.count, above.capped, above.num_pages) == (4, True, 2)
