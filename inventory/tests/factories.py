"""Factories for inventory: products come with their stock row, optionally stocked through the ledger."""
import factory

from inventory.models import MovementKind, Product, Stock, StockMovement, UnifiedCode


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
        Stock.objects.create(product=self, on_hand=quantity, version=1 if quantity else 0)
        if quantity:
            StockMovement.objects.create(
                product=self, kind=MovementKind.RECEIPT, quantity=quantity, on_hand_after=quantity, reason="factory"
            )


class UnifiedCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UnifiedCode

    code = factory.Sequence(lambda n: f"ALIAS-{n:05d}")
    product = factory.SubFactory(ProductFactory)
