"""Tests for the planned-movement admin: saving there counts in the product's projection."""
import pytest

from inventory.selectors import location_default_id
from inventory.tests.factories import ProductFactory
from projections import services
from projections.models import PlannedMovement, ProjectionSummary


@pytest.mark.django_db
def test_adding_a_movement_in_the_admin_bumps_the_plan_version(client, staff_user):
    product = ProductFactory(on_hand=5)
    services.projection_recompute(product_ids=[product.pk])
    before = ProjectionSummary.objects.get(product=product).plan_version
    client.force_login(staff_user)

    response = client.post("/admin/projections/plannedmovement/add/", {
        "product": product.pk, "location": location_default_id(), "date": services.projection_today().isoformat(),
        "direction": "out",
        "quantity": 2, "kind": "order", "firmness": "firm", "status": "open", "source": "manual",
        "source_ref": "desk-1", "note": "",
    })

    assert response.status_code == 302
    assert PlannedMovement.objects.get().source_ref == "desk-1"
    assert ProjectionSummary.objects.get(product=product).plan_version == before + 1


@pytest.mark.django_db
def test_admin_list_filters_by_status(client, staff_user):
    client.force_login(staff_user)

    response = client.get("/admin/projections/plannedmovement/?status__exact=open")

    assert response.status_code == 200


@pytest.mark.django_db
def test_deleting_a_movement_in_the_admin_bumps_the_plan_version(client, staff_user):
    from projections.tests.factories import PlannedMovementFactory

    movement = PlannedMovementFactory()
    services.projection_recompute(product_ids=[movement.product_id])
    before = ProjectionSummary.objects.get(product_id=movement.product_id).plan_version
    client.force_login(staff_user)

    response = client.post(f"/admin/projections/plannedmovement/{movement.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not PlannedMovement.objects.exists()
    assert ProjectionSummary.objects.get(product_id=movement.product_id).plan_version == before + 1


@pytest.mark.django_db
def test_planned_movements_are_found_by_a_product_name_typed_without_accents(client, staff_user):
    from projections.tests.factories import PlannedMovementFactory

    PlannedMovementFactory(product=ProductFactory(name="Feijão carioca"), source_ref="FOUND-1")
    PlannedMovementFactory(product=ProductFactory(name="Arroz"), source_ref="HIDDEN-1")
    PlannedMovementFactory(product=ProductFactory(name="Milho"), source_ref="feijao-ref")
    client.force_login(staff_user)

    page = client.get("/admin/projections/plannedmovement/", {"q": "feijao"}).content.decode()

    assert "FOUND-1" in page and "feijao-ref" in page and "HIDDEN-1" not in page


@pytest.mark.django_db
def test_demand_estimates_are_listed_read_only(client, staff_user):
    from projections.models import DemandEstimate

    product = ProductFactory(on_hand=5)
    services.projection_recompute(product_ids=[product.pk])
    client.force_login(staff_user)

    listing = client.get("/admin/projections/demandestimate/?basis__exact=short")
    change = client.post(f"/admin/projections/demandestimate/{product.pk}/change/", {"daily_rate": 99})

    assert listing.status_code == 200
    assert product.code in listing.content.decode()
    assert change.status_code == 403
    assert DemandEstimate.objects.get(product=product).daily_rate == 0.0


@pytest.mark.django_db
def test_the_admin_orders_the_selected_suggestions_in_bulk(client, staff_user):
    from inventory.models import Stock
    from projections.models import ReorderSuggestion
    from projections.tests.factories import SupplyTermsFactory, sales_history

    products = [ProductFactory() for _ in range(2)]
    for product in products:
        sales_history(product, today=services.projection_today(), demand=[1] * 28, opening=100)
        SupplyTermsFactory(product=product, min_order=24)
    Stock.objects.filter(product__in=products).update(on_hand=0)
    services.projection_recompute(product_ids=[p.pk for p in products])
    ids = list(ReorderSuggestion.objects.values_list("pk", flat=True))
    assert len(ids) == 2
    client.force_login(staff_user)

    response = client.post("/admin/projections/reordersuggestion/", {
        "action": "order_selected", "_selected_action": ids})

    assert response.status_code == 302
    assert set(ReorderSuggestion.objects.values_list("state", flat=True)) == {"ordered"}
    assert PlannedMovement.objects.filter(source="reorder", quantity=24).count() == 2
