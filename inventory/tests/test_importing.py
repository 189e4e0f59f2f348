"""ERP import: every row validated first, every bad line reported, all rows applied as "count" movements or none."""
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import translation

from core.errors import ValidationFailed
from core.realtime import realtime_publish
from inventory import importing
from inventory.importing import ImportInvalid, stock_import
from inventory.models import MovementKind, Product, Stock, StockMovement, UnifiedCode
from inventory.selectors import ledger_audit, ledger_drift
from inventory.tests.factories import ProductFactory, UnifiedCodeFactory

GOOD_CSV = """code,name,category,on_hand,threshold,aliases
CAFE-500,Café 500 g,mercearia,40,8,7891000100103|CAFE500
LEITE-1L,Leite integral 1 L,laticinios,120,,
"""


def _state() -> tuple:
    return (
        sorted(Product.objects.values_list("code", "name", "low_stock_threshold")),
        sorted(Stock.objects.values_list("product__code", "on_hand")),
        StockMovement.objects.count(),
        UnifiedCode.objects.count(),
    )


@pytest.mark.django_db
def test_csv_import_creates_products_with_counts_and_aliases():
    result = stock_import(content=GOOD_CSV, fmt="csv", reference="bling-2026-11-23")

    assert sorted(result.created) == ["CAFE-500", "LEITE-1L"]
    assert Stock.objects.get(product__code="CAFE-500").on_hand == 40
    assert Product.objects.get(code="CAFE-500").low_stock_threshold == 8
    assert sorted(UnifiedCode.objects.values_list("code", flat=True)) == ["7891000100103", "CAFE500"]
    movement = StockMovement.objects.get(product__code="LEITE-1L")
    assert (movement.kind, movement.quantity, movement.reference) == (MovementKind.COUNT, 120, "bling-2026-11-23")


@pytest.mark.django_db
def test_import_sets_known_products_to_the_counted_quantity():
    ProductFactory(code="ARROZ-1", name="Arroz", on_hand=30)
    UnifiedCodeFactory(code="ARROZ-OLD", product=Product.objects.get(code="ARROZ-1"))
    rows = [{"code": "ARROZ-1", "on_hand": 25}, {"code": "arroz-old", "on_hand": 25, "name": "Arroz 5 kg"}]

    with pytest.raises(ImportInvalid):
        stock_import(content=json.dumps(rows), fmt="json")  # one product named twice
    result = stock_import(content=json.dumps(rows[:1]), fmt="json")

    assert result.counted == [{"code": "ARROZ-1", "from": 30, "to": 25}]
    count = StockMovement.objects.filter(kind=MovementKind.COUNT).get()
    assert (count.quantity, count.on_hand_after) == (-5, 25)
    assert Product.objects.get(code="ARROZ-1").name == "Arroz"


@pytest.mark.django_db
def test_import_through_an_alias_counts_the_product():
    product = ProductFactory(code="OLEO-900", on_hand=3)
    UnifiedCodeFactory(code="7890000000900", product=product)

    stock_import(content=json.dumps({"items": [{"code": "7890000000900", "on_hand": 9}]}), fmt="json")

    assert Stock.objects.get(product=product).on_hand == 9


@pytest.mark.django_db
def test_file_with_bad_rows_applies_nothing_and_reports_every_bad_line():
    ProductFactory(code="SAL-1", on_hand=5)
    ProductFactory(code="ACUCAR-1", on_hand=5)
    UnifiedCodeFactory(code="TAKEN-ALIAS", product=Product.objects.get(code="ACUCAR-1"))
    content = """code,name,category,on_hand,threshold,aliases
SAL-1,Sal,mercearia,7,,
NOVO-1,,mercearia,3,,
NOVO-2,Produto,mercearia,-4,,
,Sem código,mercearia,1,,
NOVO-3,Produto 3,mercearia,2,x,
SAL-1,Sal de novo,mercearia,8,,
NOVO-4,Produto 4,mercearia,2,,TAKEN-ALIAS
NOVO-5,Produto 5,mercearia,2.5,,
"""
    before = _state()

    with pytest.raises(ImportInvalid) as caught:
        stock_import(content=content, fmt="csv")

    lines = sorted({e["line"] for e in caught.value.errors})
    assert lines == [3, 4, 5, 6, 7, 8, 9]
    fields = {(e["line"], e["field"]) for e in caught.value.errors}
    assert {(3, "name"), (4, "on_hand"), (5, "code"), (6, "threshold"), (7, "code"), (8, "aliases"),
            (9, "on_hand")} <= fields
    assert _state() == before


