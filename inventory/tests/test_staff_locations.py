"""Staff users limited to locations: who is limited, to what, and who sees everything."""
import pytest
from django.contrib.auth import get_user_model

from core.errors import LocationForbidden
from inventory.import_jobs import import_job_create
from inventory.models import ImportJob, StockMovement
from inventory.selectors import client_location_codes, user_location_codes
from inventory.services import stock_record_movement
from inventory.tests.factories import LocationFactory, ProductFactory, staff_at

pytestmark = pytest.mark.django_db


def staff(username: str, **extra):
    return get_user_model().objects.create_user(username=username, password="x", is_staff=True, **extra)


def test_staff_listed_at_no_location_see_every_location():
    LocationFactory(code="LOJA-A")
    assert user_location_codes(staff("ana")) is None


def test_staff_listed_at_locations_are_limited_to_them():
    store_a, store_b = LocationFactory(code="LOJA-A"), LocationFactory(code="LOJA-B")
    LocationFactory(code="LOJA-C")
    bia = staff("bia")
    store_a.staff_users.add(bia)
    store_b.staff_users.add(bia)

    assert user_location_codes(bia) == frozenset({"LOJA-A", "LOJA-B"})
    assert client_location_codes(bia) == frozenset({"LOJA-A", "LOJA-B"})


def test_a_superuser_listed_at_a_location_still_sees_every_location():
    boss = staff("chefe", is_superuser=True)
    LocationFactory(code="LOJA-A").staff_users.add(boss)
    assert user_location_codes(boss) is None


def test_the_limit_is_read_once_per_user_object(django_assert_num_queries):
    caio = staff("caio")
    LocationFactory(code="LOJA-A").staff_users.add(caio)
    with django_assert_num_queries(1):
        assert user_location_codes(caio) == frozenset({"LOJA-A"})
        assert user_location_codes(caio) == frozenset({"LOJA-A"})


def test_no_user_and_anonymous_users_carry_no_limit():
    from django.contrib.auth.models import AnonymousUser
    assert user_location_codes(None) is None
    assert user_location_codes(AnonymousUser()) is None


def test_movement_and_import_services_refuse_a_location_the_acting_staff_may_not_use():
    store = LocationFactory(code="LOJA-A")
    product = ProductFactory(code="SCP-1", on_hand=3)
    user = staff_at(store)
    before = StockMovement.objects.count()

    with pytest.raises(LocationForbidden):
        stock_record_movement(code=product.code, kind="receipt", quantity=1, client=user)
    with pytest.raises(LocationForbidden):
        import_job_create(content=b"code,on_hand\nSCP-1,1\n", fmt="csv", client=user, queue=False)
    job = import_job_create(content=b"code,on_hand\nSCP-1,1\n", fmt="csv", location="loja-a", client=user, queue=False)

    assert StockMovement.objects.count() == before
    assert list(ImportJob.objects.values_list("pk", "location__code")) == [(job.pk, "LOJA-A")]
