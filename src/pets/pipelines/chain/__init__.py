"""Whale-wallet fills from Polygon: the Polymarket exchanges' `OrderFilled` logs (docs/chain.md)."""
