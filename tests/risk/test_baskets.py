"""Arbitrage baskets pass risk whole: held until the last leg, then all approved or all denied."""

from __future__ import annotations

import pickle
from decimal import Decimal as D
from typing import Any

from risk_factories import MS, T0_MS, engine_with_books, intent, tob

from pets.risk.engine import Output, RiskEngine
from pets.schemas.config import PetsConfig
from pets.schemas.control import ControlCommand
from pets.schemas.orders import ApprovedOrder, OrderDenied, OrderIntent

FEE_RATE = D("0.03")  # the test config's taker fee for every category


def leg(n: int, group: str = "g1", legs: int = 2, **changes: Any) -> OrderIntent:
    """Leg n of a basket of bot_01 buying yes1 / no1 / yes2 at 0.51."""
    asset, market = (("yes1", "m1"), ("no1", "m1"), ("yes2", "m2"))[n - 1]
    fields: dict[str, Any] = {"price": "0.51", "size": "100", "asset_id": asset, "market_id": market}
    fields.update(changes)
    return intent(
        client_order_id=f"{group}-leg{n}", group_id=group, group_size=legs, order_type="FOK", **fields
    )


def send(engine: RiskEngine, order: OrderIntent) -> list[Output]:
    return engine.on_intent(order, order.source_ts_ms * MS)


def reserve(size: int, price: str = "0.51") -> D:
    """Cash held back for a taker buy: notional plus the worst-case fee size x rate x p x (1 - p)."""
    p = D(price)
    return size * p + size * FEE_RATE * p * (1 - p)


def assert_nothing_reserved(engine: RiskEngine) -> None:
    ledger = engine.ledger
    assert ledger.orders == {}
    assert ledger.reserved == 0 and ledger.gross == 0 and ledger.available_cash == D(10_000)
    assert ledger.bot("bot_01").exposure == 0


