-- Market data from the venue's market channel. Every table has a UNIQUE key that includes ts
-- (TimescaleDB needs the time column in unique indexes) so re-delivered rows are ignored.
-- The BRIN index on ts serves time-range scans on plain PostgreSQL (rows arrive in time order).

-- One row per price level in a `book` snapshot (is_snapshot) or a `price_change`.
-- frame_seq: the frame's position in its source stream (md.book offset or recording line),
-- the same on every replay; frame_hash: the venue's book hash when it sent one.
CREATE TABLE book_deltas (
    ts          timestamptz NOT NULL,
    asset_id    text NOT NULL,
    market      text NOT NULL,
    frame_seq   bigint NOT NULL,
    frame_hash  text,
    side        text NOT NULL,   -- BUY = bid side, SELL = ask side
    price       numeric NOT NULL,
    size        numeric NOT NULL, -- new total at the level; 0 removes it
    is_snapshot boolean NOT NULL,
    UNIQUE (asset_id, ts, frame_seq, side, price)
);
CREATE INDEX book_deltas_ts_brin ON book_deltas USING brin (ts);

CREATE TABLE top_of_book (
    ts              timestamptz NOT NULL,  -- venue timestamp of the frame
    asset_id        text NOT NULL,
    market          text NOT NULL,
    best_bid        numeric,
    best_ask        numeric,
    best_bid_size   numeric,
    best_ask_size   numeric,
    mid             numeric,
    microprice      numeric,
    spread          numeric,
    imbalance       numeric,
    tick_size       numeric NOT NULL,
    stale           boolean NOT NULL,
    paired_asset_id text,
    ask_sum         numeric,
    bid_sum         numeric,
    seq             bigint NOT NULL,
    UNIQUE (asset_id, ts, seq)
);
CREATE INDEX top_of_book_ts_brin ON top_of_book USING brin (ts);

-- The venue's last_trade_price events (no trade id: the key is the whole print).
CREATE TABLE trades (
    ts           timestamptz NOT NULL,
    asset_id     text NOT NULL,
    market       text NOT NULL,
    price        numeric NOT NULL,
    size         numeric NOT NULL,
    side         text NOT NULL,  -- taker side
    fee_rate_bps numeric,
    tx_hash      text NOT NULL,
    UNIQUE (asset_id, ts, tx_hash, side, price, size)
);
CREATE INDEX trades_ts_brin ON trades USING brin (ts);
