-- Views for Metabase (ops/metabase/, `pets metabase provision`, docs/operations.md): plain columns with
-- stable names over the trading tables, so questions survive changes of the tables under them.
-- Money stays numeric (exact); ratios are 0-1.

-- The price zones of config/zone_framework.yaml ([lower, upper), the last one includes 1), seeded
-- here and rewritten from the file by `pets metabase provision`.
CREATE TABLE price_zones (
    zone  integer PRIMARY KEY,
    name  text NOT NULL,
    lower numeric NOT NULL,
    upper numeric NOT NULL
);
INSERT INTO price_zones (zone, name, lower, upper) VALUES
    (1, 'longshot', 0, 0.20),
    (2, 'underdog', 0.20, 0.40),
    (3, 'coin_flip', 0.40, 0.60),
    (4, 'favourite', 0.60, 0.80),
    (5, 'near_certain', 0.80, 1.00);

-- The zone of a price of the token bought.
CREATE FUNCTION price_zone(price numeric) RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT zone FROM price_zones
    WHERE price >= lower AND (price < upper OR (upper = (SELECT max(upper) FROM price_zones) AND price <= upper))
    ORDER BY zone LIMIT 1
$$;

-- P&L per bot (and "portfolio") per UTC day, from pnl_snapshots: the day's last equity minus its first
-- (bot_performance_daily's definition); trades are fills during the day (the snapshots count them
-- cumulatively); max_drawdown is the executor's running figure at the day's end.
CREATE VIEW mb_bot_pnl_daily AS
SELECT day, bot_id, start_equity, end_equity, end_equity - start_equity AS pnl,
       realized_pnl, unrealized_pnl, fees, rebates, end_trades - start_trades AS trades,
       wins, losses, max_drawdown, snapshots
FROM (
    SELECT (ts AT TIME ZONE 'UTC')::date AS day,
           bot_id,
           (array_agg(equity ORDER BY ts))[1] AS start_equity,
           (array_agg(equity ORDER BY ts DESC))[1] AS end_equity,
           (array_agg(realized_pnl ORDER BY ts DESC))[1] AS realized_pnl,
           (array_agg(unrealized_pnl ORDER BY ts DESC))[1] AS unrealized_pnl,
           (array_agg(fees ORDER BY ts DESC))[1] AS fees,
           (array_agg(rebates ORDER BY ts DESC))[1] AS rebates,
           (array_agg(trades ORDER BY ts))[1] AS start_trades,
           (array_agg(trades ORDER BY ts DESC))[1] AS end_trades,
           (array_agg(wins ORDER BY ts DESC))[1] AS wins,
           (array_agg(losses ORDER BY ts DESC))[1] AS losses,
           (array_agg(max_drawdown ORDER BY ts DESC))[1] AS max_drawdown,
           count(*) AS snapshots
    FROM pnl_snapshots
    GROUP BY 1, 2
) daily;

-- Open positions with their zone (of the average entry price), the market's question and the latest
-- mid of the token: value and unrealized P&L at that mid.
CREATE VIEW mb_positions AS
SELECT p.bot_id, p.market, m.question, m.category, p.asset_id, p.qty, p.avg_price, p.cost,
       price_zone(p.avg_price) AS zone, z.name AS zone_name, tob.mid,
       p.qty * tob.mid AS value, p.qty * (tob.mid - p.avg_price) AS unrealized_pnl,
       p.realized_pnl, p.ts AS updated_at
FROM positions p
LEFT JOIN markets m ON m.condition_id = p.market
LEFT JOIN price_zones z ON z.zone = price_zone(p.avg_price)
LEFT JOIN LATERAL (
    SELECT t.mid FROM top_of_book t WHERE t.asset_id = p.asset_id ORDER BY t.ts DESC LIMIT 1
) tob ON true
WHERE p.qty <> 0;

-- Every fill (a trade: each partial or full execution) with its notional and the zone of its price.
CREATE VIEW mb_fills AS
SELECT r.ts, r.bot_id, r.market, m.question, r.asset_id, r.side, r.last_qty AS qty, r.last_px AS price,
       r.last_qty * r.last_px AS notional, r.fee, r.rebate, r.liquidity,
       price_zone(r.last_px) AS zone, r.client_order_id, r.report_id, r.trade_id
FROM execution_reports r
LEFT JOIN markets m ON m.condition_id = r.market
WHERE r.last_qty > 0;

-- Denied intents per UTC day, bot and rule (risk's machine code) with an example reason.
CREATE VIEW mb_denials_by_reason AS
SELECT (ts AT TIME ZONE 'UTC')::date AS day, bot_id, rule, count(*) AS denials,
       min(reason) AS example_reason
FROM order_denials
GROUP BY 1, 2, 3;

-- Risk events: circuit breakers, halts, limit breaches, resumes.
CREATE VIEW mb_risk_events AS
SELECT ts, alert_id, bot_id, kind, rule, severity, message, until_ts,
       kind IN ('circuit_breaker', 'daily_loss_halt', 'bot_drawdown_halt', 'emergency_halt') AS is_breaker
FROM risk_events;
