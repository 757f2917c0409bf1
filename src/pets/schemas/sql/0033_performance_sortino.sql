-- bot_performance_daily follows the run report's definitions (execution/metrics.py): Sharpe and
-- Sortino of the equity sampled every 15 minutes, annualised over 365 days (NULL under 30 intervals),
-- and the max drawdown as a fraction of the running peak.
ALTER TABLE bot_performance_daily ADD COLUMN sortino double precision;
COMMENT ON COLUMN bot_performance_daily.sharpe IS 'annualised, equity sampled every 15 min; NULL under 30 intervals';
COMMENT ON COLUMN bot_performance_daily.max_drawdown IS 'largest fall from a running equity peak, fraction of the peak';
