"""ERP stock import: parse CSV or JSON, validate every row first, then apply all rows or none as "count" movements.

The apply is set-based: the rows are copied into a temporary table and each step (new products, their
stock rows, aliases, changed products, ledger rows, counters) is one statement per chunk of rows. The
catalogue tables are locked once for the import and the touched stock rows in one statement in pk
order, instead of a lock per code, which ran PostgreSQL out of lock memory on large files.
"""
import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import atomic_with_retry
from core.errors import ValidationFailed
from core.jsoninput import JSONInputError, json_input_loads
from core.metrics import STOCK_CHANGES
from inventory.codes import code_is_valid, code_normalise
from inventory.models import Location, MovementKind, Product, Stock, StockMovement, UnifiedCode, Unit
from inventory.selectors import location_default_id, location_resolve
from inventory.stock_changes import stock_rows_changed

COLUMNS = ("code", "name", "category", "on_hand", "threshold", "aliases")
MAX_ROWS = 100_000
# Rows per statement in the apply; progress is reported after each chunk.
CHUNK_ROWS = 10_000
# How often validation reports progress (rows).
VALIDATE_REPORT_EVERY = 5_000
REASON = "ERP import"
# Changed rows per call of the stock hook: each call is one batched publish after commit, small enough to
# reach the channel layer within REALTIME_PUBLISH_TIMEOUT (100,000 events in one call did not).
EVENTS_BATCH = 2_000

# progress(phase, rows done in that phase, rows in all). Phases: parsing, validating, applying.
Progress = Callable[[str, int, int], None]
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
    product_id: int | None = None  # the known product this row counts for (by code or alias); None: new


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

    def summary(self) -> dict[str, Any]:
        """``as_dict`` with the number of changed counts instead of their list (kept on an import job)."""
        return {**self.as_dict(), "counted": len(self.counted)}


class ImportInvalid(ValidationFailed):
    code = "import_invalid"
    default_message = "The file has invalid rows; nothing was imported."

    def __init__(self, errors: list[dict[str, Any]]):
        rows = len({e["line"] for e in errors})
        super().__init__(_("%(rows)d invalid rows; nothing was imported.") % {"rows": rows},
                         details={"errors": errors})
        self.errors = errors


def _error(line: int, field_name: str, code: str, message: str, value: Any = None) -> dict[str, Any]:
    """One bad cell: its line, column (``field``), a stable ``code`` and a message for people."""
    error = {"line": line, "field": field_name, "code": code, "message": message}
    if value is not None:
        error["value"] = str(value)
    return error


