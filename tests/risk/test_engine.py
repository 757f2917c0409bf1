"""The RiskEngine as a whole: every rule denied with its reason, sizing, reservations, breakers, restarts."""

from __future__ import annotations

import pickle
from decimal import Decimal as D
from typing import Any

import msgspec
import pytest
from risk_factories import MS, T0_MS, engine_with_books, intent, market, report, tob

from pets.risk.circuit_breakers import DAY_NS
from pets.risk.engine import Output, RiskEngine
from pets.risk.state import BotState, TradingState
from pets.schemas.config import PetsConfig
from pets.schemas.control import ControlCommand, RiskAlert
from pets.schemas.orders import ApprovedOrder, OrderDenied, OrderIntent


def decide(engine: RiskEngine, order: OrderIntent) -> ApprovedOrder | OrderDenied:
    """The verdict on a single order (the only output: no test here moves the clock past a pause)."""
    [verdict] = engine.on_intent(order, order.source_ts_ms * MS)
    assert isinstance(verdict, ApprovedOrder | OrderDenied), verdict
    return verdict


def approved(engine: RiskEngine, order: OrderIntent) -> ApprovedOrder:
    result = decide(engine, order)
    assert isinstance(result, ApprovedOrder), result
    return result


def denied(engine: RiskEngine, order: OrderIntent) -> OrderDenied:
    result = decide(engine, order)
    assert isinstance(result, OrderDenied), result
    return result


def control(command: str, bot_id: str = "*", n: int = 1, **kw: Any) -> ControlCommand:
    return ControlCommand(command_id=f"c{n}", command=command, bot_id=bot_id, ts_ns=T0_MS * MS, **kw)  # type: ignore[arg-type]


def with_limits(config: PetsConfig, **limits: Any) -> PetsConfig:
    risk = config.risk
    return msgspec.structs.replace(
        config, risk=msgspec.structs.replace(risk, limits=msgspec.structs.replace(risk.limits, **limits))
    )


