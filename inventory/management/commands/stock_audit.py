"""Check the ledger invariant: for every product the movements sum to on_hand. Exits 1 on any drift."""
from django.core.management.base import BaseCommand

from inventory.selectors import ledger_drift


class Command(BaseCommand):
    help = "Report products whose stock ledger does not sum to on_hand; exit non-zero if any."

    def handle(self, *args, **options):
        drift = ledger_drift()
        if not drift:
            self.stdout.write(self.style.SUCCESS("Ledger and stock agree for every product."))
            return
        for row in drift:
            self.stderr.write(f"{row['code']}: on_hand={row['on_hand']} ledger_sum={row['ledger_sum']}")
        self.stderr.write(self.style.ERROR(f"{len(drift)} product(s) drift from their ledger."))
        raise SystemExit(1)
