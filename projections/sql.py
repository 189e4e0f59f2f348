"""The projection in SQL: one set-based statement per batch of products (window sum over generate_series days).

Every statement works on one location (``location_id``): the stock row, planned movements, ledger, summary,
demand estimate and reorder suggestion of each product there.

Parameters: ``ids`` (bigint[]), ``location_id``, ``today`` (store-local date), ``horizon`` (days), ``risk_days``,
``tentative`` (count tentative movements), ``now`` (computed_at), ``today_left`` (the share of today still
ahead, 0–1, for today's expected demand).
"""

# Open movements dated before today land on today (late); balances are end of day.
_BASE = """
WITH src AS (
    SELECT st.product_id,
           st.available AS start_balance,
           st.version AS stock_version,
           pr.low_stock_threshold::bigint AS threshold,
           COALESCE(ps.plan_version, 0) AS plan_version,
           COALESCE(ps.stockout_date_at_pace, ps.stockout_date) AS old_stockout,
           COALESCE(ps.source_version, -1) AS old_version,
           COALESCE(de.daily_rate, 0)::float8 AS rate,
           COALESCE(de.weekday_factors, '{1,1,1,1,1,1,1}') AS factors
    FROM inventory_stock st
    JOIN inventory_product pr ON pr.id = st.product_id
    LEFT JOIN projections_projectionsummary ps ON ps.product_id = st.product_id AND ps.location_id = st.location_id
    LEFT JOIN projections_demandestimate de ON de.product_id = st.product_id AND de.location_id = st.location_id
    WHERE st.product_id = ANY(%(ids)s::bigint[]) AND st.location_id = %(location_id)s
),
flows AS (
    SELECT m.product_id,
           GREATEST(m.date, %(today)s::date) AS day,
           COALESCE(SUM(m.quantity) FILTER (WHERE m.direction = 'in'), 0) AS inbound,
           COALESCE(SUM(m.quantity) FILTER (WHERE m.direction = 'out'), 0) AS outbound,
           COUNT(*) FILTER (WHERE m.date < %(today)s::date) AS late
    FROM projections_plannedmovement m
    WHERE m.product_id = ANY(%(ids)s::bigint[])
      AND m.location_id = %(location_id)s
      AND m.status = 'open'
      AND m.date < %(today)s::date + %(horizon)s::int
      AND (m.firmness = 'firm' OR %(tentative)s::boolean)
    GROUP BY 1, 2
),
days AS (
    SELECT src.product_id, src.start_balance, src.threshold, src.rate, src.factors, g.day::date AS day
    FROM src
    CROSS JOIN generate_series(%(today)s::date, %(today)s::date + (%(horizon)s::int - 1), interval '1 day') AS g(day)
),
-- Expected outbound: the demand estimate for the day (today: the part of the day still ahead) beyond
-- what planned outbound movements already take that day, never negative.
joined AS (
    SELECT d.product_id, d.day, d.threshold, d.start_balance,
           COALESCE(f.inbound, 0)::bigint AS inbound,
           COALESCE(f.outbound, 0)::bigint AS outbound,
           COALESCE(f.late, 0) AS late,
           GREATEST(d.rate * d.factors[EXTRACT(ISODOW FROM d.day)::int]
                    * CASE WHEN d.day = %(today)s::date THEN %(today_left)s::float8 ELSE 1 END
                    - COALESCE(f.outbound, 0), 0) AS expected
    FROM days d
    LEFT JOIN flows f ON f.product_id = d.product_id AND f.day = d.day
),
daily AS (
    SELECT j.product_id, j.day, j.threshold, j.inbound, j.outbound, j.late, j.expected,
           (j.start_balance + SUM(j.inbound - j.outbound) OVER w)::bigint AS balance,
           j.start_balance + SUM(j.inbound - j.outbound - j.expected) OVER w AS pace_balance
    FROM joined j
    WINDOW w AS (PARTITION BY j.product_id ORDER BY j.day ROWS UNBOUNDED PRECEDING)
),
-- Rows reach the aggregates already in day order (the sorted subquery), so the arrays need no
-- per-group ORDER BY sort: on PostgreSQL 15 those sorts cost more than the window sum itself.
agg AS (
    SELECT d.product_id,
           array_agg(d.inbound) AS daily_inbound,
           array_agg(d.outbound) AS daily_outbound,
           array_agg(d.balance) AS daily_balance,
           array_agg(round(d.expected::numeric, 2)::float8) AS daily_expected,
           array_agg(round(d.pace_balance::numeric, 2)::float8) AS daily_pace,
           MIN(d.day) FILTER (WHERE d.pace_balance < -1e-6) AS first_negative_pace,
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
           CASE WHEN src.start_balance < 0 THEN %(today)s::date ELSE a.first_negative_pace END AS stockout_pace,
           src.rate,
           CASE WHEN src.start_balance < src.threshold THEN %(today)s::date ELSE a.first_below END AS below
    FROM agg a JOIN src ON src.product_id = a.product_id
)
"""

