"""Accent-free, typo-tolerant product search: unaccent and pg_trgm, an immutable f_unaccent and trigram indexes."""
import django.db.models.functions.text
from django.db import migrations, models

import inventory.models

# unaccent() is only STABLE (its dictionary could change), so neither an index nor a generated column
# can use it. The usual wrapper names the dictionary explicitly and is declared IMMUTABLE.
F_UNACCENT = """
CREATE OR REPLACE FUNCTION f_unaccent(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$
"""


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0002_stock_counters_unindexed'),
    ]

    operations = [
        # IF NOT EXISTS: the extensions are database-wide and may already be there (another app, a DBA).
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS unaccent; CREATE EXTENSION IF NOT EXISTS pg_trgm;",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(F_UNACCENT, reverse_sql="DROP FUNCTION IF EXISTS f_unaccent(text)"),
        # Names are compared as f_unaccent(lower(name)), stored once per row rather than computed per
        # row of every search; LIKE '%term%' and word similarity (%>) both use its trigram index.
        migrations.AddField(
            model_name='product',
            name='search_name',
            field=models.GeneratedField(
                db_persist=True,
                expression=inventory.models.FUnaccent(django.db.models.functions.text.Lower('name')),
                output_field=models.TextField(), verbose_name='search name'),
        ),
        migrations.RunSQL(
            "CREATE INDEX product_search_name_trgm_idx ON inventory_product USING gin (search_name gin_trgm_ops)",
            reverse_sql="DROP INDEX IF EXISTS product_search_name_trgm_idx",
        ),
        # Codes are stored upper case; part of a barcode or alias is found with LIKE '%TERM%'.
        migrations.RunSQL(
            "CREATE INDEX product_code_trgm_idx ON inventory_product USING gin (code gin_trgm_ops)",
            reverse_sql="DROP INDEX IF EXISTS product_code_trgm_idx",
        ),
        migrations.RunSQL(
            "CREATE INDEX unifiedcode_code_trgm_idx ON inventory_unifiedcode USING gin (code gin_trgm_ops)",
            reverse_sql="DROP INDEX IF EXISTS unifiedcode_code_trgm_idx",
        ),
    ]
