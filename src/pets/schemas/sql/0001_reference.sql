-- Current-state and reference tables: one row per key, replaced by newer rows (upsert).
-- Times are timestamptz; prices, sizes and money numeric (exact); ids text.

CREATE TABLE markets (
    condition_id       text PRIMARY KEY,
    market_id          text,              -- Gamma id
    question           text NOT NULL,
    slug               text,
    category           text NOT NULL,
    token_ids          text[] NOT NULL,
    outcomes           text[] NOT NULL,
    neg_risk           boolean NOT NULL,
    neg_risk_market_id text,
    tick_size          numeric NOT NULL,
    min_order_size     numeric NOT NULL,
    end_date           timestamptz,
    active             boolean NOT NULL,
    closed             boolean NOT NULL,
    accepting_orders   boolean NOT NULL,
    outcome_prices     numeric[],
    winning_asset_id   text,
    fee_rate           numeric,
    ts                 timestamptz NOT NULL  -- when this state was observed; older rows never overwrite
);
CREATE INDEX markets_category_idx ON markets (category);

CREATE TABLE bot_status (
    bot_id text PRIMARY KEY,
    state  text NOT NULL,
    reason text NOT NULL DEFAULT '',
    ts     timestamptz NOT NULL  -- when the state was entered
);

CREATE TABLE whale_rankings (
    ranking_date date NOT NULL,
    rank         integer NOT NULL,
    wallet       text NOT NULL,
    pnl          numeric NOT NULL,
    volume       numeric NOT NULL,
    trades       integer NOT NULL,
    markets      integer NOT NULL,
    win_rate     numeric NOT NULL,
    roi          numeric NOT NULL,
    UNIQUE (ranking_date, wallet)
);
CREATE INDEX whale_rankings_rank_idx ON whale_rankings (ranking_date, rank);
