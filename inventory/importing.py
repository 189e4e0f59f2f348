"""ERP stock import: parse CSV or JSON, validate every row first, then apply all rows or none as "count" movements."""
import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from core.db import atomic_with_retry
from core.errors import ValidationFailed
from core.jsoninput import JSONInputError, json_input_loads
from inventory.codes import code_is_valid, code_normalise
from inventory.locks import stocks_lock
from inventory.models import MovementKind, Product, UnifiedCode
from inventory.services import StockChange, product_create, product_update, stock_apply, unified_code_create

COLUMNS = ("code", "name", "category", "on_hand", "threshold", "aliases")
MAX_ROWS = 50_000
# Column names of a Bling-style product export, read as ours (see docs/orders-webhooks-import.md).
HEADER_ALIASES = {
    "código": "code", "codigo": "code", "sku": "code",
    "descrição": "name", "descricao": "name", "nome": "name",
    "categoria": "category", "grupo de produtos": "category",
    "estoque": "on_hand", "saldo": "on_hand", "quantidade": "on_hand",
    "estoque mínimo": "threshold", "estoque minimo": "threshold",
    "gtin/ean": "aliases", "gtin": "aliases", "ean": "aliases",
}


def _column(name: object) -> str:
    key = str(name).strip().lower()
    return HEADER_ALIASES.get(key, key)


@dataclass
class ImportRow:
    line: int
    code: str
    name: str
    category: str | None
    on_hand: int | None
    threshold: int | None
    aliases: list[str]


@dataclass
class ImportResult:
    rows: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    counted: list[dict[str, Any]] = field(default_factory=list)
    aliases_added: list[str] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "created": len(self.created), "updated": len(self.updated),
                "counted": self.counted, "aliases_added": len(self.aliases_added), "dry_run": self.dry_run}


class ImportInvalid(ValidationFailed):
    code = "import_invalid"
    default_message = "The file has invalid rows; nothing was imported."

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(f"{len({e['line'] for e in errors})} invalid rows; nothing was imported.",
                         details={"errors": errors})
        self.errors = errors


