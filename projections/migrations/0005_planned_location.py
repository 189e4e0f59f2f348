"""Planned movements name their location; every existing one is at the default location."""
import django.db.models.deletion
from django.db import migrations, models

from inventory.migration_ops import location_column_add


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0005_locations_and_transfers"),
        ("projections", "0004_verbose_names"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[location_column_add("projections_plannedmovement")],
            state_operations=[migrations.AddField(
                model_name="plannedmovement",
                name="location",
                field=models.ForeignKey(default=None, on_delete=django.db.models.deletion.PROTECT,
                                        related_name="planned_movements", to="inventory.location",
                                        verbose_name="location"),
                preserve_default=False,
            )],
        ),
    ]