# Compute rows without storing them (used for views longer than the stored horizon).
SELECT_SQL = _BASE + """
SELECT product_id, start_balance, threshold, daily_inbound, daily_outbound, daily_balance,
       min7, min7_date, stockout, below, late, source_version, daily_expected, daily_pace, stockout_pace
FROM res ORDER BY product_id
"""

# Upsert guarded by the source version (and the day): an older recompute finishing late changes nothing.
# Rows are inserted in pk order so concurrent batches lock summary rows in the same order. Risk
# transitions (events, the Telegram alert) follow the stockout day at pace, which is the planned one for
# a product that sells nothing and never later than it.
UPSERT_SQL = _BASE + """,
up AS (
    INSERT INTO projections_projectionsummary AS s (
        product_id, location_id, as_of, horizon_days, start_balance, threshold, min_balance_7d, min_balance_7d_date,
        stockout_date, below_threshold_date, days_of_cover, late_movements,
        daily_inbound, daily_outbound, daily_balance, plan_version, source_version, computed_at,
        demand_rate, daily_expected_outbound, daily_balance_at_pace, stockout_date_at_pace, days_of_cover_at_pace)
    SELECT product_id, %(location_id)s, %(today)s::date, %(horizon)s::int, start_balance, threshold, min7, min7_date,
           stockout, below, stockout - %(today)s::date, late,
           daily_inbound, daily_outbound, daily_balance, plan_version, source_version, %(now)s::timestamptz,
           rate, daily_expected, daily_pace, stockout_pace, stockout_pace - %(today)s::date
    FROM res ORDER BY product_id
    ON CONFLICT (product_id, location_id) DO UPDATE SET
        as_of = EXCLUDED.as_of, horizon_days = EXCLUDED.horizon_days, start_balance = EXCLUDED.start_balance,
        threshold = EXCLUDED.threshold, min_balance_7d = EXCLUDED.min_balance_7d,
        min_balance_7d_date = EXCLUDED.min_balance_7d_date, stockout_date = EXCLUDED.stockout_date,
        below_threshold_date = EXCLUDED.below_threshold_date, days_of_cover = EXCLUDED.days_of_cover,
        late_movements = EXCLUDED.late_movements, daily_inbound = EXCLUDED.daily_inbound,
        daily_outbound = EXCLUDED.daily_outbound, daily_balance = EXCLUDED.daily_balance,
        source_version = EXCLUDED.source_version, computed_at = EXCLUDED.computed_at,
        demand_rate = EXCLUDED.demand_rate, daily_expected_outbound = EXCLUDED.daily_expected_outbound,
        daily_balance_at_pace = EXCLUDED.daily_balance_at_pace,
        stockout_date_at_pace = EXCLUDED.stockout_date_at_pace, days_of_cover_at_pace = EXCLUDED.days_of_cover_at_pace
    WHERE s.source_version <= EXCLUDED.source_version AND (s.as_of IS NULL OR s.as_of <= EXCLUDED.as_of)
    RETURNING s.product_id, s.stockout_date_at_pace
)
SELECT up.product_id,
       (res.old_version >= 0 AND res.old_stockout IS NOT NULL
            AND res.old_stockout < %(today)s::date + %(risk_days)s::int) AS was_at_risk,
       (up.stockout_date_at_pace IS NOT NULL
            AND up.stockout_date_at_pace < %(today)s::date + %(risk_days)s::int) AS at_risk,
       up.stockout_date_at_pace,
       res.old_stockout
FROM up JOIN res ON res.product_id = up.product_id
"""

