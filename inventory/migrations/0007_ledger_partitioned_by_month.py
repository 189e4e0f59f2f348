"""The ledger (inventory_stockmovement) becomes a table range-partitioned by month on created_at, rows kept;
its product index gains the location (and carries the quantity for the audit's sums), and the product's own
index goes (the composite indexes start with the product)."""
import django.db.models.deletion
from django.db import migrations, models

from inventory.migration_ops import ledger_partition_by_month


class Migration(migrations.Migration):

    # The rebuild copies every index the ledger has, the demand estimate's included.
    dependencies = [
        ("inventory", "0006_location_staff_users"),
        ("projections", "0002_demand_estimate_and_pace"),
    ]

    operations = [
        ledger_partition_by_month(months_ahead=3),
        migrations.AlterField(
            model_name="stockmovement",
            name="product",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="movements", to="inventory.product", verbose_name="product"),
        ),
        migrations.RemoveIndex(model_name="stockmovement", name="movement_product_recent_idx"),
        migrations.AddIndex(
            model_name="stockmovement",
            index=models.Index(fields=["product", "location", "-id"], include=["quantity"],
                               name="movement_place_recent_idx"),
        ),
    ]
