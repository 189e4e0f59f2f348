"""The admin import page: staff upload a file and see every bad line, or the import applied."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inventory.models import Product, Stock

URL = "/admin/inventory/product/import/"


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.django_db
def test_page_is_for_staff_only(client):
    response = client.get(URL)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_bad_file_shows_every_bad_line_and_imports_nothing(staff_client):
    upload = SimpleUploadedFile("export.csv", b"code,name,on_hand\nOK-1,Ok,1\nBAD-1,,2\nBAD-2,Bad,-1\n")

    response = staff_client.post(URL, {"file": upload})

    assert response.status_code == 200
    assert [e["line"] for e in response.context["errors"]] == [3, 4]
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_good_file_is_imported(staff_client):
    upload = SimpleUploadedFile("export.json", b'[{"code": "OK-1", "name": "Ok", "on_hand": 6}]')

    response = staff_client.post(URL, {"file": upload, "reference": "upload-1"})

    assert response.status_code == 200 and response.context["result"]["created"] == 1
    assert Stock.objects.get(product__code="OK-1").on_hand == 6
