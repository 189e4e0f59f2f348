"""The inventory admin for staff limited to locations: their rows only, their locations in forms and
filters, actions elsewhere refused; and the transfer form (several products, domain errors as form errors)."""
import pytest
from django.urls import reverse

from inventory import services
from inventory.models import ImportJob, Location, MovementKind, StockMovement, Transfer, TransferStatus
from inventory.selectors import location_default, stock_at
from inventory.tests.factories import LocationFactory, ProductFactory, staff_at, stock_at_location

pytestmark = pytest.mark.django_db

ADD_TRANSFER = "/admin/inventory/transfer/add/"


def _transfer_post(source: str, destination: str, lines: list[tuple[str, int]], **extra) -> dict:
    data = {"source": source, "destination": destination, "reference": "", "expected_on": "",
            "lines-TOTAL_FORMS": "6", "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "1",
            "lines-MAX_NUM_FORMS": "20", **extra}
    for index, (code, quantity) in enumerate(lines):
        data[f"lines-{index}-code"], data[f"lines-{index}-quantity"] = code, str(quantity)
    return data


def test_limited_staff_see_only_the_ledger_of_their_locations(limited, stores):
    product = ProductFactory(code="ADM-L1")
    stock_at_location(product, stores[0], on_hand=3)
    stock_at_location(product, stores[1], on_hand=7)
    elsewhere = StockMovement.objects.get(location=stores[1])

    page = limited.get("/admin/inventory/stockmovement/")
    opened = limited.get(f"/admin/inventory/stockmovement/{elsewhere.pk}/change/")

    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert [row.location.code for row in page.context["cl"].result_list] == ["LOJA-A"]
    assert opened.status_code == 302 and opened["Location"] == reverse("admin:index")


def test_location_filters_offer_only_their_locations(limited, stores):
    page = limited.get("/admin/inventory/transfer/").content.decode()
    assert "LOJA-A" in page and "LOJA-B" not in page and location_default().code not in page


def test_superuser_sees_every_location_and_filters_by_one(client, staff_user, stores):
    product = ProductFactory(code="ADM-L2", on_hand=2)
    stock_at_location(product, stores[1], on_hand=7)
    client.force_login(staff_user)

    every = client.get("/admin/inventory/stockmovement/")
    one = client.get("/admin/inventory/stockmovement/", {"location__id__exact": stores[1].pk})

    assert every.context["cl"].result_count == 2
    assert [row.location.code for row in one.context["cl"].result_list] == ["LOJA-B"]


def test_limited_staff_see_transfers_from_or_to_their_locations(limited, stores):
    ProductFactory(code="ADM-L3", on_hand=9)
    theirs = services.transfer_create(code="ADM-L3", source="", destination="LOJA-A", quantity=1)
    others = services.transfer_create(code="ADM-L3", source="", destination="LOJA-B", quantity=1)

    page = limited.get("/admin/inventory/transfer/")

    assert [t.pk for t in page.context["cl"].result_list] == [theirs.pk]
    assert others.pk not in [t.pk for t in page.context["cl"].result_list]


def test_receiving_a_transfer_from_a_location_not_theirs_is_refused(limited, stores):
    product = ProductFactory(code="ADM-L4", on_hand=9)
    transfer = services.transfer_create(code="ADM-L4", source="", destination="LOJA-A", quantity=4, in_transit=True)

    response = limited.post("/admin/inventory/transfer/", {"action": "receive_action",
                                                            "_selected_action": [transfer.pk]}, follow=True)

    messages = [str(m) for m in response.context["messages"]]
    assert any(str(transfer.pk) in m and location_default().code in m for m in messages)
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.SHIPPED
    assert stock_at(product=product, location=stores[0]).on_hand == 0