# Every stock row (a product at a location) gets a summary row; a new one is dirty (source_version -1).
PLACEHOLDERS_SQL = """
INSERT INTO projections_projectionsummary AS s (
    product_id, location_id, horizon_days, start_balance, threshold, late_movements,
    daily_inbound, daily_outbound, daily_balance, plan_version, source_version)
SELECT st.product_id, st.location_id, 0, 0, 0, 0, '{}', '{}', '{}', 0, -1
FROM inventory_stock st
WHERE NOT EXISTS (SELECT 1 FROM projections_projectionsummary p
                  WHERE p.product_id = st.product_id AND p.location_id = st.location_id)
ORDER BY st.product_id, st.location_id
ON CONFLICT (product_id, location_id) DO NOTHING
"""

# A planned-movement change bumps the plan version of the product at its location (creating the row if
# needed), pk order.
PLAN_BUMP_SQL = """
INSERT INTO projections_projectionsummary AS s (
    product_id, location_id, horizon_days, start_balance, threshold, late_movements,
    daily_inbound, daily_outbound, daily_balance, plan_version, source_version)
SELECT t.id, %(location_id)s, 0, 0, 0, 0, '{}', '{}', '{}', 1, -1
FROM unnest(%(ids)s::bigint[]) AS t(id)
ORDER BY t.id
ON CONFLICT (product_id, location_id) DO UPDATE SET plan_version = s.plan_version + 1
"""

# Per transaction: the planner's row estimates for generate_series make JIT kick in, and compiling
# costs seconds per batch for a statement that runs in milliseconds; sorts of a batch fit in memory.
SESSION_SQL = "SELECT set_config('jit', 'off', true), set_config('work_mem', '32MB', true)"

