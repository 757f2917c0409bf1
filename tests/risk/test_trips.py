"""Round trips (risk/trips.py), counted the same way by the risk ledger and the executor's portfolio."""

from __future__ import annotations

from decimal import Decimal as D

from risk_factories import engine_with_books, intent, market, report

from pets.execution.portfolio import Portfolio
from pets.risk.trips import RoundTrips
from pets.schemas.config import PetsConfig


def test_a_trip_closes_when_the_bot_is_flat_in_every_token_of_the_event() -> None:
    trips = RoundTrips()
    trips.add("e", D("-1.5"))  # bought YES and NO of one neg-risk event, fees paid
    trips.hold("e", "yes", D(10))
    trips.hold("e", "no", D(10))
    trips.hold("e", "yes", D(0))  # the losing leg settles at 0 ...
    trips.add("e", D(-4))
    assert trips.close("e") is None  # ... the other is still held
    trips.hold("e", "no", D(0))
    trips.add("e", D(6))
    assert trips.close("e") == D("0.5")  # -1.5 - 4 + 6
    assert trips.close("e") is None and trips.pnl == {} and trips.held == {}


def test_risk_and_the_portfolio_count_the_same_round_trips(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    portfolio = Portfolio(D(10_000), {"bot_01": D(1200)})
    portfolio.on_market(market("m1", ("yes1", "no1")), 0)
    buy = intent(price="0.51", size="20")
    engine.on_intent(buy, buy.source_ts_ms * 1_000_000)
    sell = intent(side="SELL", price="0.49", size="20")
    fills = [report(buy, "fill", "20", "0.51"), report(sell, "fill", "20", "0.49")]
    for fill in fills[:1]:
        engine.on_execution_report(fill)
        portfolio.on_report(fill)
    engine.on_intent(sell, sell.source_ts_ms * 1_000_000)
    engine.on_execution_report(fills[1])
    portfolio.on_report(fills[1])
    # bought 20 at 0.51, sold at 0.49: one losing round trip for both
    book = engine.ledger.bot("bot_01")
    account = portfolio.accounts["bot_01"]
    assert (book.wins, book.losses) == (account.wins, account.losses) == (0, 1)
