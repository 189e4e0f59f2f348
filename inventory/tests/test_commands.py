"""Tests for inventory management commands: stock_audit, seed_demo and create_api_client."""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.models import ApiClient, token_hash
from inventory.models import Product, Stock, UnifiedCode
from inventory.selectors import ledger_drift
from inventory.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_stock_audit_clean_exits_zero(capsys):
    ProductFactory(on_hand=5)
    call_command("stock_audit")
    assert "agree" in capsys.readouterr().out


def test_stock_audit_reports_drift_and_exits_one(capsys):
    product = ProductFactory(code="DRIFT-1", on_hand=5)
    Stock.objects.filter(product=product).update(on_hand=7)

    with pytest.raises(SystemExit) as exit_info:
        call_command("stock_audit")

    assert exit_info.value.code == 1
    assert "DRIFT-1 @ PRINCIPAL: on_hand=7 ledger_sum=5" in capsys.readouterr().err


def test_stock_audit_reports_a_stock_row_that_miscounts_its_ledger_rows(capsys):
    product = ProductFactory(code="COUNT-1", on_hand=5)
    Stock.objects.filter(product=product).update(movement_count=3)

    with pytest.raises(SystemExit) as exit_info:
        call_command("stock_audit")

    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert "COUNT-1 @ PRINCIPAL: movement_count=3 ledger_rows=1" in err
    assert "1 product(s) count their ledger rows wrong." in err


def test_stock_audit_reports_reserved_units_without_active_reservations(capsys):
    product = ProductFactory(code="HELD-1", on_hand=5)
    call_command("stock_audit")
    assert "reserved matches" in capsys.readouterr().out
    Stock.objects.filter(product=product).update(reserved=2)

    with pytest.raises(SystemExit) as exit_info:
        call_command("stock_audit")

    assert exit_info.value.code == 1
    assert "HELD-1 @ PRINCIPAL: reserved=2 active_lines=0" in capsys.readouterr().err


def test_seed_demo_creates_varied_catalogue_once():
    call_command("seed_demo")
    call_command("seed_demo")

    assert Product.objects.count() >= 50
    assert Product.objects.values("category").distinct().count() >= 4
    assert UnifiedCode.objects.exists()
    assert Stock.objects.filter(available__lte=0).exists()
    assert Stock.objects.filter(available__gt=0, available__lt=5).exists()
    assert ledger_drift() == []


def test_create_api_client_prints_a_working_token(capsys):
    call_command("create_api_client", "shop", "--scopes", "read,reserve")

    token = capsys.readouterr().out.strip().splitlines()[-1]
    client = ApiClient.objects.get(name="shop")
    assert client.token_hash == token_hash(token)
    assert client.scopes == ["read", "reserve"]


def test_create_api_client_rejects_unknown_scope():
    with pytest.raises(CommandError):
        call_command("create_api_client", "shop", "--scopes", "read,admin")
    assert not ApiClient.objects.exists()
