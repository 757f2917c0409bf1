-- The order flow: bot intents, the risk verdict, execution reports. Append-only; the unique keys
-- hold the deterministic ids the bots and the executor produce, plus ts.

CREATE TABLE order_intents (
    ts              timestamptz NOT NULL,  -- created_ns
    client_order_id text NOT NULL,
    bot_id          text NOT NULL,
    strategy_type   text NOT NULL,
    action          text NOT NULL,
    market          text NOT NULL,
    asset_id        text NOT NULL,
    side            text NOT NULL,
    price           numeric NOT NULL,
    size            numeric NOT NULL,
    order_type      text NOT NULL,
    post_only       boolean NOT NULL,
    tick_size       numeric NOT NULL,
    min_order_size  numeric NOT NULL,
    neg_risk        boolean NOT NULL,
    category        text NOT NULL,
    probability     numeric,
    group_id        text,
    replaces        text,
    source_ts       timestamptz NOT NULL,  -- venue time of the triggering frame
    expires_at      timestamptz,
    UNIQUE (client_order_id, action, ts)
);
CREATE INDEX order_intents_ts_brin ON order_intents USING brin (ts);
CREATE INDEX order_intents_bot_idx ON order_intents (bot_id, ts);

CREATE TABLE approved_orders (
    ts              timestamptz NOT NULL,  -- approved_ns
    client_order_id text NOT NULL,
    sequence        bigint NOT NULL,
    bot_id          text NOT NULL,
    strategy_type   text NOT NULL,
    action          text NOT NULL,
    market          text NOT NULL,
    asset_id        text NOT NULL,
    side            text NOT NULL,
    price           numeric NOT NULL,
    requested_size  numeric NOT NULL,      -- the intent's size
    size            numeric NOT NULL,      -- after risk sizing
    order_type      text NOT NULL,
    post_only       boolean NOT NULL,
    category        text NOT NULL,
    group_id        text,
    UNIQUE (client_order_id, action, ts)
);
CREATE INDEX approved_orders_ts_brin ON approved_orders USING brin (ts);

CREATE TABLE order_denials (
    ts              timestamptz NOT NULL,  -- denied_ns
    client_order_id text NOT NULL,
    bot_id          text NOT NULL,
    strategy_type   text NOT NULL,
    action          text NOT NULL,
    market          text NOT NULL,
    asset_id        text NOT NULL,
    side            text NOT NULL,
    price           numeric NOT NULL,
    size            numeric NOT NULL,
    rule            text NOT NULL,         -- machine code: zone, kelly, stale_book, ...
    reason          text NOT NULL,         -- human readable
    UNIQUE (client_order_id, action, ts)
);
CREATE INDEX order_denials_ts_brin ON order_denials USING brin (ts);
CREATE INDEX order_denials_rule_idx ON order_denials (rule, ts);

CREATE TABLE execution_reports (
    ts              timestamptz NOT NULL,  -- ts_ns
    report_id       text NOT NULL,
    client_order_id text NOT NULL,
    venue_order_id  text,
    bot_id          text NOT NULL,
    market          text NOT NULL,
    asset_id        text NOT NULL,
    side            text NOT NULL,
    kind            text NOT NULL,         -- ack, reject, partial_fill, fill, cancel, expire
    order_price     numeric NOT NULL,
    order_size      numeric NOT NULL,
    last_qty        numeric NOT NULL,
    last_px         numeric,
    cum_qty         numeric NOT NULL,
    leaves_qty      numeric NOT NULL,
    fee             numeric NOT NULL,
    rebate          numeric NOT NULL,
    liquidity       text,
    reason          text,
    trade_id        text,
    source_ts       timestamptz NOT NULL,
    UNIQUE (report_id, ts)
);
CREATE INDEX execution_reports_ts_brin ON execution_reports USING brin (ts);
CREATE INDEX execution_reports_order_idx ON execution_reports (client_order_id);
CREATE INDEX execution_reports_bot_idx ON execution_reports (bot_id, ts);
