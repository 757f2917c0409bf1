"""The bots Bytewax flow: bots keyed by market / neg-risk event, operator commands, dead letters."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from pets.bots.market_rebalancing_arb import MarketRebalancingArb
from pets.flows.bots import build_flow
from pets.flows.trading_io import Routed
from pets.schemas.codec import encode
from pets.schemas.config import PetsConfig, load_config
from pets.schemas.control import ControlCommand
from pets.schemas.market_data import MarketInfo
from pets.schemas.orders import OrderIntent
from pets.settings import Settings
from venue_factories import T0, tob
from venue_factories import market as venue_market

PREFIX = "unit."
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def only(*bot_ids: str) -> PetsConfig:
    """The shipped config with only `bot_ids` enabled and a 3% fee everywhere."""
    shipped = load_config(CONFIG_DIR)
    venue = msgspec.structs.replace(shipped.system.venue, fee_rates={"default": D("0.03")})
    bots = tuple(msgspec.structs.replace(b, enabled=b.id in bot_ids) for b in shipped.bots)
    return msgspec.structs.replace(
        shipped, system=msgspec.structs.replace(shipped.system, venue=venue), bots=bots
    )


def market(name: str, **changes: Any) -> MarketInfo:
    return venue_market(name, (f"{name}y", f"{name}n"), **changes)


def msg(topic: str, message: Any) -> KafkaSourceMessage[bytes, bytes]:
    raw = message if isinstance(message, bytes) else encode(message)
    return KafkaSourceMessage(key=None, value=raw, topic=f"{PREFIX}{topic}", offset=0, partition=0)  # type: ignore[arg-type]


def arb_books(name: str, ts_ms: int = T0, yes_bid: str = "0.44") -> list[Any]:
    """Books of a binary market whose asks sum to 0.95: a Bot 1 basket."""
    return [
        msg("md.tob", tob(f"{name}y", name, yes_bid, "0.45", ts_ms)),
        msg("md.tob", tob(f"{name}n", name, "0.49", "0.50", ts_ms)),
    ]


def run(settings: Settings, config: PetsConfig, items: list[Any]) -> list[Routed]:
    out: list[Routed] = []
    run_main(
        build_flow(
            dataclasses.replace(settings, topic_prefix=PREFIX),
            TestingSource(items),
            TestingSink(out),
            config=config,
        )
    )
    return out


def intents(outputs: list[Routed]) -> list[OrderIntent]:
    return [r.message for r in outputs if r.topic == "order.intent"]  # type: ignore[misc]


def command(name: str, n: int) -> Any:
    return msg("bot.control", ControlCommand(command_id=f"c{n}", command=name, bot_id="bot_01", ts_ns=0))  # type: ignore[arg-type]


def test_bot1_per_market_instances_and_operator_commands(settings: Settings) -> None:
    config = only("bot_01")
    items = [
        msg("md.markets", market("a")),
        msg("md.markets", market("b")),
        *arb_books("a"),
        command("stop", 1),
        msg("md.markets", market("c")),
        *arb_books("c", T0 + 1),  # an instance created after the stop
        *arb_books("b", T0 + 2, yes_bid="0.43"),  # not the same tops again: those change nothing
        command("start", 2),
        *arb_books("b", T0 + 3),
    ]
    out = run(settings, config, items)
    # what one plain Bot 1 instance per market proposes for the same books
    expected = []
    for name, ts in (("a", T0), ("b", T0 + 3)):
        bot = MarketRebalancingArb(config.bot("bot_01"), config.system.venue)
        bot.on_market(market(name))
        bot.on_top_of_book(tob(f"{name}y", name, "0.44", "0.45", ts))
        expected += bot.on_top_of_book(tob(f"{name}n", name, "0.49", "0.50", ts))
    assert len(expected) == 4
    assert intents(out) == expected  # nothing for "c" (stopped) nor for "b" before the start
    assert all(r.key == r.message.market for r in out)  # type: ignore[attr-defined]


def test_bot6_runs_per_neg_risk_event(settings: Settings) -> None:
    config = only("bot_06")
    event = [market(m, neg_risk=True, neg_risk_market_id="ev") for m in ("x", "y", "z")]
    books = [msg("md.tob", tob(f"{m}y", m, "0.01", "0.30")) for m in ("x", "y", "z")]
    books += [msg("md.tob", tob(f"{m}n", m, "0.60", "0.99")) for m in ("x", "y", "z")]
    out = intents(
        run(
            settings,
            config,
            [*(msg("md.markets", m) for m in event), msg("md.markets", market("lone")), *books],
        )
    )
    assert [(i.market, i.asset_id, i.side, i.price) for i in out] == [
        ("x", "xy", "BUY", D("0.30")),
        ("y", "yy", "BUY", D("0.30")),
        ("z", "zy", "BUY", D("0.30")),
    ]
    assert len({i.group_id for i in out}) == 1  # one basket from one instance holding the whole event
    assert all(i.client_order_id.startswith("bot_06-") and i.order_type == "FOK" for i in out)


def test_undecodable_input_goes_to_the_dead_letter_topic(settings: Settings) -> None:
    out = run(
        settings,
        only("bot_01"),
        [msg("md.tob", b"{not json"), msg("md.markets", market("a")), *arb_books("a")],
    )
    dead = [r for r in out if r.topic == "dlq.trading"]
    assert len(dead) == 1 and dead[0].message.topic == "unit.md.tob"  # type: ignore[attr-defined]
    assert "JSON is malformed" in dead[0].message.reason  # type: ignore[attr-defined]
    assert len(intents(out)) == 2  # the bad frame stopped nothing


def test_disabled_bots_do_not_run(settings: Settings) -> None:
    assert intents(run(settings, only(), [msg("md.markets", market("a")), *arb_books("a")])) == []


def test_a_new_instance_gets_the_bot_and_portfolio_commands(settings: Settings) -> None:
    """stop bot_01, then `resume_trading *`: an instance created afterwards is still stopped."""
    halt = ControlCommand(command_id="h", command="resume_trading", bot_id="*", ts_ns=0)
    items = [
        command("stop", 1),
        msg("bot.control", halt),
        msg("md.markets", market("a")),
        msg("md.markets", market("b")),
        *arb_books("a"),
        *arb_books("b"),
    ]
    assert intents(run(settings, only("bot_01"), items)) == []
