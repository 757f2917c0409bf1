"""One position accounting (risk/lots.py) for the risk ledger and the executor's portfolio: FIFO lots,
worked by hand, and the same realized P&L, fees and round trips from the same fills on both sides."""

from __future__ import annotations

from decimal import Decimal as D

from risk_factories import intent, market, report

from pets.execution.portfolio import Portfolio
from pets.risk.ledger import Ledger, OpenOrder
from pets.risk.lots import Lots

BOT = "bot_01"


def test_lots_close_first_in_first_out_and_flip_through_zero() -> None:
    lots = Lots("m1", "yes1")
    assert lots.trade(D(100), D("0.40")) == 0 and lots.trade(D(50), D("0.46")) == 0
    # FIFO: all 100 of the first lot (+0.10 each) and 20 of the second (+0.04 each); an average cost
    # of 0.42 would have realized 120 x 0.08 = 9.60
    assert lots.trade(D(-120), D("0.50")) == D("10.80")
    assert (lots.qty, lots.cost) == (D(30), D("13.80"))  # 30 x 0.46
    # 50 sold: the 30 left close at a loss of 0.02 each, then 20 are short at 0.44
    assert lots.trade(D(-50), D("0.44")) == D("-0.60")
    assert (lots.qty, lots.cost, lots.avg_price) == (D(-20), D("-8.80"), D("0.44"))
    assert lots.trade(D(20), D("0.30")) == D("2.80")  # the short bought back 0.14 lower
    assert (lots.qty, lots.cost, list(lots.lots)) == (D(0), D(0), [])
    assert lots.realized == D("13.00")
    assert lots.trade(D(30), D("0.55")) == 0
    assert lots.settle(D(0)) == D("-16.50") and lots.qty == 0  # a losing token pays nothing


# (side, token, qty, price, fee, rebate): one bot through two round trips in market m1
FILLS = [
    ("BUY", "yes1", "100", "0.40", "0.50", "0"),
    ("BUY", "yes1", "50", "0.46", "0", "0.10"),  # resting: a maker rebate
    ("SELL", "yes1", "120", "0.50", "0.30", "0"),  # partial: 30 left
    ("SELL", "yes1", "50", "0.44", "0.20", "0"),  # through zero: 20 short
    ("BUY", "yes1", "20", "0.30", "0", "0"),  # flat: the first round trip ends
    ("BUY", "no1", "30", "0.55", "0.10", "0"),
    ("SELL", "no1", "10", "0.50", "0", "0"),  # partial: 20 left to the resolution
]


def test_the_risk_ledger_and_the_portfolio_realize_the_same_pnl_from_the_same_fills() -> None:
    ledger = Ledger(D(10_000), {BOT: D(1_000)})
    portfolio = Portfolio(D(10_000), {BOT: D(1_000)})
    portfolio.on_market(market("m1", ("yes1", "no1")), 0)
    book, account = ledger.bot(BOT), portfolio.account(BOT)
    realized_after: list[tuple[D, D]] = []
    for side, token, qty, px, fee, rebate in FILLS:
        order = intent(side=side, price=px, size=qty, asset_id=token)
        held = OpenOrder(order.client_order_id, BOT, "m1", token, side, D(px), D(qty), D(px), "sports", "m1")
        ledger.open(held)
        ledger.fill(held, D(qty), D(px), D(fee), D(rebate))
        portfolio.on_report(report(order, "fill", qty, px, fee=fee, rebate=rebate))
        realized_after.append((book.realized, account.realized))
    # by hand: 100 x (0.50-0.40) + 20 x (0.50-0.46) = 10.80; 30 x (0.44-0.46) = -0.60;
    # 20 short x (0.44-0.30) = 2.80; 10 x (0.50-0.55) = -0.50
    hand = [D(0), D(0), D("10.80"), D("10.20"), D("13.00"), D("13.00"), D("12.50")]
    assert realized_after == list(zip(hand, hand, strict=True))
    # the first trip: 13.00 - fees 1.00 + rebate 0.10 = 12.10, a win; the second is still open
    assert (book.trips.wins, book.trips.losses) == (account.trips.wins, account.trips.losses) == (1, 0)

    resolved = market("m1", ("yes1", "no1"), closed=True, winning_asset_id="yes1")
    payouts = resolved.payouts()
    assert payouts is not None
    closed = ledger.settle(payouts)
    portfolio.on_market(resolved, 0)
    # the 20 no1 left pay 0: 20 x (0 - 0.55) = -11.00; the trip: -0.50 - 11.00 - fee 0.10 = -11.60
    assert [(trip.bot_id, trip.event_key, trip.pnl) for trip in closed] == [(BOT, "m1", D("-11.60"))]
    assert book.realized == account.realized == D("12.50") - D("11.00")
    assert (book.trips.wins, book.trips.losses) == (account.trips.wins, account.trips.losses) == (1, 1)
    # fees 1.10 paid, 0.10 rebated: the bot's money is its allocation + 1.50 - 1.00
    assert book.fees == account.fees - account.rebates == D("1.00")
    assert book.equity == account.cash == D("1000.50")
    assert ledger.cash == D("10000.50") and book.holdings == {} and book.exposure == 0
