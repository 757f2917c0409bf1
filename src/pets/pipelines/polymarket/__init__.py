"""Polymarket ingestion: Gamma discovery, CLOB REST books, the market-channel WebSocket, record/replay."""
