"""The orders admin for staff limited to locations: orders with a line at theirs, retried only when every
line is theirs."""
import pytest

from core.tests.factories import ApiClientFactory
from inventory.tests.factories import staff_at, stores_stocking
from orders.models import Order, OrderStatus
from orders.services import order_create, order_fail

pytestmark = pytest.mark.django_db


@pytest.fixture
def stores():
    return stores_stocking("ORD-A", "ORD-B")


def _failed_order(*places: str) -> Order:
    order = order_create(client=ApiClientFactory(), lines=[
        {"code": f"ORD-{place[-1]}", "quantity": 1, "location": place} for place in places])
    order_fail(order_id=order.pk, reason="test")
    return order


def test_limited_staff_see_orders_with_a_line_at_their_locations(client, stores):
    theirs, shared, others = _failed_order("LOJA-A"), _failed_order("LOJA-A", "LOJA-B"), _failed_order("LOJA-B")
    client.force_login(staff_at(stores[0]))

    page = client.get("/admin/orders/order/")
    opened = client.get(f"/admin/orders/order/{others.pk}/change/")

    assert {o.pk for o in page.context["cl"].result_list} == {theirs.pk, shared.pk}
    assert opened.status_code == 302


def test_retrying_an_order_with_a_line_elsewhere_is_refused(client, stores):
    theirs, shared = _failed_order("LOJA-A"), _failed_order("LOJA-A", "LOJA-B")
    client.force_login(staff_at(stores[0]))

    response = client.post("/admin/orders/order/", {"action": "retry",
                                                    "_selected_action": [str(theirs.pk), str(shared.pk)]}, follow=True)

    assert any(str(shared.pk) in str(m) for m in response.context["messages"])
    assert Order.objects.get(pk=theirs.pk).status == OrderStatus.RECEIVED
    assert Order.objects.get(pk=shared.pk).status == OrderStatus.FAILED


def test_the_list_filters_by_location_and_a_superuser_sees_every_order(client, staff_user, stores):
    at_a, at_b = _failed_order("LOJA-A"), _failed_order("LOJA-B")
    client.force_login(staff_user)

    every = client.get("/admin/orders/order/").context["cl"].result_list
    only_b = client.get("/admin/orders/order/", {"location": "LOJA-B"}).context["cl"].result_list

    assert {o.pk for o in every} == {at_a.pk, at_b.pk}
    assert [o.pk for o in only_b] == [at_b.pk]