# ---------------------------------------------------------------------------------------------
# Demand estimates. Parameters: ``ids``, ``today``, ``tz`` (store time zone), ``window`` (days fitted),
# ``backtest`` (days held out for the error), ``alpha`` (smoothing), ``prior`` (weekday shrink, in days),
# ``min_history``, ``now``. The caller passes only products not yet estimated for ``today`` (the estimate
# uses whole past days, so it changes once a day and the many recomputes of a busy day skip it); a row
# another recompute already made for ``today`` is left as it is. ``ids`` is not filtered here: the
# planner then knows how many products the batch has (a filter against a table with stale statistics
# was estimated at one row, and the nested loops that followed took minutes for 5,000 products).
#
# A day is observed only when the product had stock on hand when the day began and when it ended; any
# other day is censored (a sellout cuts the day's sales short, an empty shelf sells nothing) and left
# out of every average, so stockouts never pull the rate down. Weekday factors are each weekday's mean
# over the window's mean, shrunk toward 1 by ``prior`` days of the mean, normalised to average 1. The
# rate is exponentially smoothed (weight (1 - alpha)^age) as Σ w·sold / Σ w·factor, a ratio that stays
# finite when a weekday sells nothing. The same fit made ``backtest`` days earlier gives the MAE.
DEMAND_UPSERT_SQL = """
WITH need AS (
    SELECT t.id AS product_id FROM unnest(%(ids)s::bigint[]) AS t(id)
),
bounds AS (
    SELECT %(today)s::date - (%(window)s::int + %(backtest)s::int) AS first_day,
           ((%(today)s::date - (%(window)s::int + %(backtest)s::int))::timestamp AT TIME ZONE %(tz)s) AS since,
           (%(today)s::date::timestamp AT TIME ZONE %(tz)s) AS until
),
opening AS (
    SELECT n.product_id, last.on_hand_after
    FROM need n CROSS JOIN bounds b
    CROSS JOIN LATERAL (
        SELECT m.on_hand_after FROM inventory_stockmovement m
        WHERE m.product_id = n.product_id AND m.location_id = %(location_id)s AND m.created_at < b.since
        ORDER BY m.created_at DESC, m.id DESC LIMIT 1
    ) AS last
),
-- Per product, the days that have ledger rows: units sold and the closing quantity. Each product's rows
-- are read through its own (product, created_at) index range, newest first within each day (the sorted
-- subquery), so the day's closing quantity is the first element without a per-group ORDER BY sort.
moves AS (
    SELECT n.product_id, d.day, d.sold, d.closing
    FROM need n CROSS JOIN bounds b
    CROSS JOIN LATERAL (
        SELECT m.day, COALESCE(SUM(-m.quantity) FILTER (WHERE m.kind = 'sale'), 0) AS sold,
               (array_agg(m.on_hand_after))[1] AS closing
        FROM (SELECT (m.created_at AT TIME ZONE %(tz)s)::date AS day, m.kind, m.quantity, m.on_hand_after
              FROM inventory_stockmovement m
              WHERE m.product_id = n.product_id AND m.location_id = %(location_id)s
                AND m.created_at >= b.since AND m.created_at < b.until
              ORDER BY 1, m.created_at DESC, m.id DESC) AS m
        GROUP BY 1
    ) AS d
),
-- Each day with ledger rows starts a run of days that lasts until the next such day (today ends the
-- last run); the other days of a run sell nothing and keep its closing quantity. A run before the
-- window's first day holds the opening quantity (0 with no earlier row). ``prev`` is the closing of
-- the run before, i.e. the quantity the run's first day began with.
runs AS (
    SELECT r.product_id, r.day, r.sold, r.closing,
           LAG(r.closing) OVER w AS prev, COALESCE(LEAD(r.day) OVER w, %(today)s::date) AS next_day
    FROM (SELECT product_id, day, sold, closing FROM moves
          UNION ALL
          SELECT n.product_id, b.first_day - 1, 0, COALESCE(o.on_hand_after, 0)
          FROM need n CROSS JOIN bounds b LEFT JOIN opening o ON o.product_id = n.product_id) AS r
    WINDOW w AS (PARTITION BY r.product_id ORDER BY r.day)
),
-- One row per product and day of the window: the runs' first days, then their other days (generated
-- only where a run is longer than a day, so a product selling every day costs no generate_series).
daily AS (
    SELECT r.product_id, r.day, r.sold::float8 AS sold, EXTRACT(ISODOW FROM r.day)::int AS dow,
           (r.closing > 0 AND r.prev > 0) AS observed
    FROM runs r CROSS JOIN bounds b
    WHERE r.day >= b.first_day
    UNION ALL
    SELECT r.product_id, r.day + g.i, 0::float8, EXTRACT(ISODOW FROM r.day + g.i)::int, r.closing > 0
    FROM runs r CROSS JOIN bounds b
    CROSS JOIN LATERAL generate_series(GREATEST(b.first_day - r.day, 1), r.next_day - r.day - 1) AS g(i)
    WHERE r.next_day > r.day + 1
),
origins AS (
    SELECT * FROM (VALUES (0, %(today)s::date), (1, %(today)s::date - %(backtest)s::int)) AS o(k, origin)
),
-- Per weekday of each fit (k 0: the estimate, k 1: the same fit ``backtest`` days earlier): units,
-- observed days, and the smoothing weights w = (1 - alpha)^age summed with and without the units, so
-- the level Σ w·sold / Σ w·factor is taken from seven rows per fit instead of one per day.
dow_stats AS (
    SELECT d.product_id, o.k, d.dow, SUM(d.sold) AS s, COUNT(*) AS n,
           SUM(x.w * d.sold) AS ws, SUM(x.w) AS w
    FROM daily d JOIN origins o ON d.day >= o.origin - %(window)s::int AND d.day < o.origin
    CROSS JOIN LATERAL (SELECT power(1 - %(alpha)s::float8, o.origin - 1 - d.day) AS w) AS x
    WHERE d.observed
    GROUP BY 1, 2, 3
),
tot AS (
    SELECT product_id, k, SUM(s) / SUM(n) AS mean, SUM(n)::int AS n FROM dow_stats GROUP BY 1, 2
),
raw_factors AS (
    SELECT t.product_id, t.k, g.dow,
           CASE WHEN t.mean > 0
                THEN (COALESCE(ds.s, 0) + %(prior)s::float8 * t.mean) / (COALESCE(ds.n, 0) + %(prior)s::float8) / t.mean
                ELSE 1.0 END AS f
    FROM tot t CROSS JOIN generate_series(1, 7) AS g(dow)
    LEFT JOIN dow_stats ds ON ds.product_id = t.product_id AND ds.k = t.k AND ds.dow = g.dow
),
factors AS (
    SELECT product_id, k, dow, f * 7 / SUM(f) OVER (PARTITION BY product_id, k) AS f FROM raw_factors
),
levels AS (
    SELECT ds.product_id, ds.k, SUM(ds.ws) / NULLIF(SUM(ds.w * fa.f), 0) AS rate
    FROM dow_stats ds JOIN factors fa ON fa.product_id = ds.product_id AND fa.k = ds.k AND fa.dow = ds.dow
    GROUP BY 1, 2
),
errors AS (
    SELECT d.product_id, AVG(ABS(d.sold - l.rate * fa.f)) AS mae
    FROM daily d
    JOIN levels l ON l.product_id = d.product_id AND l.k = 1
    JOIN factors fa ON fa.product_id = d.product_id AND fa.k = 1 AND fa.dow = d.dow
    WHERE d.observed AND d.day >= %(today)s::date - %(backtest)s::int
    GROUP BY 1
),
fitted AS (
    SELECT product_id, array_agg(f ORDER BY dow) AS factors FROM factors WHERE k = 0 GROUP BY 1
),
window_days AS (
    SELECT product_id, COUNT(*) FILTER (WHERE NOT observed)::int AS censored
    FROM daily WHERE day >= %(today)s::date - %(window)s::int GROUP BY 1
),
up AS (
    INSERT INTO projections_demandestimate AS e (
        product_id, location_id, as_of, daily_rate, weekday_factors, mae, history_days, censored_days, basis,
        computed_at)
    SELECT n.product_id, %(location_id)s, %(today)s::date, COALESCE(l.rate, 0), COALESCE(fi.factors, '{1,1,1,1,1,1,1}'),
           er.mae, COALESCE(t.n, 0), COALESCE(wd.censored, 0),
           CASE WHEN COALESCE(t.n, 0) >= %(min_history)s::int THEN 'own' ELSE 'short' END, %(now)s::timestamptz
    FROM need n
    LEFT JOIN levels l ON l.product_id = n.product_id AND l.k = 0
    LEFT JOIN tot t ON t.product_id = n.product_id AND t.k = 0
    LEFT JOIN fitted fi ON fi.product_id = n.product_id
    LEFT JOIN errors er ON er.product_id = n.product_id
    LEFT JOIN window_days wd ON wd.product_id = n.product_id
    ORDER BY n.product_id
    ON CONFLICT (product_id, location_id) DO UPDATE SET
        as_of = EXCLUDED.as_of, daily_rate = EXCLUDED.daily_rate, weekday_factors = EXCLUDED.weekday_factors,
        mae = EXCLUDED.mae, history_days = EXCLUDED.history_days, censored_days = EXCLUDED.censored_days,
        basis = EXCLUDED.basis, computed_at = EXCLUDED.computed_at
    WHERE e.as_of < EXCLUDED.as_of
    RETURNING e.product_id, e.basis
)
SELECT product_id FROM up WHERE basis = 'short' ORDER BY product_id
"""

