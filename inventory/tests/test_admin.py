"""Tests for the inventory admin: pages load, search by alias, and the adjust form writes a ledger row."""
import pytest
from django.urls import reverse

from inventory import services
from inventory.models import MovementKind, Product, Stock, StockMovement, UnifiedCode
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url_name",
    ["admin:inventory_product_changelist", "admin:inventory_unifiedcode_changelist",
     "admin:inventory_stockmovement_changelist", "admin:core_apiclient_changelist",
     "admin:inventory_product_add"],
)
def test_admin_lists_load(staff_client, url_name):
    ProductFactory(on_hand=3)
    assert staff_client.get(reverse(url_name)).status_code == 200


def test_product_change_page_and_filters_load(staff_client):
    product = ProductFactory(on_hand=1)
    assert staff_client.get(reverse("admin:inventory_product_change", args=[product.pk])).status_code == 200
    for level in ("below", "out"):
        assert staff_client.get(reverse("admin:inventory_product_changelist"), {"level": level}).status_code == 200


def test_search_by_alias_finds_the_product(staff_client):
    UnifiedCodeFactory(code="EAN-777", product=ProductFactory(code="FOUND-1"))
    ProductFactory(code="HIDDEN-1")

    page = staff_client.get(reverse("admin:inventory_product_changelist"), {"q": "EAN-777"}).content.decode()

    assert "FOUND-1" in page and "HIDDEN-1" not in page


def test_search_finds_a_name_typed_without_accents_best_match_first(staff_client):
    ProductFactory(code="P-1", name="Feijão preto tipo 1 pacote econômico 1kg")
    ProductFactory(code="P-2", name="Feijão")
    ProductFactory(code="P-3", name="Arroz")

    page = staff_client.get(reverse("admin:inventory_product_changelist"), {"q": "feijao"}).content.decode()

    assert "P-3" not in page
    assert page.index("P-2") < page.index("P-1")


@pytest.mark.parametrize("term, name", [("cafe", "Café torrado"), ("feijao", "Feijão carioca"), ("pao", "Pão francês")])
def test_search_box_finds_names_typed_without_accents(staff_client, term, name):
    ProductFactory(code="HIT-1", name=name)
    ProductFactory(code="MISS-1", name="Detergente")

    page = staff_client.get(reverse("admin:inventory_product_changelist"), {"q": term}).content.decode()

    assert "HIT-1" in page and "MISS-1" not in page


def test_a_clicked_column_orders_search_results(staff_client):
    ProductFactory(code="P-1", name="Feijão preto", on_hand=9)
    ProductFactory(code="P-2", name="Feijão", on_hand=1)
    url = reverse("admin:inventory_product_changelist")

    page = staff_client.get(url, {"q": "feijao", "o": "-1"}).content.decode()  # code, descending

    assert page.index("P-2") < page.index("P-1")


def test_adjust_form_writes_ledger_row_through_service(staff_client):
    product = ProductFactory(code="ADJ-1", on_hand=10)
    url = reverse("admin:inventory_product_adjust", args=[product.pk])
    assert staff_client.get(url).status_code == 200

    response = staff_client.post(url, {"kind": MovementKind.ADJUSTMENT, "quantity": -4, "reason": "broken jars"})

    assert response.status_code == 302
    assert Stock.objects.get(product=product).on_hand == 6
    movement = StockMovement.objects.filter(product=product).first()
    assert (movement.kind, movement.quantity, movement.reason, movement.actor) == (
        MovementKind.ADJUSTMENT, -4, "broken jars", "user:staff")


def test_adjust_form_shows_domain_error_and_changes_nothing(staff_client):
    product = ProductFactory(code="ADJ-2", on_hand=1)
    url = reverse("admin:inventory_product_adjust", args=[product.pk])

    response = staff_client.post(url, {"kind": MovementKind.ADJUSTMENT, "quantity": -5, "reason": "x"})

    assert response.status_code == 200
    assert "abaixo de zero" in response.content.decode()  # the staff's language, pt-BR by default
    assert Stock.objects.get(product=product).on_hand == 1


def test_adjust_action_redirects_to_the_form(staff_client):
    product = ProductFactory(code="ADJ-3")
    response = staff_client.post(reverse("admin:inventory_product_changelist"),
                                 {"action": "adjust_stock_action", "_selected_action": [product.pk]})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:inventory_product_adjust", args=[product.pk])


