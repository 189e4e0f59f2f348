"""`manage.py import_stock FILE`: import an ERP export (CSV or JSON), all rows or none."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from inventory.importing import ImportInvalid, stock_import


class Command(BaseCommand):
    help = "Import products and on-hand counts from a CSV or JSON file (code, name, category, on_hand, threshold, aliases)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to the file; '-' is not supported")
        parser.add_argument("--format", choices=["csv", "json"], help="default: from the file extension")
        parser.add_argument("--reference", default="", help="kept on every ledger row, e.g. the ERP export id")
        parser.add_argument("--dry-run", action="store_true", help="validate and report, change nothing")

    def handle(self, *args, file: str, format: str | None, reference: str, dry_run: bool, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        fmt = format or ("json" if path.suffix.lower() == ".json" else "csv")
        try:
            result = stock_import(content=path.read_bytes(), fmt=fmt, actor="command:import_stock",
                                  reference=reference, dry_run=dry_run)
        except ImportInvalid as exc:
            for error in exc.errors:
                value = f" ({error['value']!r})" if error.get("value") not in (None, "") else ""
                self.stderr.write(f"line {error['line']}: {error['field']}: {error['message']}{value}")
            raise CommandError(exc.message) from None
        except DomainError as exc:
            raise CommandError(exc.message) from None
        summary = result.as_dict()
        prefix = "Dry run, nothing changed: " if dry_run else ""
        self.stdout.write(self.style.SUCCESS(
            f"{prefix}{summary['rows']} rows: {summary['created']} products created, {summary['updated']} updated, "
            f"{len(summary['counted'])} counts changed, {summary['aliases_added']} aliases added."))
