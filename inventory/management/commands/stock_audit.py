"""Check the stock invariants per product and location: the ledger sums to on_hand, movement_count is its number of
rows, and reserved equals the active reservation lines. Exits 1 on any drift."""
from django.core.management.base import BaseCommand

from inventory.selectors import ledger_audit


class Command(BaseCommand):
    help = ("Report, per product and location, stock whose ledger does not sum to on_hand, whose count of ledger "
            "rows is off, or whose reserved differs from its active reservation lines; exit non-zero if any.")

    def handle(self, *args, **options):
        # Reservations build on inventory, so their selector is imported here, not at module level.
        from reservations.selectors import reserved_drift

        audit = ledger_audit()
        ledger, counted = audit["sum"], audit["count"]
        reserved = reserved_drift()
        for row in ledger:
            self.stderr.write(f"{row['code']} @ {row['location']}: on_hand={row['on_hand']} "
                              f"ledger_sum={row['ledger_sum']}")
        for row in counted:
            self.stderr.write(f"{row['code']} @ {row['location']}: movement_count={row['movement_count']} "
                              f"ledger_rows={row['ledger_rows']}")
        for row in reserved:
            self.stderr.write(f"{row['code']} @ {row['location']}: reserved={row['reserved']} "
                              f"active_lines={row['active_lines']}")
        if not ledger and not counted and not reserved:
            self.stdout.write(self.style.SUCCESS(
                "Ledger and stock agree for every product at every location, and reserved matches the active reservations."))
            return
        if ledger:
            self.stderr.write(self.style.ERROR(f"{len(ledger)} product(s) drift from their ledger."))
        if counted:
            self.stderr.write(self.style.ERROR(f"{len(counted)} product(s) count their ledger rows wrong."))
        if reserved:
            self.stderr.write(self.style.ERROR(
                f"{len(reserved)} product(s) have reserved units that differ from their active reservations."))
        raise SystemExit(1)
