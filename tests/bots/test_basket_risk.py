"""Bot 1's basket through the trading loop: risk approves both legs or denies both, never one."""

from __future__ import annotations

from decimal import Decimal as D

import msgspec
from bot_factories import CONFIG, market, tob

from pets.runtime.journal import Journal
from pets.runtime.loop import TradingLoop
from pets.schemas.config import PetsConfig


def trade_one_basket(config: PetsConfig) -> tuple[TradingLoop, Journal]:
    """Books where Bot 1 buys 80 YES at 0.45 (36 USDC) and 80 NO at 0.50 (40 USDC) as one basket."""
    journal = Journal()
    bots = type(config.bots)(msgspec.structs.replace(b, enabled=b.id == "bot_01") for b in config.bots)
    loop = TradingLoop(msgspec.structs.replace(config, bots=bots), [market()], journal=journal)
    loop.bus.dispatch(
        "md.tob", [tob("yes1", "m1", "0.44", "0.45"), tob("no1", "m1", "0.49", "0.50", ask_size="80")]
    )
    return loop, journal


def test_a_basket_that_fits_is_approved_whole() -> None:
    loop, journal = trade_one_basket(CONFIG)
    assert [(i.asset_id, i.size, i.group_size) for i in journal.intents] == [
        ("yes1", D(80), 2),
        ("no1", D(80), 2),
    ]
    assert [a.intent for a in journal.approved] == journal.intents
    assert loop.bus.published["order.exec"] == 2
    assert journal.denials == []


def test_a_basket_whose_second_leg_breaks_the_category_cap_is_denied_whole() -> None:
    """A 50 USDC cap per category (0.005 of 10,000): the YES leg (36) fits alone, both (76) do not."""
    assert CONFIG.system.trading.starting_capital == D(10_000)
    limits = msgspec.structs.replace(CONFIG.risk.limits, max_category_exposure=D("0.005"))
    config = msgspec.structs.replace(CONFIG, risk=msgspec.structs.replace(CONFIG.risk, limits=limits))
    loop, journal = trade_one_basket(config)
    assert [i.asset_id for i in journal.intents] == ["yes1", "no1"]
    assert journal.approved == [] and loop.bus.published["order.exec"] == 0
    assert [(d.intent, d.rule) for d in journal.denials] == [
        (i, "category_exposure") for i in journal.intents
    ]
    no_leg = journal.intents[1].client_order_id
    assert all(
        d.reason.startswith(f"basket {d.intent.group_id}: leg {no_leg} denied: ") for d in journal.denials
    )
    assert loop.risk.ledger.reserved == 0