def test_admin_add_product_goes_through_service(staff_client):
    response = staff_client.post(reverse("admin:inventory_product_add"), {
        "code": " new-adm ", "name": "Novo", "category": "x", "unit": "un", "low_stock_threshold": 5,
        "active": "on", "unified_codes-TOTAL_FORMS": 1, "unified_codes-INITIAL_FORMS": 0,
        "unified_codes-0-code": "new-adm-old", "unified_codes-0-note": "",
    })

    assert response.status_code == 302, response.content.decode()[:2000]
    product = Product.objects.get(code="NEW-ADM")
    assert Stock.objects.filter(product=product).exists()
    assert list(product.unified_codes.values_list("code", flat=True)) == ["NEW-ADM-OLD"]


def test_unified_codes_are_found_by_their_product_name_typed_without_accents(staff_client):
    UnifiedCodeFactory(code="EAN-PAO", product=ProductFactory(name="Pão de queijo"))
    UnifiedCodeFactory(code="EAN-ARROZ", product=ProductFactory(name="Arroz"))

    page = staff_client.get(reverse("admin:inventory_unifiedcode_changelist"), {"q": "pao de queijo"}).content.decode()

    assert "EAN-PAO" in page and "EAN-ARROZ" not in page
def test_product_list_speaks_portuguese_under_the_stockpulse_header(staff_client):
    ProductFactory(category="mercearia")

    page = staff_client.get(reverse("admin:inventory_product_changelist"), HTTP_ACCEPT_LANGUAGE="pt-br")

    text = page.content.decode()
    assert "Selecione produto para modificar" in text and "Por categoria" in text and "Abaixo do limite" in text
    assert "StockPulse" in text and "Administração do Django" not in text
    assert "Selecione product" not in text and "Below threshold" not in text
    # No 300 px sidebar: every column of the list fits a 1366 px screen.
    assert 'id="nav-sidebar"' not in text


def test_low_and_out_rows_carry_their_level(staff_client):
    ProductFactory(code="LVL-OUT", on_hand=0)
    ProductFactory(code="LVL-LOW", on_hand=2, low_stock_threshold=5)
    ProductFactory(code="LVL-OK", on_hand=50, low_stock_threshold=5)

    text = staff_client.get(reverse("admin:inventory_product_changelist")).content.decode()

    assert text.count("stock-level--out") == 1 and text.count("stock-level--low") == 1
    assert text.count("stock-level--ok") == 1
    assert "stockpulse/admin.css" in text  # the stylesheet that colours those rows


def test_product_page_shows_its_projection_and_last_ledger_rows(staff_client):
    from projections.services import projection_recompute

    product = ProductFactory(code="PAGE-1", on_hand=4)
    services.stock_receive(code="PAGE-1", quantity=6, reason="entrega do fornecedor", actor="user:ana")
    projection_recompute(product_ids=[product.pk])

    text = staff_client.get(reverse("admin:inventory_product_change", args=[product.pk])).content.decode()

    assert "menor saldo em 7 dias" in text and "dia da ruptura" in text
    assert "entrega do fornecedor" in text and "+6" in text


def test_a_rejected_alias_keeps_what_was_typed_beside_its_error(staff_client):
    product = ProductFactory(code="KEEP-1")
    ProductFactory(code="TAKEN-1")

    response = staff_client.post(reverse("admin:inventory_product_change", args=[product.pk]), {
        "name": "Renomeado", "category": "x", "unit": "un", "low_stock_threshold": 5, "active": "on",
        "unified_codes-TOTAL_FORMS": 1, "unified_codes-INITIAL_FORMS": 0,
        "unified_codes-0-code": "taken-1", "unified_codes-0-note": "etiqueta antiga",
    })

    assert response.status_code == 200
    text = response.content.decode()
    assert "TAKEN-1 já é um código de produto." in text
    assert 'value="taken-1"' in text and 'value="etiqueta antiga"' in text
    assert not UnifiedCode.objects.filter(code="TAKEN-1").exists()
    assert Product.objects.get(pk=product.pk).name != "Renomeado"


def test_a_taken_product_code_is_refused_beside_the_field_with_the_form_kept(staff_client):
    ProductFactory(code="TAKEN-2")

    response = staff_client.post(reverse("admin:inventory_product_add"), {
        "code": "taken-2", "name": "Outro nome", "category": "x", "unit": "un", "low_stock_threshold": 5,
        "active": "on", "unified_codes-TOTAL_FORMS": 0, "unified_codes-INITIAL_FORMS": 0,
    })

    assert response.status_code == 200
    text = response.content.decode()
    assert "TAKEN-2 já é um código de produto." in text and 'value="Outro nome"' in text
    assert Product.objects.filter(code="TAKEN-2").count() == 1