# Products with too little history (``ids``) take their category's profile: the mean weekday factors
# and mean rate of the category's products estimated from their own sales at the same location (a dark
# store's pace is not a store's). The rate is blended by
# history: h observed days of their own count h / min_history. A category with no such product
# leaves the row on its own (short) estimate.
DEMAND_CATEGORY_SQL = """
WITH short AS (
    SELECT e.product_id, e.daily_rate, LEAST(e.history_days, %(min_history)s::int) AS h, p.category
    FROM projections_demandestimate e JOIN inventory_product p ON p.id = e.product_id
    WHERE e.product_id = ANY(%(ids)s::bigint[]) AND e.location_id = %(location_id)s AND e.basis = 'short'
),
peers AS (
    SELECT p.category, e.product_id, e.daily_rate, e.weekday_factors
    FROM projections_demandestimate e JOIN inventory_product p ON p.id = e.product_id
    WHERE e.basis = 'own' AND e.location_id = %(location_id)s AND p.category IN (SELECT category FROM short)
),
rates AS (SELECT category, AVG(daily_rate) AS rate FROM peers GROUP BY 1),
profiles AS (
    SELECT category, array_agg(f ORDER BY dow) AS factors
    FROM (SELECT pe.category, u.dow, AVG(u.f) AS f
          FROM peers pe CROSS JOIN unnest(pe.weekday_factors) WITH ORDINALITY AS u(f, dow)
          GROUP BY 1, 2) AS per_day
    GROUP BY 1
)
UPDATE projections_demandestimate e
SET daily_rate = (s.h * s.daily_rate + (%(min_history)s::int - s.h) * r.rate) / %(min_history)s::int,
    weekday_factors = pr.factors, basis = 'category'
FROM short s JOIN rates r ON r.category = s.category JOIN profiles pr ON pr.category = s.category
WHERE e.product_id = s.product_id AND e.location_id = %(location_id)s
"""

