"""Import jobs: the API answers 202 with a job, its progress is readable mid-run, lost runs are queued again, once."""
import io
import threading
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, transaction

from config.celery_app import app
from inventory import import_jobs, importing
from inventory.import_jobs import _LOCK_CLASS, import_job_create, import_job_run, import_jobs_requeue_stuck
from inventory.models import ImportJob, ImportStatus, MovementKind, Product, Stock, StockMovement
from inventory.services import stock_receive
from inventory.tests.factories import ProductFactory
from orders.tests.worker import Worker, _database_url, wait_for


@pytest.fixture
def empty_queue():
    # Tasks queued by earlier tests (whose rows are gone) would only slow the worker down.
    app.control.purge()


def _csv(rows: list[tuple]) -> bytes:
    lines = ["code,name,category,on_hand,threshold,aliases"] + [",".join(map(str, r)) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _new_rows(count: int, prefix: str = "JOB") -> list[tuple]:
    return [(f"{prefix}-{n:05d}", f"Job product {n}", "bulk", 1 + n % 40, "", f"{prefix}A-{n:05d}")
            for n in range(count)]


@pytest.mark.django_db
def test_post_answers_202_with_a_queued_job(manager):
    response = manager.generic("POST", "/api/v1/stock/import?reference=erp-1", _csv(_new_rows(3)),
                               content_type="text/csv")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["rows_total"], body["rows_done"], body["progress"]) == ("queued", 3, 0, 0.0)
    assert body["url"] == f"/api/v1/stock/imports/{body['id']}" == response["Location"]
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_a_finished_job_shows_its_result(manager):
    accepted = manager.post("/api/v1/stock/import", {"items": [{"code": "X-1", "name": "X", "on_hand": 3}],
                                                     "reference": "erp-push-9"}, format="json").json()

    import_job_run(job_id=accepted["id"])
    shown = manager.get(accepted["url"]).json()

    assert (shown["status"], shown["rows_done"], shown["progress"]) == ("succeeded", 1, 1.0)
    assert shown["result"] == {"rows": 1, "created": 1, "updated": 0, "counted": 1, "aliases_added": 0,
                               "dry_run": False}
    assert StockMovement.objects.get(product__code="X-1").reference == "erp-push-9"


@pytest.mark.django_db
def test_a_failed_job_lists_its_bad_lines_a_page_at_a_time(manager):
    rows = _new_rows(5) + [("BAD", "", "bulk", "x", "", "")] * 4
    job_id = manager.generic("POST", "/api/v1/stock/import", _csv(rows), content_type="text/csv").json()["id"]

    import_job_run(job_id=job_id)
    first = manager.get(f"/api/v1/stock/imports/{job_id}?page_size=3").json()
    last = manager.get(f"/api/v1/stock/imports/{job_id}?page_size=3&page=3").json()

    assert first["status"] == "failed" and first["failure"]["code"] == "import_invalid"
    assert first["errors"]["lines"] == 4 and first["errors"]["count"] == 11
    assert [(e["line"], e["field"], e["code"]) for e in first["errors"]["items"]] == [
        (7, "name", "name_required"), (7, "on_hand", "not_a_quantity"), (8, "code", "duplicate_product")]
    assert len(last["errors"]["items"]) == 3
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_an_unreadable_file_is_a_400_and_no_job(manager):
    response = manager.generic("POST", "/api/v1/stock/import", b"name,on_hand\nX,1\n", content_type="text/csv")

    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    assert ImportJob.objects.count() == 0


@pytest.mark.django_db
def test_a_misspelt_envelope_key_is_a_400_and_no_job(manager):
    body = {"items": [{"code": "X-1", "name": "X", "on_hand": 3, "price": 9.9}], "loja": "DARK-ZS"}

    response = manager.post("/api/v1/stock/import", body, format="json")

    assert response.status_code == 400 and response.json()["error"]["details"]["unknown_fields"] == ["loja"]
    assert ImportJob.objects.count() == 0
    # An item's own extra fields (an ERP's price, say) are not the envelope's business.
    accepted = manager.post("/api/v1/stock/import", {"items": body["items"]}, format="json")
    assert accepted.status_code == 202 and ImportJob.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/stock/imports/999999", "/api/v1/stock/imports/abc",
                                  "/api/v1/stock/imports/99999999999999999999999"])
