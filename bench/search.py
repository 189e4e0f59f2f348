"""Bot search benchmark: the /estoque answer over 100,000 products, server time in process (p50/p95).

Run with ``make bench-search``. It drops and recreates its own database (BENCH_DATABASE_URL), loads a
catalogue of Portuguese names with accents (noun, kind, brand, size: each noun in about 1,700 names),
aliases and some products at 0, then times ``notifications.bot.stock_answer`` (look-up, stock and, for
a product at 0, its substitutes: everything the server does for a reply except sending it) for codes,
aliases, names typed without accents, typos, free text and terms that find nothing.
"""
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", 100_000))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 20))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sp_bench_search")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
TARGET_MS = 50

ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "bench-search-secret-key-not-for-production",
    "DATABASE_URL": DB_URL,
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "CACHE_KEY_PREFIX": "bench-search",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))

from bench.common import database_recreate, manage  # noqa: E402

NOUNS = ("Café", "Feijão", "Água", "Pão", "Arroz", "Açúcar", "Leite", "Sabão", "Macarrão", "Óleo", "Farinha",
         "Biscoito", "Queijo", "Manteiga", "Iogurte", "Suco", "Refrigerante", "Cerveja", "Vinho", "Chá",
         "Chocolate", "Bolacha", "Sal", "Vinagre", "Azeite", "Molho", "Extrato", "Milho", "Ervilha", "Atum",
         "Sardinha", "Salsicha", "Presunto", "Mortadela", "Frango", "Carne", "Linguiça", "Ovos", "Banana",
         "Maçã", "Laranja", "Limão", "Tomate", "Cebola", "Alho", "Batata", "Cenoura", "Alface", "Detergente",
         "Amaciante", "Desinfetante", "Esponja", "Papel higiênico", "Guardanapo", "Sabonete", "Xampu",
         "Condicionador", "Creme dental", "Escova dental", "Fralda")
KINDS = ("tradicional", "integral", "light", "zero", "orgânico", "premium", "extra forte", "suave", "picante",
         "com sal", "sem sal", "natural", "temperado", "defumado", "fatiado", "ralado", "em pó", "líquido",
         "concentrado", "refinado", "cristal", "mascavo", "carioca", "preto", "branco", "parboilizado",
         "francês", "de forma", "recheado", "de coco", "de soja", "de milho", "de girassol", "extra virgem",
         "italiano", "mineral", "com gás", "sem gás", "desnatado", "semidesnatado")
BRANDS = ("Boa Safra", "Campo Verde", "Dona Maria", "São João", "Três Corações", "Vale Azul", "Serra Alta",
          "Bom Gosto", "Primor", "Delícia", "Aurora", "Estrela", "Solar", "Nativa", "Lua Nova", "Pérola",
          "Ipê", "Jequitibá", "Carajás", "Paraná", "Tietê", "Guará", "Itaú Rural", "Monte Belo", "Rio Claro",
          "Pampa", "Cerrado", "Mangueira", "Brisa", "Aroma")
SIZES = ("100g", "200g", "250g", "500g", "1kg", "2kg", "5kg", "350ml", "500ml", "1L", "1,5L", "2L", "6 un",
         "12 un", "30 un", "pacote", "caixa", "lata", "sachê", "refil")

# (kind, term): what drivers type. Codes and aliases are filled in from the loaded data.
TERMS = [
    ("name without accents", "cafe"), ("name without accents", "feijao carioca"), ("name without accents", "pao frances"),
    ("name without accents", "agua mineral com gas"), ("name without accents", "acucar mascavo"),
    ("typo", "arros parboilizado"), ("typo", "xocolate"), ("typo", "quejo ralado"), ("typo", "detergente neutroo"),
    ("free text", "tem arroz integral?"), ("free text", "quanto de cerveja tem?"), ("free text", "tem leite desnatado"),
    ("nothing close", "parafuso sextavado"), ("nothing close", "qwertyuiop"),
    ("brand", "tres coracoes"),
]


