"""Positions, cash and P&L from fills, exact to the last digit; settlement; round trips; rebuild."""

from __future__ import annotations

from decimal import Decimal
from itertools import count

from pets.execution.portfolio import Portfolio
from pets.schemas.market_data import MarketInfo
from pets.schemas.orders import ExecutionReport

D = Decimal
_n = count(1)
YES, NO = "yes-token", "no-token"


def fill(
    side: str,
    qty: str,
    px: str,
    *,
    asset: str = YES,
    market: str = "m1",
    bot: str = "bot_01",
    fee: str = "0",
    rebate: str = "0",
    report_id: str | None = None,
    ts: int = 1,
) -> ExecutionReport:
    n = next(_n)
    return ExecutionReport(
        report_id=report_id or f"r{n}",
        client_order_id=f"o{n}",
        venue_order_id=None,
        bot_id=bot,
        market=market,
        asset_id=asset,
        side=side,  # type: ignore[arg-type]
        kind="fill",
        order_price=D(px),
        order_size=D(qty),  # type: ignore[arg-type]
        last_qty=D(qty),
        last_px=D(px),
        cum_qty=D(qty),
        fee=D(fee),
        rebate=D(rebate),
        ts_ns=ts,
        source_ts_ms=0,
    )


def portfolio() -> Portfolio:
    return Portfolio(D(10_000), {"bot_01": D(1_200), "bot_05": D(1_500)})


def market(
    condition_id: str = "m1",
    *,
    winner: str | None = None,
    group: str | None = None,
    tokens: tuple[str, str] = (YES, NO),
) -> MarketInfo:
    return MarketInfo(
        condition_id=condition_id,
        market_id=condition_id + "-id",
        question="?",
        slug="s",
        category="default",
        token_ids=tokens,
        outcomes=("Yes", "No"),
        neg_risk=group is not None,
        neg_risk_market_id=group,
        tick_size=D("0.01"),
        min_order_size=D(5),
        active=True,
        closed=winner is not None,
        accepting_orders=winner is None,
        winning_asset_id=winner,
    )


def test_fifo_lots_realize_exactly() -> None:
    p = portfolio()
    p.on_report(fill("BUY", "10", "0.40"))
    p.on_report(fill("BUY", "10", "0.55"))
    position = p.on_report(fill("SELL", "15", "0.60"))
    assert position is not None
    # 10 x (0.60 - 0.40) + 5 x (0.60 - 0.55) = 2.00 + 0.25
    assert position.realized_pnl == D("2.25")
    assert position.qty == D(5) and position.cost == D("2.75") and position.avg_price == D("0.55")
    account = p.accounts["bot_01"]
    assert account.cash == D(1_200) - D("4.00") - D("5.50") + D("9.00")


def test_fees_and_rebates_move_cash_and_net_pnl_but_not_realized() -> None:
    p = portfolio()
    p.on_report(fill("BUY", "100", "0.50", fee="0.75"))
    p.on_report(fill("SELL", "100", "0.52", rebate="0.1"))
    p.on_mark(YES, D("0.515"))
    [bot, total] = p.snapshot(10)
    assert bot.realized_pnl == D("2.00") and bot.fees == D("0.75") and bot.rebates == D("0.1")
    assert bot.cash == D(1_200) + D("2.00") - D("0.75") + D("0.1")
    assert bot.equity - D(1_200) == bot.realized_pnl + bot.unrealized_pnl - bot.fees + bot.rebates
    assert (bot.trades, bot.wins, bot.losses) == (2, 1, 0)
    assert total.bot_id == "portfolio" and total.cash == D(10_000) + D("1.35") and total.equity == total.cash


