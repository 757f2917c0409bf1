-- requires: timescaledb
-- Applied only where the timescaledb extension is available (pg_available_extensions); elsewhere
-- the runner records it as skipped and applies it once the extension appears (tables already
-- holding rows are migrated into chunks). Turns the time-series tables of 0002-0005 into
-- hypertables, compresses and ages out raw market data, and keeps a 1-minute top-of-book rollup.

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Market data: one-day chunks. create_default_indexes => false: the unique keys and BRIN
-- indexes from the plain-path files already serve time queries.
SELECT create_hypertable('book_deltas', 'ts', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('top_of_book', 'ts', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('trades', 'ts', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);

-- Order flow, portfolio and alternative data: smaller, one-week chunks. news_items is keyed by
-- item id alone (no ts in its unique key) and stays a plain table.
SELECT create_hypertable('signals', 'ts', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('order_intents', 'ts', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('approved_orders', 'ts', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('order_denials', 'ts', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('execution_reports', 'ts', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('position_history', 'ts', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('pnl_snapshots', 'ts', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('risk_events', 'ts', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('esports_events', 'ts', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);
SELECT create_hypertable('wallet_fills', 'ts', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false, if_not_exists => true, migrate_data => true);

-- Compression of raw market data after a week, segmented by token so per-asset scans stay cheap;
-- every unique-key column is a segmentby or orderby column so uniqueness is still checked on
-- compressed chunks (re-delivered rows stay ignored).
ALTER TABLE book_deltas SET (timescaledb.compress, timescaledb.compress_segmentby = 'asset_id',
                             timescaledb.compress_orderby = 'ts DESC, frame_seq DESC, side, price');
ALTER TABLE top_of_book SET (timescaledb.compress, timescaledb.compress_segmentby = 'asset_id',
                             timescaledb.compress_orderby = 'ts DESC, seq DESC');
ALTER TABLE trades SET (timescaledb.compress, timescaledb.compress_segmentby = 'asset_id',
                        timescaledb.compress_orderby = 'ts DESC, tx_hash, side, price, size');
SELECT add_compression_policy('book_deltas', INTERVAL '7 days', if_not_exists => true);
SELECT add_compression_policy('top_of_book', INTERVAL '7 days', if_not_exists => true);
SELECT add_compression_policy('trades', INTERVAL '7 days', if_not_exists => true);

-- Retention: raw book deltas and top of book for 180 days (the 1-minute rollup below is kept);
-- trades, orders, fills and P&L are the audit trail and are never dropped.
SELECT add_retention_policy('book_deltas', INTERVAL '180 days', if_not_exists => true);
SELECT add_retention_policy('top_of_book', INTERVAL '180 days', if_not_exists => true);

-- 1-minute bars of the mid (OHLC) with the last best bid/ask per token. WITH NO DATA: creating
-- a continuous aggregate WITH DATA cannot run inside the migration's transaction; the refresh
-- policy fills it.
CREATE MATERIALIZED VIEW top_of_book_1m
WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket,
       asset_id,
       first(mid, ts)      AS open,
       max(mid)            AS high,
       min(mid)            AS low,
       last(mid, ts)       AS close,
       last(best_bid, ts)  AS best_bid,
       last(best_ask, ts)  AS best_ask,
       count(*)            AS updates
FROM top_of_book
GROUP BY time_bucket(INTERVAL '1 minute', ts), asset_id
WITH NO DATA;

SELECT add_continuous_aggregate_policy('top_of_book_1m',
                                       start_offset => INTERVAL '1 day',
                                       end_offset => INTERVAL '1 minute',
                                       schedule_interval => INTERVAL '1 minute',
                                       if_not_exists => true);
