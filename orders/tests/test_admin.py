"""Order admin: failed orders show their reason and steps, and the retry action queues them again."""
import pytest

from core.tests.factories import ApiClientFactory
from inventory.tests.factories import ProductFactory
from orders.models import Order, OrderStatus
from orders.services import order_create, order_fail


@pytest.mark.django_db
def test_failed_order_is_shown_and_retried_from_the_admin(client, staff_user):
    client.force_login(staff_user)
    ProductFactory(code="CHA-1", on_hand=3)
    order = order_create(client=ApiClientFactory(), lines=[{"code": "CHA-1", "quantity": 1}])
    order_fail(order_id=order.pk, reason="OperationalError: database went away")

    page = client.get(f"/admin/orders/order/{order.pk}/change/")
    response = client.post("/admin/orders/order/", {"action": "retry", "_selected_action": [str(order.pk)]})

    assert page.status_code == 200 and b"database went away" in page.content
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == OrderStatus.RECEIVED
