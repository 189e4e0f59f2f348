"""Load the demo catalogue: products in several categories, some unified codes, some near or below threshold, and a
second location (a dark store) holding part of the catalogue."""
import random

from django.core.management.base import BaseCommand
from django.db import transaction

from inventory import services
from inventory.demo import CATALOGUE
from inventory.models import Location, LocationKind, Product

DARK_STORE = "DARK-ZS"


class Command(BaseCommand):
    help = "Create the demo products and stock (skipped when products already exist)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Add the catalogue even if products exist.")

    @transaction.atomic
    def handle(self, *args, force: bool = False, **options):
        if Product.objects.exists() and not force:
            self.stdout.write("Demo data already present; nothing to do.")
            return
        rng = random.Random(42)
        created = 0
        if not Location.objects.filter(code=DARK_STORE).exists():
            services.location_create(code=DARK_STORE, name="Dark store Zona Sul", kind=LocationKind.DARK_STORE,
                                     address="Rua Vergueiro, 1000 - São Paulo/SP")
        for prefix_index, (category, items) in enumerate(CATALOGUE.items(), start=1):
            for item_index, (name, unit) in enumerate(items, start=1):
                code = f"{category[:3].upper()}-{prefix_index}{item_index:03d}"
                # Every fourth product also sells under an older supplier code (a unified code).
                aliases = [f"7891{prefix_index:02d}{item_index:05d}"] if item_index % 4 == 0 else []
                if Product.objects.filter(code=code).exists():
                    continue
                services.product_create(code=code, name=name, category=category, unit=unit,
                                        low_stock_threshold=5, aliases=aliases)
                # A spread of levels: plenty, near the threshold, below it, and out of stock.
                quantity = rng.choice([0, 2, 4, 6, 8, 15, 30, 60, 120, 250])
                if quantity:
                    services.stock_receive(code=code, quantity=quantity, reason="demo opening stock",
                                           actor="system:demo")
                # The dark store carries every other product, in smaller quantities.
                if item_index % 2 and quantity >= 8:
                    services.transfer_create(code=code, source="", destination=DARK_STORE, quantity=quantity // 4,
                                             reference="demo", actor="system:demo")
                created += 1
        self.stdout.write(self.style.SUCCESS(f"Created {created} demo products."))