def test_the_transfer_form_moves_several_products_as_paired_ledger_rows(client, staff_user, stores):
    first, second = ProductFactory(code="ADM-T1", on_hand=10), ProductFactory(code="ADM-T2", on_hand=5)
    default = location_default()
    client.force_login(staff_user)

    response = client.post(ADD_TRANSFER, _transfer_post(default.code, "LOJA-B", [("adm-t1", 4), ("ADM-T2", 5)]))

    assert response.status_code == 302 and response["Location"] == "/admin/inventory/transfer/"
    transfers = list(Transfer.objects.order_by("product__code"))
    assert [(t.product.code, t.quantity, t.status) for t in transfers] == [
        ("ADM-T1", 4, TransferStatus.RECEIVED), ("ADM-T2", 5, TransferStatus.RECEIVED)]
    assert stock_at(product=first, location=default).on_hand == 6
    assert stock_at(product=first, location=stores[1]).on_hand == 4
    assert stock_at(product=second, location=stores[1]).on_hand == 5
    rows = StockMovement.objects.filter(transfer=transfers[0]).order_by("quantity")
    assert [(m.location.code, m.kind, m.quantity) for m in rows] == [
        (default.code, MovementKind.TRANSFER_OUT, -4), ("LOJA-B", MovementKind.TRANSFER_IN, 4)]
    assert all(m.actor == "user:staff" for m in rows)


def test_the_transfer_form_can_ship_in_transit(client, staff_user, stores):
    product = ProductFactory(code="ADM-T3", on_hand=10)
    client.force_login(staff_user)

    client.post(ADD_TRANSFER, _transfer_post(location_default().code, "LOJA-B", [("ADM-T3", 3)], in_transit="on",
                                             expected_on="2030-01-15"))

    transfer = Transfer.objects.get()
    assert transfer.status == TransferStatus.SHIPPED and str(transfer.expected_on) == "2030-01-15"
    assert stock_at(product=product, location=location_default()).on_hand == 7
    assert stock_at(product=product, location=stores[1]).on_hand == 0


def test_a_short_transfer_shows_every_short_line_as_a_form_error_and_moves_nothing(client, staff_user, stores):
    ProductFactory(code="ADM-T4", on_hand=2)
    ProductFactory(code="ADM-T5", on_hand=1)
    ProductFactory(code="ADM-T6", on_hand=9)
    client.force_login(staff_user)

    response = client.post(ADD_TRANSFER, _transfer_post(location_default().code, "LOJA-B",
                                                        [("ADM-T4", 3), ("ADM-T5", 2), ("ADM-T6", 1)]))

    assert response.status_code == 200
    errors = " ".join(response.context["form"].non_field_errors())
    assert "ADM-T4" in errors and "ADM-T5" in errors and "ADM-T6" not in errors
    assert not Transfer.objects.exists()
    assert not StockMovement.objects.filter(kind=MovementKind.TRANSFER_OUT).exists()


def test_an_unknown_code_or_the_same_two_locations_are_form_errors(client, staff_user, stores):
    ProductFactory(code="ADM-T7", on_hand=2)
    client.force_login(staff_user)

    unknown = client.post(ADD_TRANSFER, _transfer_post("LOJA-A", "LOJA-B", [("NOPE-1", 1)]))
    same = client.post(ADD_TRANSFER, _transfer_post("LOJA-B", "LOJA-B", [("ADM-T7", 1)]))
    empty = client.post(ADD_TRANSFER, _transfer_post("LOJA-A", "LOJA-B", []))

    assert unknown.status_code == 200 and "NOPE-1" in " ".join(unknown.context["form"].non_field_errors())
    assert same.status_code == 200 and same.context["form"].errors["destination"]
    assert empty.status_code == 200 and not empty.context["lines"].is_valid()
    assert not Transfer.objects.exists()


def test_limited_staff_choose_only_their_locations_in_the_transfer_form(client, stores):
    third = LocationFactory(code="LOJA-C")
    user = staff_at(stores[0], third)
    product = ProductFactory(code="ADM-T8")
    stock_at_location(product, stores[1], on_hand=5)
    client.force_login(user)

    page = client.get(ADD_TRANSFER)
    refused = client.post(ADD_TRANSFER, _transfer_post("LOJA-B", "LOJA-A", [("ADM-T8", 1)]))

    assert [place.code for place in page.context["form"].fields["source"].queryset] == ["LOJA-A", "LOJA-C"]
    assert refused.status_code == 200 and refused.context["form"].errors["source"]
    assert stock_at(product=product, location=stores[1]).on_hand == 5