def test_approves_a_valid_order(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    result = approved(engine, intent(price="0.51", size="20"))
    assert result.size == D(20) and result.sequence == 1
    # 20 shares at 0.51 plus the worst-case taker fee 20 x 0.03 x 0.51 x 0.49 are held back
    assert engine.ledger.available_cash == D(10_000) - D("10.2") - D(20) * D("0.03") * D("0.51") * D("0.49")


def test_the_market_s_own_fee_rate_is_reserved(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    engine.on_market(market("m1", ("yes1", "no1"), fee_rate=D("0.072")))  # Gamma: above sports' 0.03
    approved(engine, intent(price="0.51", size="20"))
    # 20 x (0.51 + 0.072 x 0.51 x 0.49 = 0.5279928) = 10.559856 held back
    assert engine.ledger.available_cash == D(10_000) - D("10.559856")
    assert engine.ledger.bot("bot_01").exposure == D("10.559856")


@pytest.mark.parametrize(
    ("order", "rule", "reason"),
    [
        (
            intent(
                bot_id="bot_04",
                strategy_type="directional",
                price="0.65",
                probability=D("0.9"),
                asset_id="yes1",
            ),
            "zone",
            "zone 4: news_scalping prohibited",
        ),
        (
            intent(bot_id="bot_04", strategy_type="directional", price="0.51", probability=D("0.52")),
            "zone",
            "zone 3: news_scalping needs probability > 0.52 (got 0.52)",
        ),
        (
            intent(bot_id="bot_04", strategy_type="directional", price="0.30", probability=D("0.25")),
            "kelly",
            "no edge: probability 0.25 <= cost per share 0.3063",  # 0.30 + 0.03 x 0.30 x 0.70
        ),
        (
            intent(bot_id="bot_04", strategy_type="directional", price="0.30"),
            "kelly",
            "a directional order needs the bot's win probability for Kelly sizing",
        ),
        (intent(price="0.505"), "tick", "price 0.505 is not on the 0.01 tick grid within (0, 1)"),
        (intent(size="4"), "min_size", "size 4 below the market minimum 5 shares"),
        (
            intent(size="1", order_type="FOK", price="0.51"),
            "min_size",
            "FOK notional 0.51 below the marketable minimum 1",
        ),
        (intent(size="10.001"), "precision", "size 10.001 is not a positive multiple of 0.01"),
        (
            intent(bot_id="bot_05", strategy_type="market_making"),
            "post_only",
            "market-making orders must be post-only",
        ),
        (intent(side="SELL"), "inventory", "sell 40 of yes1 exceeds the 0 held and not yet offered"),
        (intent(bot_id="bot_02"), "bot_stopped", "bot_02 is disabled in its config"),
        (intent(bot_id="bot_99"), "unknown_bot", "bot_99 is not a configured bot"),
        (
            intent(size="2000", price="0.51", group_id="g1", order_type="FOK"),
            "position_size",
            # 2000 x (0.51 + the taker fee 0.03 x 0.51 x 0.49 = 0.517497) = 1034.994
            "market m1: position 0.00 + order 1034.99 exceeds the maximum 500",
        ),
        (
            intent(size="10", price="0.51"),
            "position_size",
            "market m1: new position 5.17 below the minimum 10",  # 10 x 0.517497
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_rule_is_denied_with_its_reason(
    config: PetsConfig, order: OrderIntent, rule: str, reason: str
) -> None:
    result = denied(engine_with_books(config), order)
    assert result.rule == rule
    assert result.reason.startswith(reason)
    assert result.intent == order


def test_stale_and_missing_books_are_denied(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    engine.on_top_of_book(tob("yes1", "m1", stale=True, ts_ms=T0_MS + 1))
    assert denied(engine, intent(price="0.47", ts_ms=T0_MS + 1)).rule == "stale_book"
    assert denied(engine, intent(asset_id="yes9", market_id="m9")).reason == "no top of book for yes9 yet"
    engine.on_top_of_book(tob("yes2", "m2", ts_ms=T0_MS + 6000))
    old = denied(engine, intent(asset_id="yes2", market_id="m2", ts_ms=T0_MS))
    assert old.reason == "priced off a book 6000 ms older than the current one (max 5000)"


def test_closed_market_is_denied(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    engine.on_market(market("m1", ("yes1", "no1"), accepting_orders=False))
    assert denied(engine, intent()).rule == "market_closed"


def test_duplicate_ids_are_denied_even_after_a_denial(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    first = approved(engine, intent(client_order_id="dup", price="0.51"))
    again = denied(engine, intent(client_order_id="dup", price="0.51"))
    assert again.rule == "duplicate" and again.reason == "client order id dup was already decided"
    assert engine.sequence == first.sequence
    denied(engine, intent(client_order_id="bad", price="0.505"))
    assert denied(engine, intent(client_order_id="bad", price="0.51")).rule == "duplicate"


def test_rate_limit_per_bot(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    for i in range(5):
        approved(engine, intent(price="0.51", size="20", asset_id=f"yes{i + 1}", market_id=f"m{i + 1}"))
    result = denied(engine, intent(price="0.51", size="20", asset_id="yes6", market_id="m6"))
    assert result.rule == "rate_limit" and result.reason == "5 orders in the last second (max 5)"
    # another bot has its own window
    approved(engine, intent(bot_id="bot_05", strategy_type="market_making", post_only=True, price="0.49"))
    # one second later bot_01 may send again
    later = T0_MS + 1000
    engine.on_top_of_book(tob("yes6", "m6", "0.49", "0.51", ts_ms=later))
    approved(engine, intent(price="0.51", size="20", asset_id="yes6", market_id="m6", ts_ms=later))


def test_kelly_reduces_a_directional_order(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    engine.on_top_of_book(tob("yes1", "m1", "0.29", "0.30", ts_ms=T0_MS))
    result = approved(
        engine,
        intent(
            bot_id="bot_04",
            strategy_type="directional",
            price="0.30",
            size="800",
            probability=D("0.40"),
        ),
    )
    # one share costs c = 0.30 + 0.03 x 0.30 x 0.70 = 0.3063 with the taker fee: f* = 0.0937 / 0.6937 =
    # 0.135073; half Kelly of bot_04's 1,000 = 67.5364 / 0.3063 = 220.49 shares (fee-blind: 238.09)
    assert result.size == D("220.49")


def test_kelly_counts_the_shares_held_and_stakes_the_current_equity(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    engine.on_top_of_book(tob("yes1", "m1", "0.29", "0.30", ts_ms=T0_MS))
    directional = dict(bot_id="bot_04", strategy_type="directional", price="0.30", probability=D("0.40"))
    first = approved(engine, intent(size="100", **directional))  # type: ignore[arg-type]
    engine.on_execution_report(report(first.intent, "fill", "100", "0.30", fee="0.63"))
    # 100 held at 30.63 (fee 100 x 0.03 x 0.3 x 0.7), marked at the mid 0.295 = 29.50: equity
    # 1,000 - 1.13 = 998.87; target 0.5 x 0.135073 x 998.87 / 0.3063 = 220.24 shares, 100 held
    second = approved(engine, intent(size="800", **directional))  # type: ignore[arg-type]
    assert second.size == D("120.24")


def test_basket_legs_are_denied_not_reduced(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    ungrouped = approved(engine, intent(price="0.51", size="1200"))
    # reduced to the 500 USDC position maximum at 0.51 + fee 0.007497 a share: 500 / 0.517497 = 966.18
    assert ungrouped.size == D("966.18")
    leg = denied(engine, intent(price="0.51", size="1200", group_id="g1", asset_id="yes2", market_id="m2"))
    assert leg.rule == "position_size"


def test_category_cap_is_shared_by_all_bots(config: PetsConfig) -> None:
    engine = engine_with_books(with_limits(config, max_category_exposure=D("0.05")))  # 500 for "sports"
    # bot_01: 800 x (0.50 + the worst-case taker fee 0.03 x 0.5 x 0.5 = 0.5075) = 406
    approved(engine, intent(price="0.50", size="800"))
    mm = dict(bot_id="bot_05", strategy_type="market_making", post_only=True, price="0.49")
    cut = approved(engine, intent(size="500", asset_id="yes2", market_id="m2", **mm))  # type: ignore[arg-type]
    assert cut.size == D("191.83")  # 94 left / 0.49 (post-only: no fee) = 191.836
    last = denied(engine, intent(size="20", asset_id="yes3", market_id="m3", **mm))  # type: ignore[arg-type]
    assert last.rule == "category_exposure"
    assert last.reason == "category sports: exposure 500.00 + order 9.80 exceeds 500.00"


def big_bot_config(config: PetsConfig) -> PetsConfig:
    """bot_01 may use all the capital: only cash can stop it."""
    bots = tuple(
        msgspec.structs.replace(b, capital_allocation=D(1), max_position_usdc=D(100_000))
        if b.id == "bot_01"
        else b
        for b in config.bots
    )
    cfg = with_limits(config, max_bot_allocation=D(1), max_category_exposure=D(1))
    return msgspec.structs.replace(cfg, bots=bots)


def test_no_leverage_cash_minus_reservations(config: PetsConfig) -> None:
    engine = engine_with_books(big_bot_config(config))
    engine.on_market(market("m4", ("yes4", "no4"), category="politics"))
    # another bot's resting buy holds 294 of the cash (600 x 0.49, post-only: no fee)
    mm = dict(bot_id="bot_05", strategy_type="market_making", post_only=True, price="0.49")
    approved(engine, intent(size="600", asset_id="yes4", market_id="m4", **mm))  # type: ignore[arg-type]
    approved(engine, intent(price="0.50", size="18400", post_only=True))  # 9,200 reserved
    # bot_01's allocation has 800 left but the cash 506: 1,000 shares at 0.51 + fee 0.007497 = 517.497
    # are reduced to what the cash pays for, 506 / 0.517497 = 977.78
    cut = approved(engine, intent(price="0.51", size="1000", asset_id="yes2", market_id="m2"))
    assert cut.size == D("977.78")
    result = denied(engine, intent(price="0.51", size="20", asset_id="yes3", market_id="m3"))
    assert result.rule == "leverage" and "(cash minus open-order reservations)" in result.reason


def test_reservations_follow_fills_and_cancels(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    order = intent(price="0.50", size="100", post_only=True)
    approved(engine, order)
    assert engine.ledger.available_cash == D(9950)
    engine.on_execution_report(report(order, "ack"))
    engine.on_execution_report(report(order, "partial_fill", "40", "0.50", leaves="60"))
    assert engine.ledger.cash == D(9980) and engine.ledger.reserved == D(30)
    engine.on_execution_report(report(order, "partial_fill", "40", "0.50", leaves="60"))  # a re-delivery
    assert engine.ledger.cash == D(9980)
    engine.on_execution_report(report(order, "cancel", n=2))
    assert engine.ledger.reserved == 0 and engine.ledger.available_cash == D(9980)
    book = engine.ledger.bot("bot_01")
    assert book.holdings["yes1"].qty == D(40) and book.exposure == D(20)
    # selling what is held is allowed, more is not
    approved(engine, intent(side="SELL", price="0.49", size="40"))
    assert denied(engine, intent(side="SELL", price="0.49", size="5")).rule == "inventory"


def test_a_replace_of_a_resting_sell_offers_its_shares_once(config: PetsConfig) -> None:
    """A market maker moves its ask: the replace cancels the resting sell, so the shares it offered are
    not counted against the new one (before: 'exceeds the 0 held', 128 denials over the recordings)."""
    engine = engine_with_books(config)
    buy = intent(price="0.50", size="40", post_only=True)
    approved(engine, buy)
    engine.on_execution_report(report(buy, "ack"))
    engine.on_execution_report(report(buy, "fill", "40", "0.50"))
    ask = intent(side="SELL", price="0.55", size="40", post_only=True)
    approved(engine, ask)
    engine.on_execution_report(report(ask, "ack"))
    moved = intent(side="SELL", price="0.54", size="40", post_only=True, action="replace",
                   replaces=ask.client_order_id)  # fmt: skip
    approved(engine, moved)
    # a second sell beside the resting one is still more than is held
    assert denied(engine, intent(side="SELL", price="0.56", size="40")).rule == "inventory"


def test_a_replace_of_a_resting_buy_reserves_once(config: PetsConfig) -> None:
    """A quote moved up: the replace cancels the resting bid, so its reservation is not counted beside
    the new one against the caps (bot_01: at most 500 per market at cost)."""
    engine = engine_with_books(config)
    bid = intent(price="0.50", size="900", post_only=True)  # 450 of the 500
    approved(engine, bid)
    engine.on_execution_report(report(bid, "ack"))
    moved = intent(price="0.51", size="900", post_only=True, action="replace", replaces=bid.client_order_id)
    assert approved(engine, moved).size == D(900)  # 459 <= 500 once the 450 is freed (before: 98 shares)
    engine.on_execution_report(report(bid, "cancel", n=2))
    assert engine.ledger.bot("bot_01").market_cost["m1"] == D("459")
    # a second bid beside the resting one still meets the cap: 41 left at 0.51 -> 80.39 shares
    assert approved(engine, intent(price="0.51", size="900", post_only=True)).size == D("80.39")


def test_a_fill_after_the_order_closed_is_still_a_position(config: PetsConfig) -> None:
    """A fill that raced the cancel: the ledger books it (nothing is reserved any more)."""
    engine = engine_with_books(config)
    order = intent(price="0.50", size="100", post_only=True)
    approved(engine, order)
    engine.on_execution_report(report(order, "cancel"))
    assert engine.ledger.reserved == 0 and engine.ledger.available_cash == D(10000)
    engine.on_execution_report(report(order, "partial_fill", "30", "0.50"))
    engine.on_execution_report(report(order, "partial_fill", "30", "0.50"))  # a re-delivery
    assert engine.ledger.cash == D(9985) and engine.ledger.reserved == 0
    assert engine.ledger.bot("bot_01").holdings["yes1"].qty == D(30)


def test_an_order_rejected_as_unknown_then_adopted_reserves_and_fills_again(config: PetsConfig) -> None:
    """The live executor rejects an order whose posts all went unanswered and adopts it when the venue
    shows it: its ack opens it again here (reserved at the worst case, a taker fee), its fills count."""
    engine = engine_with_books(config)
    order = intent(price="0.50", size="100", post_only=True)
    approved(engine, order)
    engine.on_execution_report(report(order, "reject"))
    assert engine.ledger.available_cash == D(10000)
    engine.on_execution_report(report(order, "ack", leaves="100", n=2))
    reserve = engine.ledger.orders[order.client_order_id].unit_reserve
    assert reserve > D("0.50") and engine.ledger.reserved == 100 * reserve
    engine.on_execution_report(report(order, "partial_fill", "40", "0.50", leaves="60"))
    assert engine.ledger.cash == D(9980) and engine.ledger.reserved == 60 * reserve
    engine.on_execution_report(report(order, "cancel", n=3))
    assert engine.ledger.reserved == 0 and engine.ledger.bot("bot_01").holdings["yes1"].qty == D(40)


def round_trip(engine: RiskEngine, n: int, buy: str, sell: str, ts_ms: int) -> list[Output]:
    """bot_01 buys 20 of yes{n} and sells them back (a closed position); the engine's outputs."""
    asset, mkt = f"yes{n}", f"m{n}"
    engine.on_top_of_book(tob(asset, mkt, "0.40", "0.60", ts_ms=ts_ms))
    order = intent(price=buy, size="20", asset_id=asset, market_id=mkt, ts_ms=ts_ms, post_only=True)
    approved(engine, order)
    out = engine.on_execution_report(report(order, "fill", "20", buy, ts_ms=ts_ms))
    exit_ = intent(
        side="SELL", price=sell, size="20", asset_id=asset, market_id=mkt, ts_ms=ts_ms, post_only=True
    )
    approved(engine, exit_)
    return out + engine.on_execution_report(report(exit_, "fill", "20", sell, ts_ms=ts_ms))


def test_three_losses_in_a_row_pause_the_bot_for_the_cooldown(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    assert round_trip(engine, 1, "0.50", "0.45", T0_MS + 1000) == []
    assert round_trip(engine, 2, "0.50", "0.55", T0_MS + 2000) == []  # a win resets the count
    assert round_trip(engine, 3, "0.50", "0.45", T0_MS + 3000) == []
    assert round_trip(engine, 4, "0.50", "0.45", T0_MS + 4000) == []
    assert engine.status("bot_01").state == BotState.RUNNING
    paused_at = T0_MS + 5000
    out = round_trip(engine, 5, "0.50", "0.45", paused_at)
    alerts = [o for o in out if isinstance(o, RiskAlert)]
    assert [(a.kind, a.bot_id, a.rule) for a in alerts] == [
        ("circuit_breaker", "bot_01", "consecutive_losses")
    ]
    assert alerts[0].until_ns == paused_at * MS + 86_400 * 10**9
    cancels = [o for o in out if isinstance(o, ApprovedOrder)]
    assert [(c.intent.action, c.intent.bot_id) for c in cancels] == [("cancel_all", "bot_01")]
    assert (
        denied(engine, intent(price="0.60", asset_id="yes6", market_id="m6", ts_ms=paused_at)).rule
        == "bot_paused"
    )
    later = paused_at + 86_400_000
    resumed = [
        a
        for a in engine.on_top_of_book(tob("yes6", "m6", "0.48", "0.51", ts_ms=later))  # a new top
        if isinstance(a, RiskAlert)
    ]
    assert [(a.kind, a.bot_id) for a in resumed] == [("resumed", "bot_01")]
    approved(engine, intent(price="0.51", asset_id="yes6", market_id="m6", ts_ms=later))


def test_daily_loss_reduces_trading_until_the_next_utc_day(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    for n in (1, 2):
        order = intent(price="0.50", size="1000", asset_id=f"yes{n}", market_id=f"m{n}", post_only=True)
        approved(engine, order)
        assert engine.on_execution_report(report(order, "fill", "1000", "0.50")) == []
    assert engine.on_top_of_book(tob("yes1", "m1", "0.24", "0.26", ts_ms=T0_MS + 1)) == []  # -250: 2.5%
    assert engine.state == TradingState.ACTIVE
    out = engine.on_top_of_book(
        tob("yes2", "m2", "0.24", "0.26", ts_ms=T0_MS + 2)
    )  # -500 in all: 5% of 10,000
    kinds = [(a.kind, a.bot_id) for a in out if isinstance(a, RiskAlert)]
    assert ("bot_drawdown_halt", "bot_01") in kinds  # 500 of bot_01's 1,200 is a 41.7% drawdown
    assert ("daily_loss_halt", "*") in kinds
    assert engine.state == TradingState.REDUCING
    buy = denied(
        engine,
        intent(
            bot_id="bot_05",
            strategy_type="market_making",
            post_only=True,
            price="0.49",
            asset_id="yes3",
            market_id="m3",
            ts_ms=T0_MS + 2,
        ),
    )
    assert buy.rule == "halted" and "closing orders" in buy.reason
    # a halted bot may still close what it holds while trading is reduced
    approved(engine, intent(side="SELL", price="0.24", size="100", ts_ms=T0_MS + 2))
    next_day = (T0_MS * MS // DAY_NS + 1) * DAY_NS // MS
    out = engine.on_top_of_book(tob("yes3", "m3", "0.48", "0.51", ts_ms=next_day))  # a new top
    assert engine.state == TradingState.ACTIVE
    assert ("resumed", "*") in [(a.kind, a.bot_id) for a in out if isinstance(a, RiskAlert)]
    approved(
        engine,
        intent(
            bot_id="bot_05",
            strategy_type="market_making",
            post_only=True,
            price="0.49",
            asset_id="yes3",
            market_id="m3",
            ts_ms=next_day,
        ),
    )


def test_portfolio_drawdown_is_an_emergency_halt_until_an_operator_resumes(config: PetsConfig) -> None:
    engine = engine_with_books(with_limits(big_bot_config(config), daily_loss_halt=D(1)))
    order = intent(price="0.50", size="16000", post_only=True)
    approved(engine, order)
    engine.on_execution_report(report(order, "fill", "16000", "0.50"))
    out = engine.on_top_of_book(tob("yes1", "m1", "0.24", "0.26", ts_ms=T0_MS + 1))  # -4,000: 40% of 10,000
    assert ("emergency_halt", "*") in [(a.kind, a.bot_id) for a in out if isinstance(a, RiskAlert)]
    cancel_all = [o.intent for o in out if isinstance(o, ApprovedOrder)]
    assert any(i.action == "cancel_all" and i.bot_id == "*" and i.market == "*" for i in cancel_all)
    assert engine.state == TradingState.HALTED
    assert denied(engine, intent(side="SELL", price="0.24", size="100", ts_ms=T0_MS + 1)).rule == "halted"
    cancel = intent(action="cancel", replaces="x", ts_ms=T0_MS + 1)
    approved(engine, cancel)  # cancels always pass
    out = engine.on_control(control("resume_trading"))
    assert [(type(a), a.kind) for a in out] == [(RiskAlert, "resumed")]
    approved(engine, intent(side="SELL", price="0.24", size="100", ts_ms=T0_MS + 1))


def test_operator_halt_cancels_everything_and_blocks_new_orders(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    approved(engine, intent(price="0.50", post_only=True))
    out = engine.on_control(control("halt", reason="test"))
    alerts = [a for a in out if isinstance(a, RiskAlert)]
    orders = [o for o in out if isinstance(o, ApprovedOrder)]
    assert len(alerts) + len(orders) == len(out)
    assert [(a.kind, a.severity) for a in alerts] == [("emergency_halt", "critical")]
    assert [(o.intent.action, o.intent.bot_id, o.intent.market) for o in orders] == [("cancel_all", "*", "*")]
    assert denied(engine, intent(price="0.51")).rule == "halted"
    engine.on_control(control("resume_trading", n=2))
    approved(engine, intent(price="0.51"))


def test_stop_and_start_a_bot(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    orders = [o for o in engine.on_control(control("stop", "bot_01")) if isinstance(o, ApprovedOrder)]
    assert [(o.intent.action, o.intent.bot_id) for o in orders] == [("cancel_all", "bot_01")]
    assert denied(engine, intent(price="0.51")).rule == "bot_stopped"
    approved(engine, intent(bot_id="bot_05", strategy_type="market_making", post_only=True, price="0.49"))
    engine.on_control(control("start", "bot_01", n=2))
    approved(engine, intent(price="0.51"))
    snap = engine.snapshot()
    assert snap["bots"]["bot_01"]["state"] == "RUNNING" and snap["bots"]["bot_02"]["state"] == "DISABLED"


def test_settlement_pays_the_winner_and_closes_the_trip(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    legs = [
        intent(price="0.45", size="20", asset_id="yes1", group_id="g", order_type="FOK"),
        intent(price="0.51", size="20", asset_id="no1", group_id="g", order_type="FOK"),
    ]
    for leg in legs:
        approved(engine, leg)
        engine.on_execution_report(report(leg, "fill", "20", str(leg.price)))
    engine.on_market(market("m1", ("yes1", "no1"), closed=True, winning_asset_id="no1"))
    book = engine.ledger.bot("bot_01")
    assert book.holdings == {} and book.trips.wins == 1 and book.trips.losses == 0
    assert book.realized == D(20) - D(20) * (D("0.45") + D("0.51"))  # fees are in the fills: none reported
    assert engine.ledger.cash == D(10_000) + book.realized


def test_restart_replays_published_decisions_exactly(config: PetsConfig) -> None:
    """A restarted engine that is told the decisions already published ends in the same state, and
    neither approves those intents again nor reuses their sequence numbers."""
    live = engine_with_books(config)
    first = approved(live, intent(price="0.50", size="400", post_only=True, client_order_id="a"))
    second = denied(live, intent(price="0.505", client_order_id="b"))
    fill = report(first.intent, "fill", "400", "0.50")
    live.on_execution_report(fill)

    restarted = engine_with_books(config)
    restarted.on_execution_report(fill)  # the fill is re-read before the approval is replayed
    restarted.replay_decision(first)
    restarted.replay_decision(second)
    assert restarted.ledger.cash == live.ledger.cash == D(9800)
    assert restarted.ledger.bot("bot_01").holdings["yes1"].qty == D(400)
    assert denied(restarted, first.intent).rule == "duplicate"
    assert approved(restarted, intent(price="0.51", client_order_id="c")).sequence == first.sequence + 1


def test_state_survives_pickling(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    approved(engine, intent(price="0.50", size="100", post_only=True, client_order_id="p1"))
    restored: RiskEngine = pickle.loads(pickle.dumps(engine))
    restored.bind(config)
    assert restored.ledger.available_cash == engine.ledger.available_cash
    assert denied(restored, intent(price="0.50", client_order_id="p1")).rule == "duplicate"
    assert not hasattr(pickle.loads(pickle.dumps(engine)), "config")


def _send(engine: RiskEngine, n: int, ts_ms: int) -> ApprovedOrder | OrderDenied:
    engine.on_top_of_book(tob(f"yes{n}", f"m{n}", "0.49", "0.51", ts_ms=ts_ms))
    return decide(engine, intent(price="0.51", size="20", asset_id=f"yes{n}", market_id=f"m{n}", ts_ms=ts_ms))


def test_a_replay_that_starts_earlier_is_not_frozen_by_the_rate_limit(config: PetsConfig) -> None:
    # the engine clock is the latest venue time it saw; a second recording starting 48 minutes
    # earlier used to meet windows still full of the first one's orders until the clock caught up
    engine = engine_with_books(config)
    assert all(isinstance(_send(engine, n, T0_MS), ApprovedOrder) for n in (1, 2, 3, 4, 5))  # 5 a second
    earlier = T0_MS - 48 * 60_000
    assert all(isinstance(_send(engine, n, earlier), ApprovedOrder) for n in (6, 1, 2, 3, 4))
    # and the limit holds in the new timeline: its sixth order in one second is denied
    late = _send(engine, 5, earlier + 1)
    assert isinstance(late, OrderDenied) and late.rule == "rate_limit"


def test_an_order_stamped_far_ahead_does_not_freeze_the_rate_limit(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    year_2100_ms = 4_102_444_800_000  # the risk flow dead-letters such stamps; the engine holds up too
    assert all(isinstance(_send(engine, n, year_2100_ms), ApprovedOrder) for n in (1, 2, 3, 4, 5))
    assert isinstance(_send(engine, 6, T0_MS + 2_000), ApprovedOrder)