def test_an_unknown_job_is_404(manager, path):
    response = manager.get(path)

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_a_bad_page_size_is_a_400(manager):
    job = import_job_create(content=_csv(_new_rows(1)), fmt="csv")

    response = manager.get(f"/api/v1/stock/imports/{job.pk}?page_size=5000")

    assert response.status_code == 400 and response.json()["error"]["details"] == {"page_size": "5000"}


@pytest.mark.django_db
def test_imports_need_the_manage_scope(reserver):
    job = import_job_create(content=_csv(_new_rows(1)), fmt="csv")

    assert reserver.generic("POST", "/api/v1/stock/import", _csv(_new_rows(1)),
                            content_type="text/csv").status_code == 403
    assert reserver.get(f"/api/v1/stock/imports/{job.pk}").status_code == 403


@contextmanager
def _paused_mid_apply(job_id: int, *, at_row: int):
    """Run the job on a thread of its own and hold it, transaction open, once ``at_row`` rows are applied."""
    reached, resume = threading.Event(), threading.Event()

    def pause(phase: str, done: int, total: int) -> None:
        if phase == "applying" and done == at_row:
            reached.set()
            resume.wait(30)

    def run() -> None:
        try:
            import_job_run(job_id=job_id, on_progress=pause)
        finally:
            connection.close()

    runner = threading.Thread(target=run)
    runner.start()
    try:
        assert reached.wait(30)
        yield
    finally:
        resume.set()
        runner.join(30)


@pytest.mark.django_db(transaction=True)
def test_progress_is_readable_from_another_session_while_the_import_runs(monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 500)
    monkeypatch.setattr(import_jobs, "PROGRESS_EVERY_SECONDS", 0)
    ProductFactory(code="KNOWN-1", on_hand=5)
    job = import_job_create(content=_csv(_new_rows(2_000) + [("KNOWN-1", "", "", 9, "", "")]), fmt="csv", queue=False)
    with _paused_mid_apply(job.pk, at_row=1_000):
        seen = ImportJob.objects.get(pk=job.pk)
        products_mid_run = Product.objects.count()

    assert (seen.status, seen.phase, seen.rows_done, seen.rows_total) == ("running", "applying", 1_000, 2_001)
    assert products_mid_run == 1  # nothing of the import is visible before it commits
    done = ImportJob.objects.get(pk=job.pk)
    assert (done.status, done.rows_done, done.attempts) == ("succeeded", 2_001, 1)
    assert Product.objects.count() == 2_001 and Stock.objects.get(product__code="KNOWN-1").on_hand == 9


@pytest.mark.django_db(transaction=True)
def test_a_job_another_session_runs_is_left_to_it():
    job = import_job_create(content=_csv(_new_rows(2)), fmt="csv", queue=False)
    with psycopg.connect(_database_url().replace("postgres://", "postgresql://")) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, job.pk])

        assert import_job_run(job_id=job.pk) is None
        assert import_jobs_requeue_stuck(older_than=timedelta(0)) == []

    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.QUEUED
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_the_sweep_gives_up_on_a_job_after_its_last_attempt(settings):
    job = import_job_create(content=_csv(_new_rows(2)), fmt="csv", queue=False)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, attempts=settings.IMPORT_MAX_ATTEMPTS)

    assert import_jobs_requeue_stuck(older_than=timedelta(0)) == []

    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and job.failure["code"] == "import_error"
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_a_finished_job_run_again_changes_nothing():
    job = import_job_create(content=_csv(_new_rows(10)), fmt="csv", queue=False)
    finished = import_job_run(job_id=job.pk)
    movements = StockMovement.objects.count()

    again = import_job_run(job_id=job.pk)

    assert again.status == ImportStatus.SUCCEEDED and again.finished_at == finished.finished_at
    assert StockMovement.objects.count() == movements == 10