def rows_parse(*, content: str | bytes, fmt: str) -> list[tuple[int, dict[str, Any]]]:
    """[(line number, raw row)]. CSV lines count the header as line 1; JSON items count from 1."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed(_("The file must be UTF-8 text."), details={"format": fmt}) from None
    if fmt == "csv" and "\x00" in content:
        # PostgreSQL text cannot hold it; JSON files are checked by json_input_loads.
        line = content.count("\n", 0, content.index("\x00")) + 1
        raise ValidationFailed(_("The file cannot contain the NUL character (line %(line)d).") % {"line": line},
                               details={"line": line})
    if fmt == "json":
        try:
            data = json_input_loads(content)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(_("The JSON is malformed at line %(line)d, column %(column)d.") % {
                "line": exc.lineno, "column": exc.colno},
                                   details={"line": exc.lineno}) from None
        except JSONInputError as exc:
            raise ValidationFailed(_("The JSON cannot be read: %(reason)s.") % {"reason": exc}) from None
        items = data.get("items") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ValidationFailed(_("JSON must be a list of rows or {\"items\": [...]}."))
        rows = [(n, item) for n, item in enumerate(items, start=1)]
    elif fmt == "csv":
        sample = content[:4096]
        delimiter = ";" if sample.count(";") > sample.count(",") else ","
        reader = csv.DictReader(io.StringIO(content), delimiter=delimiter)
        header = [_column(h) for h in (reader.fieldnames or [])]
        if "code" not in header:
            raise ValidationFailed(_("The CSV header must name the columns; 'code' is required."),
                                   details={"header": header, "columns": list(COLUMNS)})
        reader.fieldnames = header
        rows = [(reader.line_num, row) for row in reader if any((v or "").strip() for v in row.values() if isinstance(v, str))]
    else:
        raise ValidationFailed(_("The format is csv or json."), details={"format": fmt})
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(_("At most %(max)d rows per import.") % {"max": MAX_ROWS},
                               details={"rows": len(rows)})
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
        errors.append(_error(line, field_name, "not_a_quantity",
                             _("%(field)s must be a whole number from %(min)d to %(max)d.") % {
                                 "field": field_name, "min": minimum, "max": settings.STOCK_MAX_QUANTITY},
                             value))
        return None
    return number


def _aliases(value: Any) -> list[str]:
    if value is None:
        return []
    parts = value if isinstance(value, list) else str(value).replace(";", "|").replace(",", "|").split("|")
    return list(dict.fromkeys(code_normalise(p) for p in parts if str(p).strip()))



def _rows_clean(*, rows: list[tuple[int, dict[str, Any]]], errors: list[dict[str, Any]],
                progress: Progress | None) -> list[ImportRow]:
    """Check each row on its own (codes, numbers, lengths); the catalogue is not read here."""
    cleaned: list[ImportRow] = []
    total = len(rows)
    for done, (line, raw) in enumerate(rows, start=1):
        if progress and done % VALIDATE_REPORT_EVERY == 0:
            progress("validating", done, total)
        if not isinstance(raw, dict):
            errors.append(_error(line, "row", "not_an_object", _("A row must be an object.")))
            continue
        raw = {_column(k): v for k, v in raw.items() if k is not None}
        code = code_normalise(raw.get("code") or "")
        if not code_is_valid(code):
            errors.append(_error(line, "code", "invalid_code",
                                 _("A code is 1-64 characters: letters, digits and . _ -, starting with a letter "
                                   "or digit."), code))
        name = str(raw.get("name") or "").strip()
        if len(name) > 200:
            errors.append(_error(line, "name", "too_long", _("name is at most 200 characters.")))
        category = raw.get("category")
        category = str(category).strip() if category is not None else ""
        category = category or None  # an empty cell leaves a known product's category alone
        if category and len(category) > 100:
            errors.append(_error(line, "category", "too_long", _("category is at most 100 characters.")))
        on_hand = _int(raw.get("on_hand"), field_name="on_hand", line=line, errors=errors)
        threshold = _int(raw.get("threshold"), field_name="threshold", line=line, errors=errors)
        aliases = _aliases(raw.get("aliases"))
        for alias in aliases:
            if not code_is_valid(alias) or alias == code:
                errors.append(_error(line, "aliases", "invalid_alias", _("Not a valid alias code."), alias))
        cleaned.append(ImportRow(line, code, name, category, on_hand, threshold, aliases))
    return cleaned


def _catalogue(codes: list[str]) -> tuple[dict[str, int], dict[str, tuple[int, str]]]:
    """({product code: id}, {alias code: (product id, product code)}) for these codes: two queries,
    the codes passed as one array (a file's 100,000 codes would not fit as separate parameters)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT code, id FROM {Product._meta.db_table} WHERE code = ANY(%s)", [codes])
        products = dict(cursor.fetchall())
        cursor.execute(
            f"SELECT u.code, p.id, p.code FROM {UnifiedCode._meta.db_table} u "
            f"JOIN {Product._meta.db_table} p ON p.id = u.product_id WHERE u.code = ANY(%s)", [codes])
        aliases = {code: (pid, pcode) for code, pid, pcode in cursor.fetchall()}
    return products, aliases


def _rows_check_catalogue(*, cleaned: list[ImportRow], errors: list[dict[str, Any]]) -> None:
    """Check the rows against each other and the catalogue; resolve each known row's product."""
    file_codes = {r.code for r in cleaned}
    products, alias_rows = _catalogue(sorted(file_codes | {a for r in cleaned for a in r.aliases}))
    alias_owner = {code: pcode for code, (_, pcode) in alias_rows.items()}
    lines_with_on_hand_error = {e["line"] for e in errors if e["field"] == "on_hand"}
    seen: dict[str, int] = {}
    claimed: dict[str, str] = {}
    for row in cleaned:
        target = alias_owner.get(row.code, row.code)
        if target in seen:
            errors.append(_error(row.line, "code", "duplicate_product",
                                 _("Same product as line %(line)d.") % {"line": seen[target]},
                                 row.code))
        seen.setdefault(target, row.line)
        if row.code in products:
            row.product_id = products[row.code]
        elif row.code in alias_rows:
            row.product_id = alias_rows[row.code][0]
        else:
            if not row.name:
                errors.append(_error(row.line, "name", "name_required", _("A new product needs a name.")))
            if row.on_hand is None and row.line not in lines_with_on_hand_error:
                errors.append(_error(row.line, "on_hand", "on_hand_required", _("A new product needs on_hand.")))
        for alias in row.aliases:
            owner = alias_owner.get(alias)
            if alias in products or alias in file_codes:
                errors.append(_error(row.line, "aliases", "alias_is_product_code",
                                     _("%(alias)s is a product code, not an alias.") % {"alias": alias},
                                     alias))
            elif owner is not None and owner != target:
                errors.append(_error(row.line, "aliases", "alias_taken",
                                     _("%(alias)s already counts as the stock of %(owner)s.")
                                     % {"alias": alias, "owner": owner},
                                     alias))
            elif alias in claimed and claimed[alias] != target:
                errors.append(_error(row.line, "aliases", "alias_twice",
                                     _("%(alias)s is given to two products in this file.") % {"alias": alias},
                                     alias))
            claimed.setdefault(alias, target)


def _raise_if_errors(errors: list[dict[str, Any]]) -> None:
    if errors:
        raise ImportInvalid(sorted(errors, key=lambda e: (e["line"], e["field"])))


def rows_validate(*, rows: list[tuple[int, dict[str, Any]]], progress: Progress | None = None) -> list[ImportRow]:
    """Check every row against the file and the catalogue; raise ImportInvalid listing every problem.

    Known rows come back with ``product_id`` set. To apply what was checked, call it with the
    catalogue locked (``stock_import`` does).
    """
    errors: list[dict[str, Any]] = []
    cleaned = _rows_clean(rows=rows, errors=errors, progress=progress)
    _rows_check_catalogue(cleaned=cleaned, errors=errors)
    _raise_if_errors(errors)
    if progress:
        progress("validating", len(rows), len(rows))
    return cleaned


_ROWS = "import_rows"
_ALIASES = "import_aliases"


def _staging_create(cursor, rows: list[ImportRow]) -> None:
    """The file, as checked, in two temporary tables (COPY: one round trip for all rows)."""
    cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{_ROWS}, pg_temp.{_ALIASES}")
    cursor.execute(
        f"CREATE TEMP TABLE {_ROWS} (line integer PRIMARY KEY, product_id bigint, is_new boolean NOT NULL, "
        "code text NOT NULL, name text NOT NULL, category text, on_hand bigint, threshold bigint, "
        "old_on_hand bigint, reserved bigint) ON COMMIT DROP")
    cursor.execute(f"CREATE TEMP TABLE {_ALIASES} (line integer NOT NULL, code text NOT NULL) ON COMMIT DROP")
    with cursor.copy(f"COPY {_ROWS} (line, product_id, is_new, code, name, category, on_hand, threshold) "
                     "FROM STDIN") as copy:
        for r in rows:
            copy.write_row((r.line, r.product_id, r.product_id is None, r.code, r.name, r.category, r.on_hand,
                            r.threshold))
    with cursor.copy(f"COPY {_ALIASES} (line, code) FROM STDIN") as copy:
        for r in rows:
            for alias in r.aliases:
                copy.write_row((r.line, alias))
    cursor.execute(f"CREATE INDEX ON {_ALIASES} (line)")
    cursor.execute(f"ANALYZE {_ROWS}")
    cursor.execute(f"ANALYZE {_ALIASES}")


def _stock_lock_and_check(cursor, *, location_id: int) -> None:
    """Lock every known stock row the file counts at the import's location (creating the missing ones,
    empty), in one statement in pk order, note its counters, and refuse counts below the units reserved."""
    stock = Stock._meta.db_table
    cursor.execute(
        f"INSERT INTO {stock} (product_id, location_id, on_hand, reserved, version, updated_at) "
        f"SELECT r.product_id, %(loc)s, 0, 0, 0, now() FROM {_ROWS} r "
        "WHERE r.product_id IS NOT NULL AND r.on_hand IS NOT NULL ORDER BY r.product_id "
        "ON CONFLICT (product_id, location_id) DO NOTHING", {"loc": location_id})
    cursor.execute(
        f"SELECT count(*) FROM (SELECT s.id FROM {stock} s JOIN {_ROWS} r ON r.product_id = s.product_id "
        "WHERE r.on_hand IS NOT NULL AND s.location_id = %(loc)s ORDER BY s.id FOR UPDATE OF s) locked",
        {"loc": location_id})
    cursor.execute(
        f"UPDATE {_ROWS} r SET old_on_hand = s.on_hand, reserved = s.reserved FROM {stock} s "
        "WHERE s.product_id = r.product_id AND s.location_id = %(loc)s AND r.on_hand IS NOT NULL",
        {"loc": location_id})
    cursor.execute(f"SELECT line, on_hand, reserved FROM {_ROWS} WHERE on_hand < reserved ORDER BY line")
    _raise_if_errors([
        _error(line, "on_hand", "below_reserved",
               _("%(reserved)d units are reserved; on_hand cannot go below that.") % {"reserved": reserved},
               on_hand)
        for line, on_hand, reserved in cursor.fetchall()
    ])


def _chunk_apply(cursor, *, lo: int, hi: int, params: dict[str, Any], result: ImportResult,
                 location: Location) -> list[Stock]:
    """Apply the rows with lines lo..hi: a handful of statements, whatever their number."""
    product, stock = Product._meta.db_table, Stock._meta.db_table
    movement, unified = StockMovement._meta.db_table, UnifiedCode._meta.db_table
    p = {**params, "lo": lo, "hi": hi}
    in_chunk = "r.line BETWEEN %(lo)s AND %(hi)s"
    cursor.execute(
        f"WITH created AS (INSERT INTO {product} (code, name, category, unit, low_stock_threshold, active, "
        "created_at, updated_at) SELECT r.code, r.name, coalesce(r.category, ''), %(unit)s, "
        f"coalesce(r.threshold, %(threshold)s), true, %(now)s, %(now)s FROM {_ROWS} r WHERE r.is_new AND {in_chunk} "
        f"ORDER BY r.line RETURNING id, code) "
        f"UPDATE {_ROWS} r SET product_id = c.id, old_on_hand = 0, reserved = 0 FROM created c "
        f"WHERE r.code = c.code AND r.is_new AND {in_chunk} RETURNING r.code", p)
    result.created.extend(code for (code,) in cursor.fetchall())
    # A new product gets its row at the default location (as product_create gives it) and at the import's.
    cursor.execute(
        f"INSERT INTO {stock} (product_id, location_id, on_hand, reserved, version, updated_at) "
        f"SELECT r.product_id, l.id, 0, 0, 0, %(now)s FROM {_ROWS} r "
        f"CROSS JOIN (SELECT DISTINCT unnest(ARRAY[%(default_location_id)s, %(location_id)s]::bigint[])) AS l(id) "
        f"WHERE r.is_new AND {in_chunk} ORDER BY r.product_id, l.id", p)
    cursor.execute(
        f"UPDATE {product} p SET name = CASE WHEN r.name <> '' THEN r.name ELSE p.name END, "
        "category = coalesce(r.category, p.category), "
        "low_stock_threshold = coalesce(r.threshold, p.low_stock_threshold), updated_at = %(now)s "
        f"FROM {_ROWS} r WHERE r.product_id = p.id AND NOT r.is_new AND {in_chunk} AND ("
        "(r.name <> '' AND r.name <> p.name) OR (r.category IS NOT NULL AND r.category <> p.category) "
        "OR (r.threshold IS NOT NULL AND r.threshold <> p.low_stock_threshold)) RETURNING p.code", p)
    result.updated.extend(code for (code,) in cursor.fetchall())
    # An alias the product already has is skipped (the check refused every other clash).
    cursor.execute(
        f"INSERT INTO {unified} (code, product_id, note, created_at) "
        f"SELECT a.code, r.product_id, %(reason)s, %(now)s FROM {_ALIASES} a JOIN {_ROWS} r ON r.line = a.line "
        f"WHERE {in_chunk} ORDER BY a.code ON CONFLICT (code) DO NOTHING RETURNING code", p)
    result.aliases_added.extend(code for (code,) in cursor.fetchall())
    changed = f"r.on_hand IS NOT NULL AND r.on_hand <> r.old_on_hand AND {in_chunk}"
    cursor.execute(
        f"INSERT INTO {movement} (product_id, location_id, kind, quantity, on_hand_after, reason, reference, actor, "
        f"created_at) SELECT r.product_id, %(location_id)s, %(kind)s, r.on_hand - r.old_on_hand, r.on_hand, "
        f"%(reason)s, %(reference)s, %(actor)s, %(now)s FROM {_ROWS} r WHERE {changed} ORDER BY r.product_id", p)
    stock_fields = [f.attname for f in Stock._meta.concrete_fields]
    product_fields = [f.attname for f in Product._meta.concrete_fields]
    cursor.execute(
        f"UPDATE {stock} s SET on_hand = r.on_hand, version = s.version + 1, "
        f"movement_count = s.movement_count + 1, updated_at = %(now)s "
        f"FROM {_ROWS} r, {product} p WHERE r.product_id = s.product_id AND p.id = s.product_id "
        f"AND s.location_id = %(location_id)s AND {changed} "
        f"RETURNING {', '.join('s.' + f.column for f in Stock._meta.concrete_fields)}, "
        f"{', '.join('p.' + f.column for f in Product._meta.concrete_fields)}, r.old_on_hand, r.line", p)
    stocks = []
    split = len(stock_fields)
    # from_db with every field in order: positional model init, twice as fast as keywords at 100,000 rows.
    for values in sorted(cursor.fetchall(), key=lambda row: row[-1]):
        item = Stock.from_db(connection.alias, stock_fields, values[:split])
        item.product = Product.from_db(connection.alias, product_fields, values[split:-2])
        item.location = location
        stocks.append(item)
        result.counted.append({"code": item.product.code, "from": values[-2], "to": item.on_hand})
    return stocks


@atomic_with_retry()
def stock_import(*, content: str | bytes, fmt: str, actor: str = "", reference: str = "",
                 dry_run: bool = False, progress: Progress | None = None, location: str | None = None) -> ImportResult:
    """Import an ERP file: every row is validated first, then all rows are applied in one transaction.
    Counts apply at ``location`` (a location code; the default location when None).

    New codes become products (with aliases); known products get their name, category and threshold
    updated when given; on_hand is set by a "count" ledger movement of the difference. A dry run
    validates and reports what would change, then rolls back. ``progress`` hears each phase's rows.
    The changed rows' events, alerts, webhooks and projection marks are registered in batches of
    EVENTS_BATCH rows, never one by one.
    """
    place = location_resolve(code=location)
    parsed = rows_parse(content=content, fmt=fmt)
    total = len(parsed)
    if progress:
        progress("parsing", total, total)
    sid = transaction.savepoint()
    with connection.cursor() as cursor:
        # One lock for the whole catalogue instead of one per new code: no other import, product or alias
        # is written until this one ends (reads and stock writes of other products go on).
        cursor.execute(f"LOCK TABLE {Product._meta.db_table}, {UnifiedCode._meta.db_table} "
                       "IN SHARE ROW EXCLUSIVE MODE")
        rows = rows_validate(rows=parsed, progress=progress)
        _staging_create(cursor, rows)
        _stock_lock_and_check(cursor, location_id=place.pk)
        result = ImportResult(rows=total, dry_run=dry_run)
        params = {"now": timezone.now(), "unit": Unit.UNIT, "threshold": settings.STOCK_DEFAULT_LOW_THRESHOLD,
                  "reason": REASON, "kind": MovementKind.COUNT, "reference": reference[:128],
                  "actor": (actor or "system:import")[:150], "location_id": place.pk,
                  "default_location_id": location_default_id()}
        changed: list[Stock] = []
        for start in range(0, total, CHUNK_ROWS):
            chunk = rows[start:start + CHUNK_ROWS]
            changed += _chunk_apply(cursor, lo=chunk[0].line, hi=chunk[-1].line, params=params, result=result,
                                    location=place)
            if progress:
                progress("applying", start + len(chunk), total)
        cursor.execute(f"DROP TABLE pg_temp.{_ROWS}, pg_temp.{_ALIASES}")
    if changed:
        STOCK_CHANGES.labels(MovementKind.COUNT).inc(len(changed))
        for start in range(0, len(changed), EVENTS_BATCH):
            stock_rows_changed(stocks=changed[start:start + EVENTS_BATCH])
    if dry_run:
        transaction.savepoint_rollback(sid)
    else:
        transaction.savepoint_commit(sid)
    return result
