"""Tests for the notifications migrations: what they do to rows that existed before them."""
import pytest

from core.tests.migrations import latest, migrate

BEFORE = [("notifications", "0004_verbose_names")]
AFTER = [("notifications", "0005_recipient_role_reorder_digest")]


@pytest.mark.django_db(transaction=True)
def test_every_recipient_linked_before_roles_stays_a_driver_and_keeps_its_alerts():
    old_apps = migrate(BEFORE)
    try:
        product = old_apps.get_model("inventory", "Product").objects.create(code="MIG-1", name="Arroz")
        old_drivers = old_apps.get_model("notifications", "Driver").objects
        ana = old_drivers.create(name="Ana", chat_id=71)
        group = old_drivers.create(name="Turno da noite", chat_id=-72, is_group=True, active=False)
        alert = old_apps.get_model("notifications", "AlertOutbox").objects.create(
            product=product, driver=ana, episode=1, kind="stock", level="low", available=3)

        new_apps = migrate(AFTER)
        drivers = new_apps.get_model("notifications", "Driver").objects
        outbox = new_apps.get_model("notifications", "AlertOutbox").objects

        assert dict(drivers.values_list("pk", "role")) == {ana.pk: "driver", group.pk: "driver"}
        moved = outbox.get(pk=alert.pk)
        assert (moved.product_id, moved.kind, moved.digest_date, moved.part, moved.text) == (
            product.pk, "stock", None, 0, "")
    finally:
        migrate(latest())
