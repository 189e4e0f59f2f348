"""Locations: a default location (DEFAULT_LOCATION_CODE) takes every existing stock row and ledger row;
stock becomes one row per product and location; transfers between locations."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from inventory.migration_ops import location_column_add


def default_location_create(apps, schema_editor):
    Location = apps.get_model("inventory", "Location")
    Location.objects.get_or_create(code=settings.DEFAULT_LOCATION_CODE,
                                   defaults={"name": settings.DEFAULT_LOCATION_NAME})


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0004_import_job"),
    ]

    operations = [
        migrations.CreateModel(
            name="Location",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.CharField(max_length=64, unique=True, verbose_name="code")),
                ("name", models.CharField(max_length=200, verbose_name="name")),
                ("kind", models.CharField(choices=[("store", "store"), ("dark_store", "dark store"),
                                                   ("warehouse", "warehouse")],
                                          default="store", max_length=16, verbose_name="kind")),
                ("address", models.TextField(blank=True, verbose_name="address")),
                ("time_zone", models.CharField(default="America/Sao_Paulo", max_length=64, verbose_name="time zone")),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created at")),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
            ],
            options={
                "verbose_name": "location",
                "verbose_name_plural": "locations",
                "ordering": ["code"],
                "constraints": [models.CheckConstraint(condition=models.Q(("code", ""), _negated=True),
                                                       name="location_code_not_empty")],
            },
        ),
        migrations.RunPython(default_location_create, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="stock",
            name="product",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="stocks",
                                    to="inventory.product", verbose_name="product"),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[location_column_add("inventory_stock")],
            state_operations=[migrations.AddField(
                model_name="stock",
                name="location",
                field=models.ForeignKey(default=None, on_delete=django.db.models.deletion.PROTECT,
                                        related_name="stocks", to="inventory.location", verbose_name="location"),
                preserve_default=False,
            )],
        ),
        migrations.AddConstraint(
            model_name="stock",
            constraint=models.UniqueConstraint(fields=("product", "location"),
                                               name="stock_one_row_per_product_location"),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[location_column_add("inventory_stockmovement")],
            state_operations=[migrations.AddField(
                model_name="stockmovement",
                name="location",
                field=models.ForeignKey(default=None, on_delete=django.db.models.deletion.PROTECT,
                                        related_name="movements", to="inventory.location", verbose_name="location"),
                preserve_default=False,
            )],
        ),
        migrations.AlterField(
            model_name="stockmovement",
            name="kind",
            field=models.CharField(choices=[("receipt", "receipt"), ("sale", "sale"), ("adjustment", "adjustment"),
                                            ("count", "count"), ("return", "return"),
                                            ("transfer_out", "transfer out"), ("transfer_in", "transfer in")],
                                   max_length=16, verbose_name="kind"),
        ),
        migrations.CreateModel(
            name="Transfer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("quantity", models.BigIntegerField(verbose_name="quantity")),
                ("status", models.CharField(choices=[("shipped", "in transit"), ("received", "received"),
                                                     ("cancelled", "cancelled")], max_length=16,
                                            verbose_name="status")),
                ("expected_on", models.DateField(blank=True, null=True, verbose_name="expected on")),
                ("reference", models.CharField(blank=True, max_length=128, verbose_name="external reference")),
                ("actor", models.CharField(blank=True, max_length=150, verbose_name="actor")),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True, verbose_name="created at")),
                ("received_at", models.DateTimeField(blank=True, null=True, verbose_name="received at")),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
                ("destination", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                                  related_name="transfers_in", to="inventory.location",
                                                  verbose_name="to")),
                ("product", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="transfers",
                                              to="inventory.product", verbose_name="product")),
                ("source", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                             related_name="transfers_out", to="inventory.location",
                                             verbose_name="from")),
            ],
            options={
                "verbose_name": "transfer",
                "verbose_name_plural": "transfers",
                "ordering": ["-created_at", "-id"],
                "indexes": [models.Index(fields=["destination", "status"], name="transfer_dest_status_idx")],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("quantity__gt", 0)), name="transfer_quantity_positive"),
                    models.CheckConstraint(condition=models.Q(("source", models.F("destination")), _negated=True),
                                           name="transfer_between_two_locations"),
                ],
            },
        ),
        migrations.AddField(
            model_name="stockmovement",
            name="transfer",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="movements", to="inventory.transfer", verbose_name="transfer"),
        ),
        migrations.AddField(
            model_name='importjob',
            name='location',
            field=models.ForeignKey(blank=True, help_text='Where the counts apply; empty: the default location.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='imports', to='inventory.location', verbose_name='location'),
        ),
    ]
