"""Batched deliveries: endpoints that accept them, and deliveries that carry several events."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0001_initial"),
    ]

    operations = [
        # Endpoints registered before batches existed keep one request per event (their receivers
        # expect that shape); endpoints created from now on accept batches unless told otherwise.
        migrations.AddField(
            model_name="webhookendpoint",
            name="batches",
            field=models.BooleanField(default=False, verbose_name="batched deliveries"),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="batches",
            field=models.BooleanField(
                default=True,
                help_text="Several events of one change travel in one request (up to WEBHOOK_BATCH_MAX). Off: one "
                          "request per event.",
                verbose_name="batched deliveries"),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="event_count",
            field=models.PositiveIntegerField(default=1, verbose_name="events"),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="event_type",
            field=models.CharField(choices=[("stock.changed", "stock.changed"), ("stock.low", "stock.low"),
                                            ("stock.out", "stock.out"), ("stock.back_in", "stock.back_in"),
                                            ("reservation.confirmed", "reservation.confirmed"),
                                            ("order.processed", "order.processed"), ("batch", "batch")],
                                   max_length=40, verbose_name="event type"),
        ),
    ]