@pytest.mark.django_db
def test_count_below_reserved_units_is_refused():
    ProductFactory(code="VINHO-2", on_hand=10)
    Stock.objects.filter(product__code="VINHO-2").update(reserved=6)

    with pytest.raises(ImportInvalid) as caught:
        stock_import(content=json.dumps([{"code": "VINHO-2", "on_hand": 4}]), fmt="json")

    assert caught.value.errors[0]["line"] == 1
    assert Stock.objects.get(product__code="VINHO-2").on_hand == 10


@pytest.mark.django_db
def test_dry_run_reports_and_changes_nothing():
    before = _state()

    result = stock_import(content=GOOD_CSV, fmt="csv", dry_run=True)

    assert len(result.created) == 2 and result.dry_run
    assert _state() == before


@pytest.mark.django_db
def test_semicolon_csv_from_a_spreadsheet_is_read():
    content = "\ufeffcode;name;category;on_hand\nFARINHA-1;Farinha;mercearia;12\n"

    stock_import(content=content.encode("utf-8"), fmt="csv")

    assert Stock.objects.get(product__code="FARINHA-1").on_hand == 12


@pytest.mark.django_db
def test_command_imports_a_file(tmp_path, capsys):
    path = tmp_path / "export.csv"
    path.write_text(GOOD_CSV)

    call_command("import_stock", str(path), "--reference", "erp-1")

    assert Stock.objects.get(product__code="LEITE-1L").on_hand == 120
    assert "2 products created" in capsys.readouterr().out


@pytest.mark.django_db
def test_command_prints_every_bad_line_and_fails(tmp_path, capsys):
    path = tmp_path / "export.json"
    path.write_text(json.dumps([{"code": "OK-1", "name": "Ok", "on_hand": 1}, {"code": "BAD 1", "on_hand": 1},
                                {"code": "BAD-2", "name": "x", "on_hand": "many"}]))

    with pytest.raises(CommandError):
        call_command("import_stock", str(path))

    err = capsys.readouterr().err
    assert "line 2: code" in err and "line 3: on_hand" in err
    assert Product.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("content", ['[{"code": "CAFE-1", "on_hand": 1e400}]', '[{"code": "CAFE\\u0000", "on_hand": 1}]'])
def test_an_import_with_an_infinite_number_or_a_nul_is_refused_whole(content):
    with pytest.raises(ValidationFailed, match="cannot be read"), translation.override("en"):
        stock_import(content=content.encode(), fmt="json")

    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_a_csv_with_a_nul_character_is_refused_whole_with_its_line():
    content = b"code,on_hand\nCAFE-1,5\nCAFE\x00X,5\n"

    with pytest.raises(ValidationFailed, match="NUL") as refused:
        stock_import(content=content, fmt="csv")

    assert refused.value.details == {"line": 3}
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_bling_style_export_columns_are_understood():
    content = ("Código;Descrição;Unidade;Categoria;Estoque;Estoque mínimo;GTIN/EAN\n"
               "CAFE-250;Café 250 g;UN;Mercearia;18,000;4;7891000055123\n")

    stock_import(content=content.encode("utf-8"), fmt="csv")

    product = Product.objects.get(code="CAFE-250")
    assert (product.name, product.category, product.low_stock_threshold) == ("Café 250 g", "Mercearia", 4)
    assert Stock.objects.get(product=product).on_hand == 18
    assert UnifiedCode.objects.get().code == "7891000055123"


def _csv(rows: list[tuple]) -> str:
    return "code,name,category,on_hand,threshold,aliases\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def _mixed_file(known: list[Product], new: int, *, via_alias: dict[int, str] | None = None) -> list[tuple]:
    """Rows for known products (by alias when given) counted at 7 + i, then ``new`` new products with an EAN alias."""
    via_alias = via_alias or {}
    rows = [(via_alias.get(p.pk, p.code), "", "", 7 + i, "", "") for i, p in enumerate(known)]
    rows += [(f"NEW-{n:05d}", f"New {n}", "bulk", n % 50, 3, f"789{n:010d}") for n in range(new)]
    return rows