def _job_lock_free(job_id: int) -> bool:
    with psycopg.connect(_database_url().replace("postgres://", "postgresql://")) as probe:
        return probe.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, job_id]).fetchone()[0]


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                       "WHERE NOT l.granted AND a.datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_import_then_replaced_applies_the_job_exactly_once(empty_queue):
    known = ProductFactory(code="KNOWN-1", on_hand=5)
    rows = _new_rows(1_500) + [("KNOWN-1", "", "", 9, "", "")]
    # Held from outside Django: the import stops at the stock locks, its products not yet written.
    holder = psycopg.connect(_database_url().replace("postgres://", "postgresql://"))
    holder.execute("SELECT * FROM inventory_stock WHERE product_id = %s FOR UPDATE", [known.pk])
    first = Worker(concurrency=1)
    try:
        job = import_job_create(content=_csv(rows), fmt="csv")
        wait_for(lambda: _waiting_on_locks() >= 1 and ImportJob.objects.get(pk=job.pk).status == "running",
                 worker=first)
        first.kill()
    finally:
        holder.rollback()
        holder.close()
        first.stop()
    # The dead worker's session ends once its statement returns to nobody; then its job lock is free.
    wait_for(lambda: _job_lock_free(job.pk))
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.RUNNING
    assert Product.objects.count() == 1 and StockMovement.objects.count() == 1

    second = Worker(concurrency=1)
    try:
        # The killed worker never acked its task; the beat sweep is what queues the job again.
        assert import_jobs_requeue_stuck(older_than=timedelta(0)) == [job.pk]
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).finished, timeout=60, worker=second)
    finally:
        second.stop()
        connection.close()

    job.refresh_from_db()
    assert (job.status, job.attempts, job.rows_done) == ("succeeded", 2, 1_501)
    assert Product.objects.count() == 1_501
    assert StockMovement.objects.filter(kind=MovementKind.COUNT).count() == 1_501
    assert Stock.objects.get(product=known).on_hand == 9


def test_the_command_prints_a_progress_bar_with_rate_and_eta(tmp_path, db):
    path = tmp_path / "export.csv"
    path.write_bytes(_csv(_new_rows(50)))
    err, out = io.StringIO(), io.StringIO()

    call_command("import_stock", str(path), "--progress", stderr=err, stdout=out)

    lines = err.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["reading", "checking", "applying"]
    assert all("50/50 rows" in line and "rows/s" in line and "ETA 0s" in line for line in lines)
    assert "50 products created" in out.getvalue()


def test_the_command_shows_no_bar_when_stderr_is_not_a_terminal(tmp_path, db):
    path = tmp_path / "export.csv"
    path.write_bytes(_csv(_new_rows(5)))
    err = io.StringIO()

    call_command("import_stock", str(path), stderr=err, stdout=io.StringIO())

    assert err.getvalue() == ""
    assert Product.objects.count() == 5


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place(tmp_path, db):
    path = tmp_path / "export.csv"
    path.write_bytes(_csv(_new_rows(20)))
    err = _Terminal()

    call_command("import_stock", str(path), stderr=err, stdout=io.StringIO())

    drawn = err.getvalue()
    assert drawn.startswith("\rreading") and drawn.count("\r") == 3 and drawn.count("\n") == 3
    assert "\rapplying  [##############################] 20/20 rows" in drawn


@pytest.mark.django_db(transaction=True)
def test_while_an_import_runs_only_the_products_it_counts_wait_for_it(monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 500)
    ProductFactory(code="COUNTED-1", on_hand=5)
    ProductFactory(code="OTHER-1", on_hand=5)
    job = import_job_create(content=_csv(_new_rows(1_000) + [("COUNTED-1", "", "", 9, "", "")]), fmt="csv",
                            queue=False)
    with _paused_mid_apply(job.pk, at_row=500):
        stock_receive(code="OTHER-1", quantity=2, actor="test")
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '500ms'")
            stock_receive(code="COUNTED-1", quantity=2, actor="test")

    assert Stock.objects.get(product__code="OTHER-1").on_hand == 7
    assert Stock.objects.get(product__code="COUNTED-1").on_hand == 9
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.SUCCEEDED