def test_unrealized_is_marked_at_mid_and_equity_adds_up() -> None:
    p = portfolio()
    p.on_report(fill("BUY", "40", "0.30"))
    p.on_report(fill("BUY", "10", "0.35", bot="bot_05"))
    p.on_mark(YES, D("0.335"))  # a mid between ticks: 5 decimals
    snaps = {s.bot_id: s for s in p.snapshot(5)}
    assert snaps["bot_01"].unrealized_pnl == D("40") * D("0.335") - D("12.00") == D("1.40")
    assert snaps["bot_05"].unrealized_pnl == D("-0.15")
    assert snaps["portfolio"].equity == D(10_000) + D("1.25")
    assert snaps["bot_01"].exposure == D("12.00")


def test_settlement_pays_the_winner_and_closes_one_round_trip() -> None:
    p = portfolio()
    p.on_market(market(), 0)
    p.on_report(fill("BUY", "100", "0.45", asset=YES, fee="0.7425"))
    p.on_report(fill("BUY", "100", "0.52", asset=NO, fee="0.7488"))
    changed = p.on_market(market(winner=YES), 99)
    assert {(c.asset_id, c.qty, c.realized_pnl) for c in changed} == {(YES, 0, D(55)), (NO, 0, D(-52))}
    [bot, _] = p.snapshot(100)
    assert bot.realized_pnl == D(3) and bot.cash == D(1_200) + D(3) - D("1.4913")
    assert (bot.wins, bot.losses) == (1, 0)  # the basket is one trip: +3 - fees > 0
    assert p.on_market(market(winner=YES), 120) == []  # settles once


def test_negative_risk_basket_is_one_trip_across_its_markets() -> None:
    p = portfolio()
    tokens = [("a-yes", "a-no"), ("b-yes", "b-no"), ("c-yes", "c-no")]
    for i, pair in enumerate(tokens):
        p.on_market(market(f"m{i}", group="event", tokens=pair), 0)
        p.on_report(fill("BUY", "10", "0.30", asset=pair[0], market=f"m{i}"))
    p.on_market(market("m0", winner="a-no", group="event", tokens=tokens[0]), 1)
    p.on_market(market("m1", winner="b-yes", group="event", tokens=tokens[1]), 1)
    assert p.accounts["bot_01"].trips.wins + p.accounts["bot_01"].trips.losses == 0  # m2 still open
    p.on_market(market("m2", winner="c-no", group="event", tokens=tokens[2]), 2)
    account = p.accounts["bot_01"]
    assert (account.trips.wins, account.trips.losses) == (1, 0) and account.realized == D(1)  # 10 - 9.00


def test_a_losing_trip_counts_as_a_loss() -> None:
    p = portfolio()
    p.on_report(fill("BUY", "10", "0.50"))
    p.on_report(fill("SELL", "10", "0.50", fee="0.01"))
    assert (p.accounts["bot_01"].trips.wins, p.accounts["bot_01"].trips.losses) == (0, 1)


def test_a_report_is_applied_once_and_rebuild_gives_the_same_books() -> None:
    reports = [
        fill("BUY", "10", "0.40", report_id="a", fee="0.072"),
        fill("BUY", "5", "0.42", report_id="b", bot="bot_05"),
        fill("SELL", "4", "0.47", report_id="c", rebate="0.002"),
    ]
    p = portfolio()
    for report in reports + reports[:2]:
        p.on_report(report)
    rebuilt = Portfolio.rebuild(D(10_000), {"bot_01": D(1_200), "bot_05": D(1_500)}, reports)
    for q in (p, rebuilt):
        q.on_mark(YES, D("0.45"))
    assert p.snapshot(7) == rebuilt.snapshot(7)
    assert p.positions(7) == rebuilt.positions(7)
    assert p.accounts["bot_01"].fills == 2


def test_drawdown_is_tracked_from_the_equity_peak() -> None:
    p = portfolio()
    p.on_report(fill("BUY", "1000", "0.50"))
    p.on_mark(YES, D("0.60"))
    p.snapshot(1)  # equity 1,300
    p.on_mark(YES, D("0.35"))
    [bot, _] = p.snapshot(2)  # equity 1,050: (1300 - 1050) / 1300
    assert bot.max_drawdown == (D(250) / D(1300)).quantize(D("0.000001"))