def data_load() -> None:
    """Products named noun + kind + brand + size, their stock (1 in 20 at 0) and 20,000 aliases."""
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO inventory_product (code, name, category, unit, low_stock_threshold, active, created_at, updated_at)
            SELECT 'BS-' || lpad(g::text, 6, '0'),
                   (%(nouns)s::text[])[1 + g %% cardinality(%(nouns)s::text[])] || ' '
                   || (%(kinds)s::text[])[1 + (g / 60) %% cardinality(%(kinds)s::text[])] || ' '
                   || (%(brands)s::text[])[1 + (g / 2400) %% cardinality(%(brands)s::text[])] || ' '
                   || (%(sizes)s::text[])[1 + (g * 7) %% cardinality(%(sizes)s::text[])],
                   'cat-' || (g %% cardinality(%(nouns)s::text[])), 'un', 5, true, now(), now()
            FROM generate_series(1, %(n)s) g""",
            {"nouns": list(NOUNS), "kinds": list(KINDS), "brands": list(BRANDS), "sizes": list(SIZES), "n": PRODUCTS})
        conn.execute("""
            INSERT INTO inventory_stock (product_id, location_id, on_hand, reserved, version, updated_at)
            SELECT id, (SELECT min(id) FROM inventory_location), CASE WHEN id % 20 = 0 THEN 0 ELSE 1 + (random() * 400)::int END, 0, 1, now()
            FROM inventory_product""")
        conn.execute("""
            INSERT INTO inventory_unifiedcode (code, product_id, note, created_at)
            SELECT '789' || lpad(id::text, 10, '0'), id, 'EAN', now() FROM inventory_product WHERE id % 5 = 0""")
        conn.execute("VACUUM ANALYZE")


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18] if len(samples) >= 20 else max(samples)


def ms(samples: list[float]) -> str:
    # The minimum is what a look-up costs when nothing else wants the two cores.
    return (f"p50 {statistics.median(samples) * 1000:.2f} ms, p95 {p95(samples) * 1000:.2f} ms, "
            f"min {min(samples) * 1000:.2f} ms")


def main() -> None:
    print(f"bot search bench: {PRODUCTS} products (database {DB_URL})")
    database_recreate(DB_URL)
    manage("migrate", "--noinput", env=ENV)
    t = time.monotonic()
    data_load()
    print(f"data loaded in {time.monotonic() - t:.1f} s")

    import django

    django.setup()
    from inventory.models import Product, UnifiedCode
    from notifications.bot import free_text_term, stock_answer

    last = Product.objects.filter(stocks__available__gt=0).order_by("-pk").first()
    out = Product.objects.filter(stocks__available__lte=0).order_by("-pk").first()
    alias = UnifiedCode.objects.filter(product__stocks__available__gt=0).order_by("-pk").first()
    terms = [*TERMS, ("code", last.code.lower()), ("code of a product at 0", out.code), ("alias", alias.code)]

    for _, term in terms:  # warm the caches and the connection, as a running server would be
        stock_answer(language="pt-br", term=free_text_term(term))
    by_kind: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for kind, term in terms:
            started = time.perf_counter()
            stock_answer(language="pt-br", term=free_text_term(term))
            by_kind.setdefault(kind, []).append(time.perf_counter() - started)
    for kind, samples in by_kind.items():
        print(f"  {kind:<22} {ms(samples)}")
    every = [s for samples in by_kind.values() for s in samples]
    verdict = "met" if p95(every) * 1000 <= TARGET_MS else "NOT met"
    print(f"/estoque answer, server time, all {len(every)} look-ups: {ms(every)} (target ≤ {TARGET_MS} ms: {verdict})")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"sample answer for 'tem arroz integral?':\n{stock_answer(language='pt-br', term=free_text_term('tem arroz integral?'))}")


if __name__ == "__main__":
    main()
