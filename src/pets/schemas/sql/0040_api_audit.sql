-- Every control action asked of the control API (pets api serve): who, when, what, why, and what
-- became of it. An accepted request is recorded before its command is sent ("requested"), then
-- "sent" (with the command id) or "failed: <why>"; a refused one once ("refused: <why>").
CREATE TABLE api_audit (
    ts         timestamptz NOT NULL,
    actor      text NOT NULL,         -- the operator named by the request (X-Pets-Operator), else "api"
    client     text NOT NULL,         -- the caller's address
    action     text NOT NULL,         -- start, stop, pause, resume, halt, resume_trading
    bot_id     text NOT NULL,         -- "*" for all bots
    reason     text NOT NULL,
    outcome    text NOT NULL,         -- requested | sent | failed: <why> | refused: <why>
    command_id text                   -- the ControlCommand sent on bot.control (NULL when refused)
);
CREATE INDEX api_audit_ts_idx ON api_audit (ts);
