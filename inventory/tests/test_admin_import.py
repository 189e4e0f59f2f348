"""The admin import page: staff upload a file as an import job and follow its progress, result or bad lines."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inventory.import_jobs import import_job_run
from inventory.models import ImportJob, ImportStatus, Product, Stock

URL = "/admin/inventory/product/import/"


@pytest.mark.django_db
def test_page_is_for_staff_only(client):
    response = client.get(URL)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_an_upload_becomes_a_queued_job_whose_page_refreshes(staff_client):
    upload = SimpleUploadedFile("export.json", b'[{"code": "OK-1", "name": "Ok", "on_hand": 6}]')

    response = staff_client.post(URL, {"file": upload, "reference": "upload-1"})

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/inventory/importjob/{job.pk}/change/"
    assert (job.status, job.rows_total, job.reference, job.actor) == ("queued", 1, "upload-1", "user:staff")
    page = staff_client.get(response["Location"]).content.decode()
    assert '<meta http-equiv="refresh"' in page and '<progress max="100" value="0">' in page
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_a_finished_job_page_shows_the_result_and_stops_refreshing(staff_client):
    staff_client.post(URL, {"file": SimpleUploadedFile("export.csv", b"code,name,on_hand\nOK-1,Ok,6\n")})
    job = ImportJob.objects.get()

    import_job_run(job_id=job.pk)
    page = staff_client.get(f"/admin/inventory/importjob/{job.pk}/change/").content.decode()

    assert '<progress max="100" value="100">' in page and "refresh" not in page
    assert Stock.objects.get(product__code="OK-1").on_hand == 6


@pytest.mark.django_db
def test_a_bad_file_job_page_lists_every_bad_line(staff_client):
    staff_client.post(URL, {"file": SimpleUploadedFile("export.csv", b"code,name,on_hand\nOK-1,Ok,1\nBAD-1,,2\n"
                                                                       b"BAD-2,Bad,-1\n")})
    job = ImportJob.objects.get()

    import_job_run(job_id=job.pk)
    page = staff_client.get(f"/admin/inventory/importjob/{job.pk}/change/").content.decode()

    assert ImportJob.objects.get().status == ImportStatus.FAILED
    assert "<td>3</td><td>name</td><td>name_required</td>" in page
    assert "<td>4</td><td>on_hand</td><td>not_a_quantity</td>" in page
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_an_unreadable_file_is_shown_on_the_form_and_makes_no_job(staff_client):
    response = staff_client.post(URL, {"file": SimpleUploadedFile("export.csv", b"name,on_hand\nX,1\n")})

    assert response.status_code == 200 and "&#x27;code&#x27; é obrigatória" in response.content.decode()  # pt-BR staff
    assert ImportJob.objects.count() == 0
