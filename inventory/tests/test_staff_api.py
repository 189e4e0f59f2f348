"""Staff signed in with a session follow their locations in the API, as limited API clients do."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from inventory import services
from inventory.models import ImportJob, Transfer
from inventory.selectors import location_default, stock_at
from inventory.tests.factories import ProductFactory, stock_at_location

pytestmark = pytest.mark.django_db


def test_limited_staff_read_stock_at_their_location(limited, stores):
    product = ProductFactory(code="STF-1")
    stock_at_location(product, stores[0], on_hand=4)

    response = limited.get("/api/v1/stock/STF-1/?location=LOJA-A")

    assert response.status_code == 200
    assert response.json()["on_hand"] == 4


def test_limited_staff_get_403_at_another_location(limited, stores):
    product = ProductFactory(code="STF-2")
    stock_at_location(product, stores[1], on_hand=4)

    response = limited.get("/api/v1/stock/STF-2/?location=LOJA-B")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "location_forbidden"
    assert response.json()["error"]["details"]["locations"] == ["LOJA-B"]


def test_limited_staff_naming_no_location_are_refused_the_default_one(limited):
    ProductFactory(code="STF-3", on_hand=2)

    listing = limited.get("/api/v1/stock/")
    detail = limited.get("/api/v1/stock/STF-3/")

    assert listing.status_code == 403 and listing.json()["error"]["code"] == "location_forbidden"
    assert detail.status_code == 403 and detail.json()["error"]["code"] == "location_forbidden"


def test_every_location_means_every_location_of_theirs(limited, stores):
    product = ProductFactory(code="STF-4", on_hand=9)
    stock_at_location(product, stores[0], on_hand=2)
    stock_at_location(product, stores[1], on_hand=5)

    body = limited.get("/api/v1/stock/STF-4/?location=all").json()
    movements = limited.get("/api/v1/stock/STF-4/movements?location=all").json()

    assert [row["location"] for row in body["locations"]] == ["LOJA-A"]
    assert body["total"]["on_hand"] == 2
    assert {row["location"] for row in movements["results"]} == {"LOJA-A"}


def test_the_location_list_shows_only_theirs(limited):
    codes = [place["code"] for place in limited.get("/api/v1/locations").json()]
    assert codes == ["LOJA-A"]


def test_limited_staff_cannot_record_a_movement_elsewhere(limited, stores):
    product = ProductFactory(code="STF-5")
    stock_at_location(product, stores[1], on_hand=3)

    response = limited.post("/api/v1/stock/STF-5/movements",
                            {"kind": "receipt", "quantity": 2, "location": "LOJA-B"}, content_type="application/json")

    assert response.status_code == 403 and response.json()["error"]["code"] == "location_forbidden"
    assert stock_at(product=product, location=stores[1]).on_hand == 3


def test_limited_staff_cannot_transfer_from_another_location(limited, stores):
    product = ProductFactory(code="STF-6")
    stock_at_location(product, stores[1], on_hand=3)

    response = limited.post("/api/v1/transfers", {"code": "STF-6", "source": "LOJA-B", "destination": "LOJA-A",
                                                  "quantity": 1}, content_type="application/json")

    assert response.status_code == 403 and response.json()["error"]["code"] == "location_forbidden"
    assert not Transfer.objects.exists()
    assert stock_at(product=product, location=stores[1]).on_hand == 3


def test_limited_staff_cannot_read_a_transfer_between_other_locations(limited, stores):
    product = ProductFactory(code="STF-7", on_hand=3)
    transfer = services.transfer_create(code="STF-7", source="", destination="LOJA-B", quantity=1)

    response = limited.get(f"/api/v1/transfers/{transfer.pk}")
    listed = limited.get("/api/v1/transfers").json()

    assert response.status_code == 404
    assert listed["results"] == []
    assert stock_at(product=product, location=stores[1]).on_hand == 1


def test_limited_staff_cannot_import_at_the_default_location(limited):
    before = ImportJob.objects.count()

    response = limited.post("/api/v1/stock/import", [{"code": "STF-8", "on_hand": 1}], content_type="application/json")

    assert response.status_code == 403 and response.json()["error"]["code"] == "location_forbidden"
    assert ImportJob.objects.count() == before


def test_limited_staff_do_not_see_import_jobs_of_other_locations(limited, stores):
    elsewhere = ImportJob.objects.create(content=b"[]", fmt="json", location=stores[1])
    theirs = ImportJob.objects.create(content=b"[]", fmt="json", location=stores[0])

    assert limited.get(f"/api/v1/stock/imports/{elsewhere.pk}").status_code == 404
    assert limited.get(f"/api/v1/stock/imports/{theirs.pk}").json()["location"] == "LOJA-A"


def test_staff_listed_nowhere_answer_as_before(client, stores):
    ProductFactory(code="STF-9", on_hand=6)
    client.force_login(get_user_model().objects.create_user(username="geral", password="x", is_staff=True))

    response = client.get("/api/v1/stock/STF-9/")

    assert response.status_code == 200
    assert response.json()["on_hand"] == 6 and response.json()["location"] == location_default().code


def test_a_superuser_listed_at_a_location_still_uses_every_location(client, stores, staff_user):
    stores[0].staff_users.add(staff_user)
    product = ProductFactory(code="STF-10")
    stock_at_location(product, stores[1], on_hand=5)
    client.force_login(staff_user)

    response = client.get("/api/v1/stock/STF-10/?location=LOJA-B")

    assert response.status_code == 200 and response.json()["on_hand"] == 5


def test_an_import_job_naming_no_location_counts_at_the_default_one(limited, staff_user):
    job = ImportJob.objects.create(content=b"[]", fmt="json")
    unlimited = Client()
    unlimited.force_login(staff_user)

    assert limited.get(f"/api/v1/stock/imports/{job.pk}").status_code == 404
    assert unlimited.get(f"/api/v1/stock/imports/{job.pk}").json()["location"] == "PRINCIPAL"
