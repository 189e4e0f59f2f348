"""Management command: recompute every projection summary (each product at each location), with a progress bar."""
import time

from django.core.management.base import BaseCommand, CommandError

from projections.services import projection_placeholders_create, projection_rebuild_all


class Command(BaseCommand):
    help = ("Recompute the projection summary of every product at every location where it has stock "
            "(batches of --batch-size products of one location).")

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--workers", type=int, default=2, help="Batches computed at once (connections).")

    def handle(self, *args, batch_size: int, workers: int, **options):
        if batch_size < 1 or workers < 1:
            raise CommandError("--batch-size and --workers must be at least 1.")
        started = time.monotonic()
        projection_placeholders_create()

        def progress(done: int, total: int) -> None:
            width = 30
            filled = width * done // total if total else width
            self.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
            self.stdout.flush()

        total = projection_rebuild_all(batch_size=batch_size, workers=workers, progress=progress)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"{total} projections rebuilt in {time.monotonic() - started:.1f} s"))
