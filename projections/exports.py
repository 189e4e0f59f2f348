"""Files for buyers: reorder suggestions as CSV or XLSX (one header row, one row per suggestion)."""
import csv
import io
from collections.abc import Iterable

from openpyxl import Workbook

from projections.models import ReorderSuggestion

COLUMNS = ["id", "code", "name", "state", "quantity", "demand", "safety_stock", "available", "firm_inbound",
           "cover_days", "arrival_date", "planned_movement", "updated_at"]
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _row(s: ReorderSuggestion) -> list:
    return [s.pk, s.product.code, s.product.name, s.state, s.quantity, s.demand, s.safety_stock, s.available,
            s.firm_inbound, s.cover_days, s.arrival_date, s.planned_movement_id,
            s.updated_at.replace(tzinfo=None, microsecond=0)]


def _safe(value):
    """A text cell a spreadsheet would run as a formula (=, +, -, @) is kept as text with a leading quote."""
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value


def suggestions_csv(suggestions: Iterable[ReorderSuggestion]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for suggestion in suggestions:
        writer.writerow([_safe(v) if v is not None else "" for v in _row(suggestion)])
    return out.getvalue().encode("utf-8")


def suggestions_xlsx(suggestions: Iterable[ReorderSuggestion]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("reorder")
    sheet.append(COLUMNS)
    for suggestion in suggestions:
        sheet.append([_safe(v) for v in _row(suggestion)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
