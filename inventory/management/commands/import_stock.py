"""`manage.py import_stock FILE`: import an ERP export (CSV or JSON), all rows or none, as an import job run here."""
import argparse
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from inventory.import_jobs import import_job_create, import_job_give_up, import_job_run
from inventory.models import ImportStatus

PHASE_LABELS = {"parsing": "reading", "validating": "checking", "applying": "applying"}
BAR_WIDTH = 30


class ProgressBar:
    """Rows done, rows/s and time left of each phase. On a terminal one line redrawn in place;
    elsewhere (a log file) a plain line at most every ``every`` seconds and at the end of each phase."""

    def __init__(self, stream, *, tty: bool, every: float = 2.0):
        self.stream, self.tty, self.every = stream, tty, every
        self.phase = ""
        self.started = self.last = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self.phase:
            self.phase, self.started, self.last = phase, now, 0.0
        if not self.tty and done < total and now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else 0.0
        filled = int(BAR_WIDTH * done / total) if total else BAR_WIDTH
        line = (f"{PHASE_LABELS.get(phase, phase):<9} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                f"{done:,}/{total:,} rows  {rate:,.0f} rows/s  ETA {eta:.0f}s")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""), ending="")
        else:
            self.stream.write(line)
        self.stream.flush()


class Command(BaseCommand):
    help = "Import products and on-hand counts from a CSV or JSON file (code, name, category, on_hand, threshold, aliases)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to the file; '-' is not supported")
        parser.add_argument("--format", choices=["csv", "json"], help="default: from the file extension")
        parser.add_argument("--reference", default="", help="kept on every ledger row, e.g. the ERP export id")
        parser.add_argument("--dry-run", action="store_true", help="validate and report, change nothing")
        parser.add_argument("--location", default=None, help="location code the counts apply at (default location)")
        parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                            help="show the progress bar on stderr (default: when stderr is a terminal)")

    def handle(self, *args, file: str, format: str | None, reference: str, dry_run: bool,
               progress: bool | None, location: str | None = None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        fmt = format or ("json" if path.suffix.lower() == ".json" else "csv")
        tty = self.stderr.isatty()
        bar = ProgressBar(self.stderr, tty=tty) if (tty if progress is None else progress) else None
        try:
            job = import_job_create(content=path.read_bytes(), fmt=fmt, actor="command:import_stock",
                                    reference=reference, dry_run=dry_run, queue=False, location=location)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        # Run here rather than by a worker; the job row shows the progress to the admin meanwhile.
        try:
            job = import_job_run(job_id=job.pk, on_progress=bar)
        except KeyboardInterrupt:
            import_job_give_up(job_id=job.pk, reason="interrupted")
            raise CommandError(f"Interrupted: nothing was imported (import job {job.pk}).") from None
        if job is None:
            raise CommandError("The import job is being run by another process.")
        if job.status == ImportStatus.FAILED:
            for error in job.errors:
                value = f" ({error['value']!r})" if error.get("value") not in (None, "") else ""
                self.stderr.write(f"line {error['line']}: {error['field']}: {error['code']}: "
                                  f"{error['message']}{value}")
            raise CommandError(f"{job.failure['message']} (import job {job.pk})")
        summary = job.result
        prefix = "Dry run, nothing changed: " if dry_run else ""
        self.stdout.write(self.style.SUCCESS(
            f"{prefix}{summary['rows']} rows: {summary['created']} products created, {summary['updated']} updated, "
            f"{summary['counted']} counts changed, {summary['aliases_added']} aliases added (import job {job.pk})."))
