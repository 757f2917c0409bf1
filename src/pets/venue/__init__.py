"""The venue's facts, as Polymarket's CLOB states them: price and size grids, integer units, the fee
formula and rates, the L2 order book. A leaf package: every layer may import it (bots, risk,
execution, pipelines, flows), and it imports nothing of ours but `pets.schemas` (tests/test_layering.py).
"""
