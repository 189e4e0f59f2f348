"""Tests for the ledger's admin list at size: capped count, indexed search, month filter, no full-ledger query."""
import re
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.admin_lists import CappedCountPaginator
from inventory import services
from inventory.admin import StockMovementAdmin
from inventory.models import StockMovement
from inventory.partitions import month_add
from inventory.selectors import ledger_months
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory

pytestmark = pytest.mark.django_db

LEDGER_LIST = "admin:inventory_stockmovement_changelist"


def _ledger_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if "inventory_stockmovement" in q["sql"]]


def test_the_list_reads_no_year_list_and_counts_through_a_limit(staff_client):
    product = ProductFactory(code="LED-1", on_hand=3)
    services.stock_adjust(code=product.code, delta=-1, reason="quebra")

    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(reverse(LEDGER_LIST))

    assert page.status_code == 200
    ledger = _ledger_queries(queries)
    # The date hierarchy's DISTINCT over every row, and an unbounded count(*), are what cost seconds at size.
    assert not any("DISTINCT" in sql and "DATE_TRUNC" in sql for sql in ledger), ledger
    counts = [sql for sql in ledger if "COUNT(" in sql]
    assert counts and all(f"LIMIT {CappedCountPaginator.cap + 1}" in sql for sql in counts), counts
    assert page.context["cl"].result_count == 2 and not page.context["cl"].paginator.capped


def test_past_the_cap_the_list_says_so_and_its_pages_end_there(staff_client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    monkeypatch.setattr(StockMovementAdmin, "list_per_page", 2)
    product = ProductFactory(code="LED-2", on_hand=10)
    for n in range(4):
        services.stock_adjust(code=product.code, delta=-1, reason=f"ajuste {n}")
    assert StockMovement.objects.filter(product=product).count() == 5

    first = staff_client.get(reverse(LEDGER_LIST))
    last = staff_client.get(reverse(LEDGER_LIST), {"p": 2})

    assert first.context["cl"].result_count == 3 and first.context["cl"].paginator.capped
    assert "Mais de 3 movimentos de estoque" in first.content.decode()
    assert first.context["cl"].paginator.num_pages == 2
    assert len(first.context["cl"].result_list) + len(last.context["cl"].result_list) == 3


def test_under_the_cap_the_count_is_exact(staff_client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    ProductFactory(code="LED-3", on_hand=1)

    response = staff_client.get(reverse(LEDGER_LIST))

    assert response.context["cl"].result_count == 1 and not response.context["cl"].paginator.capped


def _codes_listed(response) -> list[str]:
    return sorted({movement.product.code for movement in response.context["cl"].result_list})


def test_search_finds_a_product_by_code_or_unified_code(staff_client):
    wanted = ProductFactory(code="LED-4", on_hand=2)
    ProductFactory(code="LED-44", on_hand=2)
    UnifiedCodeFactory(code="7891000100", product=wanted)

    by_code = staff_client.get(reverse(LEDGER_LIST), {"q": "led-4"})
    by_alias = staff_client.get(reverse(LEDGER_LIST), {"q": "7891000100"})

    assert _codes_listed(by_code) == _codes_listed(by_alias) == ["LED-4"]


def test_search_finds_a_reservation_id_and_an_exact_reference(staff_client):
    ProductFactory(code="LED-5", on_hand=5)
    ProductFactory(code="LED-6", on_hand=5)
    services.stock_adjust(code="LED-5", delta=-1, reason="conferência", reference="NF-1234")
    held = StockMovement.objects.filter(product__code="LED-6").first()
    reservation_id = uuid.uuid4()
    StockMovement.objects.filter(pk=held.pk).update(reservation_id=reservation_id)

    by_reference = staff_client.get(reverse(LEDGER_LIST), {"q": "NF-1234"})
    by_reservation = staff_client.get(reverse(LEDGER_LIST), {"q": str(reservation_id)})
    by_part_of_a_reference = staff_client.get(reverse(LEDGER_LIST), {"q": "NF-12"})

    assert [m.reference for m in by_reference.context["cl"].result_list] == ["NF-1234"]
    assert [m.pk for m in by_reservation.context["cl"].result_list] == [held.pk]
    assert list(by_part_of_a_reference.context["cl"].result_list) == []


def test_the_month_filter_offers_the_ledger_months_and_keeps_one(staff_client):
    months = ledger_months()
    this_month = datetime.now(dt_timezone.utc).date().replace(day=1)
    other_month = month_add(this_month, 1)  # the upkeep keeps the coming months' partitions ready
    assert {this_month, other_month} <= set(months), months
    product = ProductFactory(code="LED-7", on_hand=4)
    services.stock_adjust(code=product.code, delta=-1, reason="movida")
    moved = StockMovement.objects.filter(product=product, reason="movida").get()
    # PostgreSQL moves the row to the other month's partition.
    StockMovement.objects.filter(pk=moved.pk).update(
        created_at=datetime(other_month.year, other_month.month, 15, tzinfo=dt_timezone.utc))

    listed = staff_client.get(reverse(LEDGER_LIST))
    in_other = staff_client.get(reverse(LEDGER_LIST), {"month": other_month.strftime("%Y-%m")})
    in_this = staff_client.get(reverse(LEDGER_LIST), {"month": this_month.strftime("%Y-%m")})

    choices = re.findall(r"month=(\d{4}-\d{2})", listed.content.decode())
    assert choices == [m.strftime("%Y-%m") for m in sorted(months, reverse=True)]
    assert [m.pk for m in in_other.context["cl"].result_list] == [moved.pk]
    assert [m.kind for m in in_this.context["cl"].result_list] == ["receipt"]  # the factory's receipt only


def test_a_month_that_is_no_month_is_refused_with_the_admins_error_page(staff_client):
    ProductFactory(code="LED-8", on_hand=1)

    response = staff_client.get(reverse(LEDGER_LIST), {"month": "2026-13"})

    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_the_newest_movement_is_listed_first(staff_client):
    product = ProductFactory(code="LED-9", on_hand=4)
    services.stock_adjust(code=product.code, delta=-1, reason="mais novo")
    first = StockMovement.objects.filter(product=product).order_by("id").first()
    StockMovement.objects.filter(pk=first.pk).update(created_at=first.created_at - timedelta(hours=1))

    listed = staff_client.get(reverse(LEDGER_LIST)).context["cl"].result_list

    assert [m.reason for m in listed][0] == "mais novo"
