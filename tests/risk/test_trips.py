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


def _round_trip(config: PetsConfig, sell_price: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Buy 20 yes1 at 0.50 and sell them at `sell_price`, both resting (no fee): (wins, losses) as risk
    and as the portfolio count them."""
    engine = engine_with_books(config)
    portfolio = Portfolio(D(10_000), {"bot_01": D(1200)})
    portfolio.on_market(market("m1", ("yes1", "no1")), 0)
    buy = intent(price="0.50", size="20", post_only=True)
    sell = intent(side="SELL", price=sell_price, size="20", post_only=True)
    for order in (buy, sell):
        engine.on_intent(order, order.source_ts_ms * 1_000_000)
        fill = report(order, "fill", "20", str(order.price))
        engine.on_execution_report(fill)
        portfolio.on_report(fill)
    book, account = engine.ledger.bot("bot_01"), portfolio.accounts["bot_01"]
    return (book.trips.wins, book.trips.losses), (account.trips.wins, account.trips.losses)


def test_risk_and_the_portfolio_count_the_same_round_trips(config: PetsConfig) -> None:
    assert _round_trip(config, "0.52") == ((1, 0), (1, 0))  # +0.40
    assert _round_trip(config, "0.48") == ((0, 1), (0, 1))  # -0.40
    # a scratch trip (0.00) is no win for either: risk used to count it as one, the portfolio not
    assert _round_trip(config, "0.50") == ((0, 1), (0, 1))
