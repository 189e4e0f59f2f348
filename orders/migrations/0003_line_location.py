"""Order lines name their location; every existing line is at the default location."""
import django.db.models.deletion
from django.db import migrations, models

from inventory.migration_ops import location_column_add


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0005_locations_and_transfers"),
        ("orders", "0002_verbose_names"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="orderline",
            name="order_line_one_per_product",
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[location_column_add("orders_orderline")],
            state_operations=[migrations.AddField(
                model_name="orderline",
                name="location",
                field=models.ForeignKey(default=None, on_delete=django.db.models.deletion.PROTECT,
                                        related_name="order_lines", to="inventory.location",
                                        verbose_name="location"),
                preserve_default=False,
            )],
        ),
        migrations.AddConstraint(
            model_name="orderline",
            constraint=models.UniqueConstraint(fields=("order", "product", "location"),
                                               name="order_line_one_per_product_location"),
        ),
    ]
