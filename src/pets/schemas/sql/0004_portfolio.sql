-- Positions, P&L and risk state.

-- The current position per bot/market/asset (upsert; a row with an older ts never overwrites).
CREATE TABLE positions (
    bot_id       text NOT NULL,
    market       text NOT NULL,
    asset_id     text NOT NULL,
    qty          numeric NOT NULL,
    avg_price    numeric NOT NULL,
    cost         numeric NOT NULL,
    realized_pnl numeric NOT NULL,
    ts           timestamptz NOT NULL,
    PRIMARY KEY (bot_id, market, asset_id)
);

-- Every position change (same columns and order as positions).
CREATE TABLE position_history (
    bot_id       text NOT NULL,
    market       text NOT NULL,
    asset_id     text NOT NULL,
    qty          numeric NOT NULL,
    avg_price    numeric NOT NULL,
    cost         numeric NOT NULL,
    realized_pnl numeric NOT NULL,
    ts           timestamptz NOT NULL,
    UNIQUE (bot_id, market, asset_id, ts)
);
CREATE INDEX position_history_ts_brin ON position_history USING brin (ts);

CREATE TABLE pnl_snapshots (
    ts             timestamptz NOT NULL,
    bot_id         text NOT NULL,  -- "portfolio" for the total
    cash           numeric NOT NULL,
    equity         numeric NOT NULL,
    realized_pnl   numeric NOT NULL,
    unrealized_pnl numeric NOT NULL,
    fees           numeric NOT NULL,
    rebates        numeric NOT NULL,
    exposure       numeric NOT NULL,
    open_orders    integer NOT NULL,
    trades         integer NOT NULL,
    wins           integer NOT NULL,
    losses         integer NOT NULL,
    max_drawdown   numeric NOT NULL,
    UNIQUE (bot_id, ts)
);
CREATE INDEX pnl_snapshots_ts_brin ON pnl_snapshots USING brin (ts);

-- Risk alerts: circuit breakers, halts, limit breaches, resumes.
CREATE TABLE risk_events (
    ts       timestamptz NOT NULL,
    alert_id text NOT NULL,
    kind     text NOT NULL,
    bot_id   text NOT NULL,  -- "*" for the portfolio
    rule     text NOT NULL,
    message  text NOT NULL,
    severity text NOT NULL,
    until_ts timestamptz,
    UNIQUE (alert_id, ts)
);
CREATE INDEX risk_events_ts_brin ON risk_events USING brin (ts);
