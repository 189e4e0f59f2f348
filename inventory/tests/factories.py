"""Factories for inventory: locations, and products that come with their stock row at the default location,
optionally stocked through the ledger."""
import factory

from inventory.models import Location, LocationKind, MovementKind, Product, Stock, StockMovement, UnifiedCode
from inventory.selectors import location_default_id


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"LOJA-{n:03d}")
    name = factory.Sequence(lambda n: f"Loja {n}")
    kind = LocationKind.DARK_STORE


class ProductFactory(factory.django.DjangoModelFactory):
    """``ProductFactory(on_hand=10)`` creates the product, its stock row and a receipt ledger row for 10."""

    class Meta:
        model = Product
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    category = "mercearia"
    low_stock_threshold = 5

    @factory.post_generation
    def on_hand(self, create, extracted, **kwargs):
        quantity = extracted or 0
        location_id = location_default_id()
        Stock.objects.create(product=self, location_id=location_id, on_hand=quantity, version=1 if quantity else 0,
                             movement_count=1 if quantity else 0)
        if quantity:
            StockMovement.objects.create(
                product=self, location_id=location_id, kind=MovementKind.RECEIPT, quantity=quantity,
                on_hand_after=quantity, reason="factory",
            )


def stock_at_location(product: Product, location: Location, on_hand: int = 0) -> Stock:
    """Give ``product`` a stock row at ``location`` holding ``on_hand`` units, through a receipt ledger row."""
    stock = Stock.objects.create(product=product, location=location, on_hand=on_hand, version=1 if on_hand else 0,
                                 movement_count=1 if on_hand else 0)
    if on_hand:
        StockMovement.objects.create(product=product, location=location, kind=MovementKind.RECEIPT,
                                     quantity=on_hand, on_hand_after=on_hand, reason="factory")
    return stock


class UnifiedCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UnifiedCode

    code = factory.Sequence(lambda n: f"ALIAS-{n:05d}")
    product = factory.SubFactory(ProductFactory)


def staff_at(*locations: Location, username: str = "loja"):
    """A staff user (not a superuser) with every admin permission of the stock apps, listed at these
    locations: with any, limited to them."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username=username, password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label__in=["inventory", "reservations", "orders", "core"]))
    for location in locations:
        location.staff_users.add(user)
    return user


def stores_stocking(*codes: str, on_hand: int = 5) -> tuple[Location, Location]:
    """Two stores, LOJA-A and LOJA-B, each holding ``on_hand`` units of a new product per code."""
    store_a, store_b = LocationFactory(code="LOJA-A"), LocationFactory(code="LOJA-B")
    for code in codes:
        product = ProductFactory(code=code)
        stock_at_location(product, store_a, on_hand=on_hand)
        stock_at_location(product, store_b, on_hand=on_hand)
    return store_a, store_b
