-- Alternative data and the signals derived from it.

CREATE TABLE signals (
    ts          timestamptz NOT NULL,
    signal_id   text NOT NULL,
    source      text NOT NULL,  -- news, esports, whale, model
    market      text NOT NULL,
    asset_id    text,
    side        text,
    probability numeric,
    confidence  numeric NOT NULL,
    rationale   text NOT NULL,
    expires_at  timestamptz,
    UNIQUE (signal_id, ts)
);
CREATE INDEX signals_ts_brin ON signals USING brin (ts);
CREATE INDEX signals_market_idx ON signals (market, ts);

-- Unique by item id alone (a re-polled feed gives the same item a new received time), so this
-- one stays a plain table under TimescaleDB too.
CREATE TABLE news_items (
    ts        timestamptz NOT NULL,  -- received
    item_id   text NOT NULL,
    source    text NOT NULL,
    feed_url  text NOT NULL,
    title     text NOT NULL,
    summary   text NOT NULL,
    link      text NOT NULL,
    published timestamptz,
    tags      text[] NOT NULL DEFAULT '{}',
    UNIQUE (item_id)
);
CREATE INDEX news_items_ts_idx ON news_items (ts);

CREATE TABLE esports_events (
    ts           timestamptz NOT NULL,  -- received
    event_id     text NOT NULL,
    match_id     text NOT NULL,
    game         text NOT NULL,
    event_type   text NOT NULL,
    game_time_ms bigint NOT NULL,
    team         text,
    payload      jsonb NOT NULL,
    UNIQUE (event_id, ts)
);
CREATE INDEX esports_events_ts_brin ON esports_events USING brin (ts);
CREATE INDEX esports_events_match_idx ON esports_events (match_id, game_time_ms);

-- OrderFilled logs seen from a wallet's side (a log can give a maker and a taker row).
CREATE TABLE wallet_fills (
    ts           timestamptz NOT NULL,  -- block time
    tx_hash      text NOT NULL,
    log_index    integer NOT NULL,
    block_number bigint NOT NULL,
    exchange     text NOT NULL,
    wallet       text NOT NULL,
    counterparty text,
    asset_id     text NOT NULL,
    side         text NOT NULL,
    price        numeric NOT NULL,
    shares       numeric NOT NULL,
    usdc         numeric NOT NULL,
    fee          numeric NOT NULL,
    UNIQUE (tx_hash, log_index, wallet, ts)
);
CREATE INDEX wallet_fills_ts_brin ON wallet_fills USING brin (ts);
CREATE INDEX wallet_fills_wallet_idx ON wallet_fills (wallet, ts);