@pytest.mark.django_db
def test_a_bad_last_line_in_a_large_file_changes_nothing():
    known = [ProductFactory(on_hand=20) for _ in range(50)]
    rows = _mixed_file(known, 1_950) + [("NEW-LAST", "Last", "bulk", "-3", "", "")]
    before = _state()

    with pytest.raises(ImportInvalid) as refused, translation.override("en"):
        stock_import(content=_csv(rows), fmt="csv")

    assert refused.value.errors == [{"line": 2_002, "field": "on_hand", "code": "not_a_quantity", "value": "-3",
                                     "message": "on_hand must be a whole number from 0 to 1000000."}]
    assert _state() == before


@pytest.mark.django_db
def test_known_and_new_products_and_aliases_in_one_file_keep_the_ledger_whole():
    known = [ProductFactory(on_hand=100) for _ in range(30)]
    old_alias = UnifiedCodeFactory(code="OLD-CODE-0", product=known[0])
    versions = dict(Stock.objects.values_list("product_id", "version"))

    result = stock_import(content=_csv(_mixed_file(known, 300, via_alias={known[0].pk: old_alias.code})),
                          fmt="csv", reference="erp-7")

    assert (len(result.created), len(result.counted), len(result.aliases_added)) == (300, 30 + 294, 300)
    assert Stock.objects.get(product=known[0]).on_hand == 7  # counted through its alias
    assert Stock.objects.get(product__code="NEW-00042").on_hand == 42
    assert UnifiedCode.objects.get(code="7890000000042").product.code == "NEW-00042"
    assert ledger_audit() == {"sum": [], "count": []}  # the counts too: one ledger row per counted change
    bumped = {pid: v for pid, v in Stock.objects.values_list("product_id", "version")}
    assert all(bumped[p.pk] == versions[p.pk] + 1 for p in known)
    counts = StockMovement.objects.filter(kind=MovementKind.COUNT, reference="erp-7")
    assert counts.count() == 324 and counts.get(product=known[0]).quantity == 7 - 100


@pytest.mark.django_db
def test_an_empty_category_cell_leaves_the_category_alone():
    ProductFactory(code="MEL-1", category="mercearia", on_hand=2)

    stock_import(content="code,name,category,on_hand\nMEL-1,,,5\n", fmt="csv")

    assert Product.objects.get(code="MEL-1").category == "mercearia"


def _locks_held_after_import(rows: list[tuple]) -> int:
    """The locks this session holds once the import is applied, before its transaction ends."""
    with transaction.atomic():
        stock_import(content=_csv(rows), fmt="csv")
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()")
            held = cursor.fetchone()[0]
        transaction.set_rollback(True)
    return held


@pytest.mark.django_db
def test_the_locks_an_import_holds_do_not_grow_with_its_rows():
    # One lock per new code ran the server's lock table (max_locks_per_transaction x connections)
    # out of shared memory: "out of shared memory" at 20,000 new codes.
    small = _locks_held_after_import(_mixed_file([], 30))
    large = _locks_held_after_import(_mixed_file([], 3_000))

    assert large - small < 20  # the same relations, whatever the rows (it was one more lock per code)
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_twenty_thousand_new_products_import_in_one_go():
    result = stock_import(content=_csv(_mixed_file([], 20_000)), fmt="csv")

    assert len(result.created) == 20_000
    assert Product.objects.count() == 20_000 and UnifiedCode.objects.count() == 20_000
    assert ledger_drift() == []


@pytest.mark.django_db
def test_the_changed_rows_are_published_in_a_few_batches_after_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        stock_import(content=_csv(_mixed_file([], 4_500)), fmt="csv")

    publishes = [cb for cb in callbacks if getattr(cb, "func", None) is realtime_publish
                 and cb.args[0][0]["type"] == "stock.changed"]
    events = [e for cb in publishes for e in cb.args[0]]
    assert len(publishes) == 3 and max(len(cb.args[0]) for cb in publishes) <= importing.EVENTS_BATCH
    assert len(events) == 4_410  # every new product with a count above zero, once
    assert len({e["code"] for e in events}) == 4_410
