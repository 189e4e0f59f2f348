"""The projection in SQL: one set-based statement per batch of products (window sum over generate_series days).

Parameters: ``ids`` (bigint[]), ``today`` (store-local date), ``horizon`` (days), ``risk_days``,
``tentative`` (count tentative movements), ``now`` (computed_at).
"""

# Open movements dated before today land on today (late); balances are end of day.
_BASE = """
WITH src AS (
    SELECT st.product_id,
           st.available AS start_balance,
           st.version AS stock_version,
           pr.low_stock_threshold::bigint AS threshold,
           COALESCE(ps.plan_version, 0) AS plan_version,
           ps.stockout_date AS old_stockout,
           COALESCE(ps.source_version, -1) AS old_version
    FROM inventory_stock st
    JOIN inventory_product pr ON pr.id = st.product_id
    LEFT JOIN projections_projectionsummary ps ON ps.product_id = st.product_id
    WHERE st.product_id = ANY(%(ids)s::bigint[])
),
flows AS (
    SELECT m.product_id,
           GREATEST(m.date, %(today)s::date) AS day,
           COALESCE(SUM(m.quantity) FILTER (WHERE m.direction = 'in'), 0) AS inbound,
           COALESCE(SUM(m.quantity) FILTER (WHERE m.direction = 'out'), 0) AS outbound,
           COUNT(*) FILTER (WHERE m.date < %(today)s::date) AS late
    FROM projections_plannedmovement m
    WHERE m.product_id = ANY(%(ids)s::bigint[])
      AND m.status = 'open'
      AND m.date < %(today)s::date + %(horizon)s::int
      AND (m.firmness = 'firm' OR %(tentative)s::boolean)
    GROUP BY 1, 2
),
days AS (
    SELECT src.product_id, src.start_balance, src.threshold, g.day::date AS day
    FROM src
    CROSS JOIN generate_series(%(today)s::date, %(today)s::date + (%(horizon)s::int - 1), interval '1 day') AS g(day)
),
daily AS (
    SELECT d.product_id, d.day, d.threshold,
           COALESCE(f.inbound, 0)::bigint AS inbound,
           COALESCE(f.outbound, 0)::bigint AS outbound,
           COALESCE(f.late, 0) AS late,
           (d.start_balance + SUM(COALESCE(f.inbound, 0) - COALESCE(f.outbound, 0))
               OVER (PARTITION BY d.product_id ORDER BY d.day ROWS UNBOUNDED PRECEDING))::bigint AS balance
    FROM days d
    LEFT JOIN flows f ON f.product_id = d.product_id AND f.day = d.day
),
-- Rows reach the aggregates already in day order (the sorted subquery), so the arrays need no
-- per-group ORDER BY sort: on PostgreSQL 15 those sorts cost more than the window sum itself.
agg AS (
    SELECT d.product_id,
           array_agg(d.inbound) AS daily_inbound,
           array_agg(d.outbound) AS daily_outbound,
           array_agg(d.balance) AS daily_balance,
           MIN(d.balance) FILTER (WHERE d.day < %(today)s::date + 7) AS min7,
           MIN(d.day) FILTER (WHERE d.balance < 0) AS first_negative,
           MIN(d.day) FILTER (WHERE d.balance < d.threshold) AS first_below,
           SUM(d.late)::int AS late
    FROM (SELECT * FROM daily ORDER BY product_id, day) AS d
    GROUP BY d.product_id
),
res AS (
    SELECT a.*, %(today)s::date + array_position(a.daily_balance[1:7], a.min7) - 1 AS min7_date,
           src.start_balance, src.threshold, src.plan_version, src.old_stockout, src.old_version,
           src.stock_version + src.plan_version AS source_version,
           CASE WHEN src.start_balance < 0 THEN %(today)s::date ELSE a.first_negative END AS stockout,
           CASE WHEN src.start_balance < src.threshold THEN %(today)s::date ELSE a.first_below END AS below
    FROM agg a JOIN src ON src.product_id = a.product_id
)
"""

