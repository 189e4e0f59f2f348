"""Stock.movement_count: each (product, location)'s number of ledger rows, counted once from the ledger here."""
from django.db import migrations, models

# The column is added in this transaction, which holds the stock table's exclusive lock to the end: no
# stock change (each locks its stock row first) can write a ledger row between the count and the commit.
COUNT_FROM_LEDGER = """
UPDATE inventory_stock s SET movement_count = c.rows
FROM (SELECT product_id, location_id, count(*) AS rows FROM inventory_stockmovement
      GROUP BY product_id, location_id) c
WHERE s.product_id = c.product_id AND s.location_id = c.location_id
"""


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0007_ledger_partitioned_by_month"),
    ]

    operations = [
        # A database default too: the import and the new-location statements insert stock rows in SQL.
        migrations.AddField(
            model_name="stock",
            name="movement_count",
            field=models.BigIntegerField(default=0, db_default=0, editable=False, verbose_name="ledger rows"),
        ),
        migrations.RunSQL(COUNT_FROM_LEDGER, reverse_sql=migrations.RunSQL.noop),
    ]
