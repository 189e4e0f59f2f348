"""Tests for the notifications migrations: what they do to rows that existed before them."""
import pytest

from core.tests.migrations import default_location, latest, migrate

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


BEFORE_LOCATIONS = [("notifications", "0005_recipient_role_reorder_digest")]
AFTER_LOCATIONS = [("notifications", "0006_alerts_per_location")]


@pytest.mark.django_db(transaction=True)
def test_existing_alerts_become_the_default_locations_and_drivers_keep_receiving_them():
    from django.conf import settings

    old_apps = migrate(BEFORE_LOCATIONS)
    try:
        product = old_apps.get_model("inventory", "Product").objects.create(code="MIG-2", name="Feijão")
        ana = old_apps.get_model("notifications", "Driver").objects.create(name="Ana", chat_id=81)
        old_apps.get_model("notifications", "AlertState").objects.create(product=product, level="low", episode=3)
        alert = old_apps.get_model("notifications", "AlertOutbox").objects.create(
            product=product, driver=ana, episode=3, kind="stock", level="low", available=2)

        new_apps = migrate(AFTER_LOCATIONS)
        default = new_apps.get_model("inventory", "Location").objects.get(code=settings.DEFAULT_LOCATION_CODE)
        state = new_apps.get_model("notifications", "AlertState").objects.get(product_id=product.pk)
        assert (state.location_id, state.level, state.episode) == (default.pk, "low", 3)
        moved = new_apps.get_model("notifications", "AlertOutbox").objects.get(pk=alert.pk)
        assert (moved.location_id, moved.episode, moved.level) == (default.pk, 3, "low")
        assert not new_apps.get_model("notifications", "Driver").objects.get(pk=ana.pk).locations.exists()

        migrate(latest())
        from inventory.models import Product
        from notifications.selectors import drivers_for_products

        recipients = drivers_for_products(products=[Product.objects.get(pk=product.pk)], location_id=default.pk)
        assert [d.pk for d in recipients[product.pk]] == [ana.pk]
    finally:
        migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_going_back_keeps_the_default_locations_states_and_drops_the_others():
    migrate(latest())
    apps = migrate(AFTER_LOCATIONS)
    try:
        default = default_location(apps)
        other = apps.get_model("inventory", "Location").objects.create(code="MIG-B", name="B")
        product = apps.get_model("inventory", "Product").objects.create(code="MIG-3", name="Sal")
        states = apps.get_model("notifications", "AlertState").objects
        states.create(product=product, location=default, level="low", episode=1)
        states.create(product=product, location=other, level="out", episode=4)

        old_apps = migrate(BEFORE_LOCATIONS)

        [kept] = old_apps.get_model("notifications", "AlertState").objects.filter(product_id=product.pk)
        assert (kept.level, kept.episode) == ("low", 1)
    finally:
        migrate(latest())