# ---------------------------------------------------------------------------------------------
# Reorder suggestions, right after the summaries of the same products (``ids``) at the same location, from
# their rows for ``today``: a location orders for its own stock, planned movements and demand, with the
# product's supply terms. Parameters: ``ids``, ``location_id``, ``today``, ``tz``, ``review`` (days between
# orders), ``z`` (the normal quantile of the service level), ``now``. The cover period is lead time + review period; its demand is
# the planned outbound plus the expected outbound of those days (the rate for days past the horizon);
# safety stock is z · 1.25 · MAE · √cover (1.25 · MAE estimates the standard deviation of a day's error).
# A product needing nothing (or inactive) loses its open suggestion; one dismissed today gets none until tomorrow.
# Returns the suggestions that are new or whose quantity changed.
# The partial unique index (one open suggestion per product and location) is the conflict target, so concurrent
# recomputes update the open row and never add a second.
REORDER_SQL = """
WITH terms AS (
    SELECT t.product_id, t.lead_time_days, t.pack_size, t.min_order, t.max_order,
           t.lead_time_days + %(review)s::int AS cover,
           ps.start_balance AS available, ps.horizon_days, ps.demand_rate,
           COALESCE(ps.daily_outbound, '{}') AS outbound, COALESCE(ps.daily_expected_outbound, '{}') AS expected,
           COALESCE(de.mae, 0) AS mae, pr.active
    FROM projections_supplyterms t
    JOIN inventory_product pr ON pr.id = t.product_id
    JOIN projections_projectionsummary ps
      ON ps.product_id = t.product_id AND ps.location_id = %(location_id)s AND ps.as_of = %(today)s::date
    LEFT JOIN projections_demandestimate de ON de.product_id = t.product_id AND de.location_id = %(location_id)s
    WHERE t.product_id = ANY(%(ids)s::bigint[])
),
calc AS (
    SELECT t.*,
           COALESCE((SELECT SUM(COALESCE(u.o, 0) + COALESCE(u.e, 0))
                     FROM unnest(t.outbound[1:t.cover], t.expected[1:t.cover]) AS u(o, e)), 0)
               + t.demand_rate * GREATEST(t.cover - t.horizon_days, 0) AS demand,
           %(z)s::float8 * 1.25 * t.mae * sqrt(t.cover) AS safety,
           (SELECT COALESCE(SUM(m.quantity), 0) FROM projections_plannedmovement m
             WHERE m.product_id = t.product_id AND m.location_id = %(location_id)s AND m.status = 'open'
               AND m.firmness = 'firm' AND m.direction = 'in' AND m.date < %(today)s::date + t.cover) AS firm_inbound,
           EXISTS (SELECT 1 FROM projections_reordersuggestion r
                    WHERE r.product_id = t.product_id AND r.location_id = %(location_id)s AND r.state = 'dismissed'
                      AND r.decided_at >= (%(today)s::date::timestamp AT TIME ZONE %(tz)s)) AS dismissed_today
    FROM terms t
),
sized AS (
    SELECT c.*,
           CASE WHEN c.demand + c.safety - c.available - c.firm_inbound <= 0 OR c.dismissed_today OR NOT c.active
                THEN 0
                ELSE LEAST(CEIL(GREATEST(c.demand + c.safety - c.available - c.firm_inbound, c.min_order)
                                / c.pack_size) * c.pack_size,
                           c.max_order / c.pack_size * c.pack_size)
           END::bigint AS quantity
    FROM calc c
),
before AS (
    SELECT r.product_id, r.quantity FROM projections_reordersuggestion r
    WHERE r.product_id = ANY(%(ids)s::bigint[]) AND r.location_id = %(location_id)s AND r.state = 'open'
),
gone AS (
    DELETE FROM projections_reordersuggestion r USING sized s
    WHERE r.product_id = s.product_id AND r.location_id = %(location_id)s AND r.state = 'open' AND s.quantity <= 0
    RETURNING r.id
),
up AS (
INSERT INTO projections_reordersuggestion AS r (
    product_id, location_id, state, quantity, demand, safety_stock, available, firm_inbound, cover_days, arrival_date,
    decided_by, created_at, updated_at)
SELECT product_id, %(location_id)s, 'open', quantity, round(demand::numeric, 2), round(safety::numeric, 2), available,
       firm_inbound,
       cover, %(today)s::date + lead_time_days, '', %(now)s::timestamptz, %(now)s::timestamptz
FROM sized WHERE quantity > 0
ORDER BY product_id
ON CONFLICT (product_id, location_id) WHERE state = 'open' DO UPDATE SET
    quantity = EXCLUDED.quantity, demand = EXCLUDED.demand, safety_stock = EXCLUDED.safety_stock,
    available = EXCLUDED.available, firm_inbound = EXCLUDED.firm_inbound, cover_days = EXCLUDED.cover_days,
    arrival_date = EXCLUDED.arrival_date, updated_at = EXCLUDED.updated_at
RETURNING r.*
)
-- The suggestions new or with another quantity (the reorder.suggested webhook).
SELECT up.id, p.code, p.name, l.code AS location, up.quantity, up.arrival_date, up.demand, up.safety_stock,
       up.available,
       up.firm_inbound, up.cover_days
FROM up JOIN inventory_product p ON p.id = up.product_id JOIN inventory_location l ON l.id = up.location_id
LEFT JOIN before b ON b.product_id = up.product_id
WHERE b.quantity IS DISTINCT FROM up.quantity
ORDER BY up.id
"""