def test_a_basket_that_fits_is_approved_whole_in_leg_order(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    first, second = leg(1), leg(2)
    assert send(engine, first) == []
    out = send(engine, second)
    assert [type(o) for o in out] == [ApprovedOrder, ApprovedOrder]
    assert [(o.intent, o.size, o.sequence) for o in out] == [(first, D(100), 1), (second, D(100), 2)]  # type: ignore[union-attr]
    assert engine.ledger.reserved == 2 * reserve(100)


def test_legs_are_not_approved_before_the_last_one_arrives(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    assert send(engine, leg(1, legs=3)) == []
    assert send(engine, leg(2, legs=3)) == []
    assert engine.sequence == 0
    assert_nothing_reserved(engine)
    out = send(engine, leg(3, legs=3))
    assert [o.intent.client_order_id for o in out if isinstance(o, ApprovedOrder)] == [
        "g1-leg1",
        "g1-leg2",
        "g1-leg3",
    ]


def test_a_leg_that_breaks_a_limit_denies_the_whole_basket_and_frees_the_others(config: PetsConfig) -> None:
    """bot_01 may hold 500 USDC per market: leg 1 (500 x (0.51 + fee 0.03 x 0.51 x 0.49) = 258.75) fits
    alone, leg 2 brings the market to 517.50."""
    engine = engine_with_books(config)
    assert send(engine, leg(1, size="500")) == []
    out = send(engine, leg(2, size="500"))
    assert all(isinstance(o, OrderDenied) for o in out)
    denials: list[OrderDenied] = out  # type: ignore[assignment]
    assert [d.intent.client_order_id for d in denials] == ["g1-leg1", "g1-leg2"]
    assert {d.rule for d in denials} == {"position_size"}
    for d in denials:
        assert d.reason.startswith("basket g1: leg g1-leg2 denied: market m1: ")
    assert_nothing_reserved(engine)
    assert engine.sequence == 0
    # the full room is still there: a single order of 966 x 0.517497 = 499.90 in m1 is approved whole
    single = intent(price="0.51", size="966", asset_id="yes1")
    [verdict] = send(engine, single)
    assert isinstance(verdict, ApprovedOrder) and verdict.size == D(966) and verdict.sequence == 1


def test_the_rate_limit_counts_every_leg_and_a_denied_basket_uses_none(config: PetsConfig) -> None:
    """5 orders a second: after 4 singles the basket's second leg is the 6th order, so both legs are
    denied; the one order left in the second still goes through."""
    engine = engine_with_books(config)
    for i in (3, 4, 5, 6):
        [single] = send(engine, intent(price="0.51", size="20", asset_id=f"yes{i}", market_id=f"m{i}"))
        assert isinstance(single, ApprovedOrder)
    send(engine, leg(1))
    out = send(engine, leg(2))
    assert [(o.rule, o.reason) for o in out if isinstance(o, OrderDenied)] == [
        ("rate_limit", "basket g1: leg g1-leg2 denied: 5 orders in the last second (max 5)")
    ] * 2
    [fifth] = send(engine, intent(price="0.51", size="20", asset_id="no3", market_id="m3"))
    assert isinstance(fifth, ApprovedOrder)
    [sixth] = send(engine, intent(price="0.51", size="20", asset_id="no4", market_id="m4"))
    assert isinstance(sixth, OrderDenied) and sixth.rule == "rate_limit"


def test_an_incomplete_basket_expires_on_the_first_event_after_the_stale_book_age(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    send(engine, leg(1))
    assert engine.on_top_of_book(tob("yes3", "m3", "0.49", "0.51", ts_ms=T0_MS + 5000)) == []  # 5 s: in time
    [expired] = engine.on_top_of_book(tob("yes3", "m3", "0.48", "0.51", ts_ms=T0_MS + 5001))
    assert isinstance(expired, OrderDenied) and expired.intent.client_order_id == "g1-leg1"
    assert (expired.rule, expired.reason) == (
        "basket_incomplete",
        "basket g1: 1 of 2 legs arrived within 5000 ms",
    )
    assert_nothing_reserved(engine)
    [late] = send(engine, leg(2, ts_ms=T0_MS + 5001))
    assert isinstance(late, OrderDenied)
    assert (late.rule, late.reason) == (
        "basket",
        "basket g1: leg g1-leg2 arrived after the basket was decided",
    )


def test_an_expired_basket_is_denied_before_the_verdict_of_the_intent_that_moved_the_clock(
    config: PetsConfig,
) -> None:
    engine = engine_with_books(config)
    send(engine, leg(1))
    later = T0_MS + 6000
    engine.books["yes3"] = tob("yes3", "m3", "0.49", "0.51", ts_ms=later)
    out = send(engine, intent(price="0.51", size="20", asset_id="yes3", market_id="m3", ts_ms=later))
    assert [(type(o), o.intent.client_order_id) for o in out] == [  # type: ignore[union-attr]
        (OrderDenied, "g1-leg1"),
        (ApprovedOrder, out[1].intent.client_order_id),  # type: ignore[union-attr]
    ]


def test_re_delivered_legs_are_duplicates_while_waiting_and_after_the_decision(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    send(engine, leg(1))
    [waiting] = send(engine, leg(1))  # the same leg again does not complete the basket
    assert isinstance(waiting, OrderDenied)
    assert (waiting.rule, waiting.reason) == (
        "duplicate",
        "client order id g1-leg1 is already waiting in basket g1",
    )
    assert_nothing_reserved(engine)
    assert [type(o) for o in send(engine, leg(2))] == [ApprovedOrder, ApprovedOrder]
    for again in (leg(1), leg(2)):
        [verdict] = send(engine, again)
        assert isinstance(verdict, OrderDenied) and verdict.rule == "duplicate"
    assert engine.sequence == 2 and engine.ledger.reserved == 2 * reserve(100)


def test_a_leg_that_disagrees_with_its_basket_is_denied_alone(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    send(engine, leg(1))
    [odd] = send(engine, leg(2, legs=3))
    assert isinstance(odd, OrderDenied) and odd.rule == "basket"
    assert odd.reason == "basket g1: leg g1-leg2 (bot_01, 3 legs) does not match leg g1-leg1 (bot_01, 2 legs)"
    assert "g1" in engine.baskets  # leg 1 still waits for a matching second leg


def test_a_halt_between_the_legs_denies_the_basket(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    send(engine, leg(1))
    engine.on_control(ControlCommand(command_id="c1", command="halt", bot_id="*", ts_ns=T0_MS * MS))
    out = send(engine, leg(2))
    assert [(type(o), o.rule) for o in out] == [(OrderDenied, "halted")] * 2  # type: ignore[union-attr]
    assert_nothing_reserved(engine)


def test_an_engine_pickled_mid_basket_completes_it_exactly_once(config: PetsConfig) -> None:
    engine = engine_with_books(config)
    send(engine, leg(1))
    restored: RiskEngine = pickle.loads(pickle.dumps(engine))
    restored.bind(config)
    out = send(restored, leg(2))
    assert [(type(o), o.sequence) for o in out] == [(ApprovedOrder, 1), (ApprovedOrder, 2)]  # type: ignore[union-attr]
    assert [type(o) for o in send(restored, leg(2)) + send(restored, leg(1))] == [OrderDenied, OrderDenied]
    assert restored.ledger.reserved == 2 * reserve(100)


def test_a_restart_that_replays_the_published_basket_drops_the_legs_held_in_the_snapshot(
    config: PetsConfig,
) -> None:
    """The snapshot holds leg 1; the basket was decided and published after it: replaying the published
    decisions leaves no basket waiting, so nothing expires later and nothing is approved twice."""
    live = engine_with_books(config)
    send(live, leg(1))
    snapshot = pickle.dumps(live)
    published = send(live, leg(2))
    restarted: RiskEngine = pickle.loads(snapshot)
    restarted.bind(config)
    for decision in published:
        assert isinstance(decision, ApprovedOrder)
        restarted.replay_decision(decision)
    assert restarted.baskets == {}
    assert restarted.ledger.reserved == live.ledger.reserved == 2 * reserve(100)
    assert restarted.on_top_of_book(tob("yes3", "m3", "0.48", "0.51", ts_ms=T0_MS + 10_000)) == []
