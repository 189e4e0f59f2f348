"""The Stock table's physical layout: what lets a storefront rush update one row in place."""
import pytest
from django.db import connection


@pytest.mark.django_db
def test_stock_counters_have_no_index_and_pages_keep_room_so_reservations_update_in_place():
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT a.attname FROM pg_index i
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = 'inventory_stock'::regclass""")
        indexed = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = 'inventory_stock'::regclass")
        options = cursor.fetchone()[0]

    assert indexed == {"id", "product_id"}
    assert "fillfactor=70" in options
