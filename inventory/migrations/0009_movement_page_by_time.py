"""The ledger's per-(product, location) index ordered by time, built month by month without holding writes."""
from django.db import migrations, models

from inventory.partitions import ledger_index_build_online, ledger_index_drop

BY_TIME = ("movement_place_time_idx", "(product_id, location_id, created_at DESC, id DESC) INCLUDE (quantity)")
BY_ID = ("movement_place_recent_idx", "(product_id, location_id, id DESC) INCLUDE (quantity)")


def index_replace(built: tuple[str, str], dropped: tuple[str, str]):
    def run(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            ledger_index_build_online(cursor, name=built[0], columns=built[1])
            ledger_index_drop(cursor, name=dropped[0])
    return run


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY runs outside a transaction. Each step is idempotent: a run stopped
    # half-way is finished by running the migration again.
    atomic = False

    dependencies = [
        ("inventory", "0008_stock_movement_count"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="stockmovement", name="movement_place_recent_idx"),
                migrations.AddIndex(
                    model_name="stockmovement",
                    index=models.Index(fields=["product", "location", "-created_at", "-id"], include=["quantity"],
                                       name="movement_place_time_idx"),
                ),
            ],
            database_operations=[
                migrations.RunPython(index_replace(BY_TIME, BY_ID), index_replace(BY_ID, BY_TIME)),
            ],
        ),
    ]