def rows_parse(*, content: str | bytes, fmt: str) -> list[tuple[int, dict[str, Any]]]:
    """[(line number, raw row)]. CSV lines count the header as line 1; JSON items count from 1."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed("The file must be UTF-8 text.", details={"format": fmt}) from None
    if fmt == "csv" and "\x00" in content:
        # PostgreSQL text cannot hold it; JSON files are checked by json_input_loads.
        line = content.count("\n", 0, content.index("\x00")) + 1
        raise ValidationFailed(f"The file cannot contain the NUL character (line {line}).", details={"line": line})
    if fmt == "json":
        try:
            data = json_input_loads(content)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"The JSON is malformed: {exc.msg} (line {exc.lineno}).",
                                   details={"line": exc.lineno}) from None
        except JSONInputError as exc:
            raise ValidationFailed(f"The JSON cannot be read: {exc}.") from None
        items = data.get("items") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ValidationFailed("JSON must be a list of rows or {\"items\": [...]}.")
        rows = [(n, item) for n, item in enumerate(items, start=1)]
    elif fmt == "csv":
        sample = content[:4096]
        delimiter = ";" if sample.count(";") > sample.count(",") else ","
        reader = csv.DictReader(io.StringIO(content), delimiter=delimiter)
        header = [_column(h) for h in (reader.fieldnames or [])]
        if "code" not in header:
            raise ValidationFailed("The CSV header must name the columns; 'code' is required.",
                                   details={"header": header, "columns": list(COLUMNS)})
        reader.fieldnames = header
        rows = [(reader.line_num, row) for row in reader if any((v or "").strip() for v in row.values() if isinstance(v, str))]
    else:
        raise ValidationFailed("The format is csv or json.", details={"format": fmt})
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(f"At most {MAX_ROWS} rows per import.", details={"rows": len(rows)})
    return rows


def _int(value: Any, *, field_name: str, line: int, errors: list, minimum: int = 0) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        text = str(value).strip().replace(",", ".")
        try:
            as_float = float(text)
            number = int(as_float) if as_float.is_integer() else None
        except ValueError:
            number = None
    if number is None or number < minimum or number > settings.STOCK_MAX_QUANTITY:
        errors.append({"line": line, "field": field_name,
                       "message": f"{field_name} must be a whole number from {minimum} to {settings.STOCK_MAX_QUANTITY}.",
                       "value": str(value)})
        return None
    return number


def _aliases(value: Any) -> list[str]:
    if value is None:
        return []
    parts = value if isinstance(value, list) else str(value).replace(";", "|").replace(",", "|").split("|")
    return [code_normalise(p) for p in parts if str(p).strip()]


def rows_validate(*, rows: list[tuple[int, dict[str, Any]]]) -> list[ImportRow]:
    """Check every row against the file and the catalogue; raise ImportInvalid listing every problem."""
    errors: list[dict[str, Any]] = []
    cleaned: list[ImportRow] = []
    for line, raw in rows:
        if not isinstance(raw, dict):
            errors.append({"line": line, "field": "row", "message": "A row must be an object."})
            continue
        raw = {_column(k): v for k, v in raw.items() if k is not None}
        code = code_normalise(raw.get("code") or "")
        if not code_is_valid(code):
            errors.append({"line": line, "field": "code", "message": "A code is 1-64 characters: letters, digits "
                           "and . _ - /, starting with a letter or digit.", "value": code})
        name = str(raw.get("name") or "").strip()
        if len(name) > 200:
            errors.append({"line": line, "field": "name", "message": "name is at most 200 characters."})
        category = raw.get("category")
        category = None if category is None else str(category).strip()
        if category and len(category) > 100:
            errors.append({"line": line, "field": "category", "message": "category is at most 100 characters."})
        on_hand = _int(raw.get("on_hand"), field_name="on_hand", line=line, errors=errors)
        threshold = _int(raw.get("threshold"), field_name="threshold", line=line, errors=errors)
        aliases = _aliases(raw.get("aliases"))
        for alias in aliases:
            if not code_is_valid(alias) or alias == code:
                errors.append({"line": line, "field": "aliases", "message": "Not a valid alias code.", "value": alias})
        cleaned.append(ImportRow(line, code, name, category, on_hand, threshold, aliases))

    products = {p.code: p for p in Product.objects.filter(code__in=[r.code for r in cleaned])}
    alias_rows = UnifiedCode.objects.select_related("product").filter(
        code__in=[r.code for r in cleaned] + [a for r in cleaned for a in r.aliases])
    alias_owner = {u.code: u.product.code for u in alias_rows}
    seen: dict[str, int] = {}
    claimed: dict[str, str] = {}
    file_codes = {r.code for r in cleaned}
    for row in cleaned:
        target = alias_owner.get(row.code, row.code)
        if target in seen:
            errors.append({"line": row.line, "field": "code",
                           "message": f"Same product as line {seen[target]}.", "value": row.code})
        seen.setdefault(target, row.line)
        if row.code not in products and row.code not in alias_owner:
            if not row.name:
                errors.append({"line": row.line, "field": "name", "message": "A new product needs a name."})
            if row.on_hand is None and not any(e["line"] == row.line and e["field"] == "on_hand" for e in errors):
                errors.append({"line": row.line, "field": "on_hand", "message": "A new product needs on_hand."})
        for alias in row.aliases:
            owner = alias_owner.get(alias)
            if alias in products or alias in file_codes:
                errors.append({"line": row.line, "field": "aliases", "value": alias,
                               "message": f"{alias} is a product code, not an alias."})
            elif owner is not None and owner != target:
                errors.append({"line": row.line, "field": "aliases", "value": alias,
                               "message": f"{alias} already counts as {owner}'s stock."})
            elif alias in claimed and claimed[alias] != target:
                errors.append({"line": row.line, "field": "aliases", "value": alias,
                               "message": f"{alias} is given to two products in this file."})
            claimed.setdefault(alias, target)
    if errors:
        raise ImportInvalid(sorted(errors, key=lambda e: (e["line"], e["field"])))
    return cleaned


@atomic_with_retry()
def stock_import(*, content: str | bytes, fmt: str, actor: str = "", reference: str = "",
                 dry_run: bool = False) -> ImportResult:
    """Import an ERP file: every row is validated first, then all rows are applied in one transaction.

    New codes become products (with aliases); known products get their name, category and threshold
    updated when given; on_hand is set by a "count" ledger movement of the difference. A dry run
    validates and reports what would change, then rolls back.
    """
    rows = rows_validate(rows=rows_parse(content=content, fmt=fmt))
    result = ImportResult(rows=len(rows), dry_run=dry_run)
    sid = transaction.savepoint()
    targets: dict[int, tuple[ImportRow, Product]] = {}
    for row in rows:
        product = Product.objects.filter(code=row.code).first()
        if product is None:
            alias = UnifiedCode.objects.select_related("product").filter(code=row.code).first()
            product = alias.product if alias else None
        if product is None:
            product = product_create(code=row.code, name=row.name, category=row.category or "",
                                     low_stock_threshold=row.threshold, aliases=row.aliases)
            result.created.append(product.code)
            result.aliases_added.extend(row.aliases)
        else:
            changed = (row.name and row.name != product.name) or (
                row.category is not None and row.category != product.category) or (
                row.threshold is not None and row.threshold != product.low_stock_threshold)
            if changed:
                product_update(product=product, name=row.name or None, category=row.category,
                               low_stock_threshold=row.threshold)
                result.updated.append(product.code)
            known = set(product.unified_codes.values_list("code", flat=True))
            for alias in row.aliases:
                if alias not in known:
                    unified_code_create(code=alias, product=product, note="ERP import")
                    result.aliases_added.append(alias)
        if row.on_hand is not None:
            targets[product.pk] = (row, product)

    changes, short = [], []
    for stock in stocks_lock(product_ids=list(targets)):
        row, product = targets[stock.product_id]
        delta = row.on_hand - stock.on_hand
        if delta == 0:
            continue
        if row.on_hand < stock.reserved:
            short.append({"line": row.line, "field": "on_hand", "value": str(row.on_hand),
                          "message": f"{stock.reserved} units are reserved; on_hand cannot go below that."})
            continue
        changes.append(StockChange(product_id=stock.product_id, on_hand=delta, kind=MovementKind.COUNT,
                                   reason="ERP import", reference=reference))
        result.counted.append({"code": product.code, "from": stock.on_hand, "to": row.on_hand})
    if short:
        raise ImportInvalid(sorted(short, key=lambda e: e["line"]))
    stock_apply(changes=changes, actor=actor or "system:import")
    if dry_run:
        transaction.savepoint_rollback(sid)
    else:
        transaction.savepoint_commit(sid)
    return result
