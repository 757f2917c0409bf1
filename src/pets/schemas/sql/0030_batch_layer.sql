-- Tables of the Dagster batch layer (pets.assets). Money numeric (exact); statistics double.

-- Trades with wallets from the Data API, chain fills and recorded files, normalized; the input of
-- the whale ranking. Append-only: a trade seen again (same source and id) is ignored.
CREATE TABLE wallet_trades (
    ts       timestamptz NOT NULL,
    source   text NOT NULL,      -- data_api, chain, or the recorded file it came from
    trade_id text NOT NULL,      -- unique within its source
    wallet   text NOT NULL,
    market   text NOT NULL,      -- condition id when the market universe knows it
    outcome  text NOT NULL,
    side     text NOT NULL,      -- BUY / SELL
    shares   numeric NOT NULL,
    usdc     numeric NOT NULL,
    price    numeric,            -- NULL for zero-size trades of the AMM era
    UNIQUE (source, trade_id)
);
CREATE INDEX wallet_trades_market_idx ON wallet_trades (market);
CREATE INDEX wallet_trades_wallet_idx ON wallet_trades (wallet, ts);

-- Per bot and day from pnl_snapshots; a recomputed day replaces the stored one.
CREATE TABLE bot_performance_daily (
    day          date NOT NULL,
    bot_id       text NOT NULL,
    snapshots    integer NOT NULL,
    trades       integer NOT NULL,   -- trades closed during the day
    wins         integer NOT NULL,
    losses       integer NOT NULL,
    win_rate     numeric,            -- NULL when no trade closed
    start_equity numeric NOT NULL,
    end_equity   numeric NOT NULL,
    pnl          numeric NOT NULL,   -- end equity - start equity
    roi          numeric,            -- pnl / start equity; NULL when start equity is 0
    sharpe       double precision,   -- of snapshot-to-snapshot equity returns, scaled to the day
    max_drawdown numeric NOT NULL,   -- largest fall from a running equity peak during the day, USDC
    PRIMARY KEY (day, bot_id)
);
