"""Market data, pure Python: venue frames -> validated events (parser) -> L2 books (order_book, market)
-> top-of-book features (features). `embedded.run_embedded` is the whole pipeline as a plain loop;
the Bytewax flow (pets.flows.market_state) composes the same parts. See docs/market_data.md.
"""