# Compute rows without storing them (used for views longer than the stored horizon).
SELECT_SQL = _BASE + """
SELECT product_id, start_balance, threshold, daily_inbound, daily_outbound, daily_balance,
       min7, min7_date, stockout, below, late, source_version
FROM res ORDER BY product_id
"""

# Upsert guarded by the source version (and the day): an older recompute finishing late changes nothing.
# Rows are inserted in pk order so concurrent batches lock summary rows in the same order.
UPSERT_SQL = _BASE + """,
up AS (
    INSERT INTO projections_projectionsummary AS s (
        product_id, as_of, horizon_days, start_balance, threshold, min_balance_7d, min_balance_7d_date,
        stockout_date, below_threshold_date, days_of_cover, late_movements,
        daily_inbound, daily_outbound, daily_balance, plan_version, source_version, computed_at)
    SELECT product_id, %(today)s::date, %(horizon)s::int, start_balance, threshold, min7, min7_date,
           stockout, below, stockout - %(today)s::date, late,
           daily_inbound, daily_outbound, daily_balance, plan_version, source_version, %(now)s::timestamptz
    FROM res ORDER BY product_id
    ON CONFLICT (product_id) DO UPDATE SET
        as_of = EXCLUDED.as_of, horizon_days = EXCLUDED.horizon_days, start_balance = EXCLUDED.start_balance,
        threshold = EXCLUDED.threshold, min_balance_7d = EXCLUDED.min_balance_7d,
        min_balance_7d_date = EXCLUDED.min_balance_7d_date, stockout_date = EXCLUDED.stockout_date,
        below_threshold_date = EXCLUDED.below_threshold_date, days_of_cover = EXCLUDED.days_of_cover,
        late_movements = EXCLUDED.late_movements, daily_inbound = EXCLUDED.daily_inbound,
        daily_outbound = EXCLUDED.daily_outbound, daily_balance = EXCLUDED.daily_balance,
        source_version = EXCLUDED.source_version, computed_at = EXCLUDED.computed_at
    WHERE s.source_version <= EXCLUDED.source_version AND (s.as_of IS NULL OR s.as_of <= EXCLUDED.as_of)
    RETURNING s.product_id, s.stockout_date
)
SELECT up.product_id,
       (res.old_version >= 0 AND res.old_stockout IS NOT NULL
            AND res.old_stockout < %(today)s::date + %(risk_days)s::int) AS was_at_risk,
       (up.stockout_date IS NOT NULL AND up.stockout_date < %(today)s::date + %(risk_days)s::int) AS at_risk,
       up.stockout_date,
       res.old_stockout
FROM up JOIN res ON res.product_id = up.product_id
"""

# Every product with a stock row gets a summary row; a new one is dirty (source_version -1).
PLACEHOLDERS_SQL = """
INSERT INTO projections_projectionsummary AS s (
    product_id, horizon_days, start_balance, threshold, late_movements,
    daily_inbound, daily_outbound, daily_balance, plan_version, source_version)
SELECT st.product_id, 0, 0, 0, 0, '{}', '{}', '{}', 0, -1
FROM inventory_stock st
WHERE NOT EXISTS (SELECT 1 FROM projections_projectionsummary p WHERE p.product_id = st.product_id)
ORDER BY st.product_id
ON CONFLICT (product_id) DO NOTHING
"""

# A planned-movement change bumps the product's plan version (creating the row if needed), pk order.
PLAN_BUMP_SQL = """
INSERT INTO projections_projectionsummary AS s (
    product_id, horizon_days, start_balance, threshold, late_movements,
    daily_inbound, daily_outbound, daily_balance, plan_version, source_version)
SELECT t.id, 0, 0, 0, 0, '{}', '{}', '{}', 1, -1
FROM unnest(%(ids)s::bigint[]) AS t(id)
ORDER BY t.id
ON CONFLICT (product_id) DO UPDATE SET plan_version = s.plan_version + 1
"""

# Per transaction: the planner's row estimates for generate_series make JIT kick in, and compiling
# costs seconds per batch for a statement that runs in milliseconds; sorts of a batch fit in memory.
SESSION_SQL = "SELECT set_config('jit', 'off', true), set_config('work_mem', '32MB', true)"
