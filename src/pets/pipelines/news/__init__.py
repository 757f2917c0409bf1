"""News: feeds -> news.item, items matched to open markets, forecasts, attention (docs/news.md)."""
