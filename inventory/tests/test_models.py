"""The Stock table's physical layout (in-place updates) and the product search every search box uses."""
import pytest
from django.db import connection

from inventory.models import Product
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory


@pytest.mark.django_db
def test_stock_counters_have_no_index_and_pages_keep_room_so_reservations_update_in_place():
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT a.attname FROM pg_index i
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = 'inventory_stock'::regclass""")
        indexed = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = 'inventory_stock'::regclass")
        options = cursor.fetchone()[0]

    assert indexed == {"id", "product_id", "location_id"}
    assert "fillfactor=70" in options


@pytest.mark.django_db
@pytest.mark.parametrize("term, name", [("cafe", "Café torrado 500g"), ("feijao", "Feijão carioca 1kg"),
                                        ("pao", "Pão francês"), ("agua", "Água mineral 1,5L"),
                                        ("ACUCAR", "açúcar cristal")])
def test_search_finds_names_without_their_accents(term, name):
    ProductFactory(name=name)
    ProductFactory(name="Detergente neutro")

    assert [p.name for p in Product.objects.search(term)] == [name]


@pytest.mark.django_db
def test_search_finds_part_of_a_barcode_or_of_an_alias_in_the_same_box():
    by_code = ProductFactory(code="7891000100103", name="Leite integral")
    by_alias = ProductFactory(code="LEITE-2", name="Leite desnatado")
    UnifiedCodeFactory(code="7896000999", product=by_alias)
    ProductFactory(code="OTHER-1", name="Arroz")

    assert list(Product.objects.search("1000100")) == [by_code]
    assert list(Product.objects.search("6000999")) == [by_alias]


@pytest.mark.django_db
def test_search_ranks_the_closest_names_first():
    ProductFactory(name="Cafeteira elétrica")
    ProductFactory(name="Café torrado e moído tradicional 500g")
    ProductFactory(name="Café")
    ProductFactory(name="Café torrado 500g")

    names = [p.name for p in Product.objects.search("cafe")]

    # The whole word before a word that only starts with it; among those, the closest (shortest) name first.
    assert names == ["Café", "Café torrado 500g", "Café torrado e moído tradicional 500g", "Cafeteira elétrica"]


@pytest.mark.django_db
def test_search_puts_an_exact_code_before_names_that_contain_it():
    named = ProductFactory(code="SKU-A", name="Kit ARROZ-5 e feijão")
    coded = ProductFactory(code="ARROZ-5", name="Arroz tipo 1 5kg")

    assert list(Product.objects.search("arroz-5")) == [coded, named]


@pytest.mark.django_db
def test_search_tolerates_a_typo():
    ProductFactory(name="Arroz agulhinha 5kg")
    ProductFactory(name="Feijão preto")

    assert [p.name for p in Product.objects.search("arros")] == ["Arroz agulhinha 5kg"]


@pytest.mark.django_db
def test_name_search_can_use_the_trigram_index():
    """f_unaccent is IMMUTABLE, so search_name (f_unaccent(lower(name))) can be a stored column with a
    trigram index (a plain unaccent() could be neither). With sequential scans off the plan must use it."""
    ProductFactory(name="Feijão")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = Product.objects.search("feijao").explain()

    assert "product_search_name_trgm_idx" in plan


@pytest.mark.django_db
@pytest.mark.parametrize("term", ["c++", "50%_off", "(1/2)", "ação!?"])
def test_search_finds_names_with_regex_and_like_characters(term):
    product = ProductFactory(name="C++ Ação!? 50%_off (1/2)")
    ProductFactory(name="Arroz")

    assert list(Product.objects.search(term)) == [product]


@pytest.mark.django_db
@pytest.mark.parametrize("term", ["\\", "'; drop table inventory_product; --", "[a-z]*", "%", "_"])
def test_search_takes_any_text_as_plain_text(term):
    ProductFactory(name="Arroz")

    assert list(Product.objects.search(term)) == []
    assert Product.objects.count() == 1