def test_limited_staff_see_only_their_import_jobs(limited, stores):
    theirs = ImportJob.objects.create(content=b"[]", fmt="json", location=stores[0])
    ImportJob.objects.create(content=b"[]", fmt="json", location=stores[1])
    ImportJob.objects.create(content=b"[]", fmt="json")  # the default location

    page = limited.get("/admin/inventory/importjob/")

    assert [job.pk for job in page.context["cl"].result_list] == [theirs.pk]


def test_a_job_naming_no_location_is_listed_under_the_default_one(client, staff_user, stores):
    default_job = ImportJob.objects.create(content=b"[]", fmt="json")
    ImportJob.objects.create(content=b"[]", fmt="json", location=stores[1])
    client.force_login(staff_user)

    page = client.get("/admin/inventory/importjob/", {"location": location_default().code})

    assert [job.pk for job in page.context["cl"].result_list] == [default_job.pk]


def test_limited_staff_adjust_stock_only_at_their_locations(limited, stores):
    product = ProductFactory(code="ADM-A1", on_hand=4)
    url = reverse("admin:inventory_product_adjust", args=[product.pk])

    at_default = limited.post(url, {"kind": "receipt", "quantity": 2, "reason": "r", "location": ""})
    at_theirs = limited.post(url, {"kind": "receipt", "quantity": 2, "reason": "r", "location": "LOJA-A"})

    assert at_default.status_code == 200 and at_default.context["form"].non_field_errors()
    assert stock_at(product=product, location=location_default()).on_hand == 4
    assert at_theirs.status_code == 302
    assert stock_at(product=product, location=stores[0]).on_hand == 2


def test_a_product_page_shows_limited_staff_only_their_stock_rows(limited, stores):
    product = ProductFactory(code="ADM-P1", on_hand=4)
    stock_at_location(product, stores[0], on_hand=1)
    stock_at_location(product, stores[1], on_hand=2)

    page = limited.get(f"/admin/inventory/product/{product.pk}/change/")

    rows = [form.instance.location.code for form in page.context["inline_admin_formsets"][1].formset.forms]
    assert rows == ["LOJA-A"]


def test_the_product_list_shows_counters_at_the_chosen_location(client, staff_user, stores):
    product = ProductFactory(code="ADM-P2", on_hand=4)
    stock_at_location(product, stores[1], on_hand=9)
    client.force_login(staff_user)

    default = client.get("/admin/inventory/product/").context["cl"].result_list
    at_b = client.get("/admin/inventory/product/", {"location": "LOJA-B"}).context["cl"].result_list

    assert [p.here_on_hand for p in default] == [4]
    assert [p.here_on_hand for p in at_b] == [9]


def test_limited_staff_see_their_locations_and_cannot_change_who_is_limited(limited, stores):
    page = limited.get("/admin/inventory/location/")
    opened = limited.get(f"/admin/inventory/location/{stores[0].pk}/change/")

    assert [place.code for place in page.context["cl"].result_list] == ["LOJA-A"]
    assert "staff_users" not in opened.context["adminform"].form.fields
    assert limited.get("/admin/inventory/location/add/").status_code == 403


def test_superusers_list_staff_at_a_location(client, staff_user, stores):
    user = staff_at(username="bia")
    client.force_login(staff_user)
    location = Location.objects.get(code="LOJA-B")

    response = client.post(f"/admin/inventory/location/{location.pk}/change/", {
        "name": location.name, "kind": location.kind, "address": "", "time_zone": location.time_zone,
        "active": "on", "staff_users": [user.pk]})

    assert response.status_code == 302
    assert list(location.staff_users.all()) == [user]


def test_a_product_page_hides_the_default_location_panels_from_limited_staff(limited, stores):
    product = ProductFactory(code="ADM-P3", on_hand=4)

    page = limited.get(f"/admin/inventory/product/{product.pk}/change/")

    assert page.status_code == 200
    assert "recent_movements" not in page.context["adminform"].readonly_fields
    assert "stock_counters" not in page.context["adminform"].readonly_fields


def test_the_product_list_of_limited_staff_shows_counters_at_their_location(limited, stores):
    product = ProductFactory(code="ADM-P4", on_hand=4)
    stock_at_location(product, stores[0], on_hand=1)

    page = limited.get("/admin/inventory/product/")

    assert [p.here_on_hand for p in page.context["cl"].result_list] == [1]
