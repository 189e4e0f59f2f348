"""`manage.py ledger_partitions`: make the ledger's partitions for this month and the coming ones (idempotent), rewrite
closed months in product order, and list them."""
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.errors import DomainError
from inventory.partitions import partitions_described
from inventory.services import ledger_partitions_cluster, ledger_partitions_ensure


class Command(BaseCommand):
    help = ("Create the ledger's monthly partitions for this month and the coming ones (default "
            "LEDGER_PARTITION_MONTHS_AHEAD); months that have one are left alone. --cluster-closed rewrites "
            "the closed months in (product, location) order; --list prints them all.")

    def add_arguments(self, parser):
        parser.add_argument("--months-ahead", type=int, default=None)
        parser.add_argument("--cluster-closed", nargs="?", type=int, const=-1, default=None, metavar="MONTHS",
                            help="also rewrite the closed months not rewritten yet, newest first, each with its rows "
                                 "ordered by product and location (reads and writes go on); at most MONTHS of them, "
                                 "every one when no number is given")
        parser.add_argument("--list", action="store_true",
                            help="also print every partition and about how many rows it holds (the planner's "
                                 "estimate from the last ANALYZE, not a count)")

    def handle(self, *args, **options):
        created = self._run(ledger_partitions_ensure, months_ahead=options["months_ahead"])
        self._report(created, "created {}", "Every month asked for already has its partition.")
        if options["cluster_closed"] is not None:
            limit = None if options["cluster_closed"] == -1 else options["cluster_closed"]
            rewritten = self._run(ledger_partitions_cluster, limit=limit)
            self._report(rewritten, "rewrote {} in product order", "No closed month left to rewrite.")
        if options["list"]:
            with connection.cursor() as cursor:
                for name, rows, clustered in partitions_described(cursor):
                    self.stdout.write(f"{name}: " + ("not analysed yet" if rows is None else f"about {rows} row(s)")
                                      + (" (in product order)" if clustered else ""))

    @staticmethod
    def _run(service, **kwargs) -> list[str]:
        try:
            return service(**kwargs)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc

    def _report(self, names: list[str], done_line: str, none_line: str) -> None:
        for name in names:
            self.stdout.write(done_line.format(name))
        if not names:
            self.stdout.write(none_line)
