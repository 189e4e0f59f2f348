"""`manage.py ledger_partitions`: make the ledger's partitions for this month and the coming ones (idempotent), and list them."""
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.errors import DomainError
from inventory.partitions import partitions_estimated_rows
from inventory.services import ledger_partitions_ensure


class Command(BaseCommand):
    help = ("Create the ledger's monthly partitions for this month and the coming ones (default "
            "LEDGER_PARTITION_MONTHS_AHEAD); months that have one are left alone. --list prints them all.")

    def add_arguments(self, parser):
        parser.add_argument("--months-ahead", type=int, default=None)
        parser.add_argument("--list", action="store_true",
                            help="also print every partition and about how many rows it holds (the planner's "
                                 "estimate from the last ANALYZE, not a count)")

    def handle(self, *args, **options):
        try:
            created = ledger_partitions_ensure(months_ahead=options["months_ahead"])
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        for name in created:
            self.stdout.write(f"created {name}")
        if not created:
            self.stdout.write("Every month asked for already has its partition.")
        if options["list"]:
            with connection.cursor() as cursor:
                for name, rows in partitions_estimated_rows(cursor):
                    self.stdout.write(f"{name}: " + ("not analysed yet" if rows is None else f"about {rows} row(s)"))
