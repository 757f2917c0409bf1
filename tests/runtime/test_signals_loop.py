"""Signals in the embedded main job: routed by source to the bots that read it, through the
SignalGate, and the cause of every intent they make kept in the journal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pets.runtime.journal import Journal
from pets.runtime.loop import TradingLoop
from pets.schemas.config import load_config
from pets.schemas.orders import OrderIntent
from pets.schemas.signals import WalletFill
from pets.settings import project_root
from signal_bots import CLASSES, SignalTaker, enable, ranking, signal, wallet_fill
from venue_factories import T0, market, tob

CONFIG = enable(load_config(project_root() / "config"), "bot_04")  # SignalTaker reads news + model


def loop_with_books() -> tuple[TradingLoop, Journal]:
    journal = Journal()
    loop = TradingLoop(
        CONFIG, [market("m1", ("yes1", "no1"))], journal=journal, classes=CLASSES
    )
    loop.bus.dispatch("md.tob", [tob("yes1", "m1", "0.45", "0.47", T0), tob("no1", "m1", "0.53", "0.55", T0)])
    return loop, journal


def test_a_news_signal_makes_the_bot_buy_and_the_journal_says_why(tmp_path: Path) -> None:
    loop, journal = loop_with_books()
    loop.signal(signal(1))

    [intent] = journal.intents
    assert (intent.bot_id, intent.asset_id, intent.side) == ("bot_04", "yes1", "BUY")
    assert intent.price == Decimal("0.47")  # the best ask
    cause = journal.why(intent.client_order_id)
    assert cause is not None
    assert (cause.source, cause.signal_id, cause.model_version, str(cause.probability)) == (
        "news", "s1", "test-model@1", "0.62",
    )
    decided = [d.intent for d in journal.denials] + [a.intent for a in journal.approved]
    assert [d.cause for d in decided] == [cause]  # risk decided it, the cause travels with it
    journal.write_parquet(tmp_path, [])
    row = pl.read_parquet(tmp_path / "intents.parquet").row(0, named=True)
    assert (row["cause_source"], row["cause_signal_id"], row["cause_model_version"]) == (
        "news", "s1", "test-model@1",
    )
    assert str(row["cause_probability"]).rstrip("0") == "0.62"


def test_only_the_sources_a_bot_reads_reach_it_and_drops_are_counted() -> None:
    loop, journal = loop_with_books()
    loop.signal(signal(1, source="esports"))  # no enabled bot reads esports: not even subscribed
    assert journal.intents == []
    loop.signal(signal(2, source="model"))
    loop.signal(signal(2, source="model"))  # a duplicate
    loop.signal(signal(3, expires_ns=1))  # expired
    loop.finish()
    assert [i.cause.signal_id for i in journal.intents if i.cause] == ["s2"]
    assert loop.stats.signals["passed"] == 1
    assert (loop.stats.signals["duplicate"], loop.stats.signals["expired"]) == (1, 1)
    assert loop.stats.topics["dlq.signals"] == 2


def test_a_signal_for_a_market_without_a_book_waits_for_it() -> None:
    journal = Journal()
    loop = TradingLoop(
        CONFIG, [market("m1", ("yes1", "no1"))], journal=journal, classes=CLASSES
    )
    loop.signal(signal(1))
    assert journal.intents == []
    loop.bus.dispatch("md.tob", [tob("yes1", "m1", "0.45", "0.47", T0 + 100)])
    assert [i.cause.signal_id for i in journal.intents if i.cause] == ["s1"]


def test_the_main_job_on_the_simulator_feeds_its_alternative_data_to_a_signal_bot() -> None:
    """`pets run`'s source with the shipped bots plus the test's signal bot (as bot_04): the simulator's
    news and forecasts reach it through the gate, and its intents say which signal caused them."""
    from pets.runtime import sources

    config = enable(load_config(project_root() / "config"), "bot_01", "bot_04", "bot_05", "bot_06", "bot_08")
    source = sources.simulated(config, seed=3, duration_s=180)
    assert source.events is not None
    journal = Journal()
    loop = TradingLoop(config, source.markets, journal=journal, classes=CLASSES)
    loop.run(source.events())

    assert loop.stats.topics.get("signal.news", 0) > 0 and loop.stats.topics.get("signal.model", 0) > 0
    assert loop.stats.signals["passed"] > 0
    caused = [i for i in journal.intents if i.bot_id == "bot_04"]
    assert caused and all(i.cause is not None and i.cause.source in ("news", "model") for i in caused)
    assert {i.bot_id for i in journal.intents} >= {"bot_01", "bot_04", "bot_05"}


def test_whale_fills_and_rankings_in_the_loop() -> None:
    config = enable(CONFIG, "bot_03")
    journal = Journal()
    loop = TradingLoop(
        config, [market("m1", ("yes1", "no1"))], journal=journal, classes=CLASSES
    )
    loop.bus.dispatch("md.tob", [tob("yes1", "m1", "0.45", "0.47", T0)])
    loop.bus.publish("whale.rankings", ranking("0xwhale"))
    loop.bus.publish("chain.fill", wallet_fill("0xnobody", n=1))
    loop.bus.publish("chain.fill", wallet_fill("0xwhale", n=2))
    loop.bus.drain()
    assert [(i.bot_id, i.cause.note) for i in journal.intents if i.cause] == [("bot_03", "0xwhale")]


def test_an_order_a_signal_caused_records_it_even_when_the_strategy_names_no_cause() -> None:
    class Forgetful(SignalTaker):
        def place(self, *args: Any, **kwargs: Any) -> OrderIntent | None:
            kwargs.pop("cause")
            return super().place(*args, **kwargs)

    journal = Journal()
    loop = TradingLoop(
        CONFIG, [market("m1", ("yes1", "no1"))], journal=journal,
        classes={**CLASSES, "news_scalping": Forgetful},
    )  # fmt: skip
    loop.bus.dispatch("md.tob", [tob("yes1", "m1", "0.45", "0.47", T0)])
    loop.signal(signal(7, probability=Decimal("0.7")))
    [intent] = journal.intents
    assert intent.cause is not None
    cause = (intent.cause.source, intent.cause.signal_id, intent.cause.probability)
    assert cause == ("news", "s7", Decimal("0.7"))


def test_the_main_job_copies_the_simulated_whales_with_bot_3() -> None:
    """`pets run`'s simulator with the shipped Bot 3: the whale ranking and the whales' fills reach it,
    and every copy names the wallet and the fill it copies."""
    from pets.runtime import sources

    config = enable(load_config(project_root() / "config"), "bot_03")
    source = sources.simulated(config, seed=3, duration_s=300)
    assert source.events is not None
    journal = Journal()
    loop = TradingLoop(config, source.markets, journal=journal)
    loop.run(source.events())
    fills = [e for e in source.events() if isinstance(e, WalletFill)]
    assert loop.stats.topics["chain.fill"] == len(fills) > 0 and loop.stats.topics["whale.rankings"] == 5
    copies = [i for i in journal.intents if i.bot_id == "bot_03"]
    assert copies
    keys = {f"{f.tx_hash}:{f.log_index}": f.wallet for f in fills}
    for intent in copies:
        assert intent.cause is not None and intent.cause.source == "whale"
        assert keys[intent.cause.signal_id] in intent.cause.note


def test_the_simulators_news_items_are_matched_and_forecast_and_bots_4_and_7_trade_them() -> None:
    """`pets run`'s simulator with the shipped Bots 4 and 7: its news items (headlines, no Signals)
    go through the news flow's code in the loop: matched to the simulated markets, forecast by the
    baseline (no LLM endpoint), published on features.news and signal.news; both bots trade on them,
    Bot 7 on the attention features the same code computes, and every intent names its forecaster."""
    from pets.runtime import sources
    from pets.schemas.signals import NewsItem

    config = enable(load_config(project_root() / "config"), "bot_04", "bot_07")
    source = sources.simulated(config, seed=42, duration_s=600)
    assert source.events is not None
    items = [e for e in source.events() if isinstance(e, NewsItem)]
    journal = Journal()
    loop = TradingLoop(config, source.markets, journal=journal)
    loop.run(source.events())

    topics = loop.stats.topics
    assert loop.news is not None and loop.news.counts["signal"] == topics["signal.news"] > 0
    assert topics["features.news"] >= len(items) - loop.news.counts.get("unmatched", 0) > 0
    buys = [i for i in journal.intents if i.side == "BUY"]
    by_bot = {b: [i for i in buys if i.bot_id == b] for b in ("bot_04", "bot_07")}
    assert by_bot["bot_04"] and by_bot["bot_07"]
    news = [i.cause for i in by_bot["bot_04"] + by_bot["bot_07"] if i.cause and i.cause.source == "news"]
    assert news and all(c.model_version == "baseline:price" for c in news)
    assert any("attention" in (i.cause.note or "") for i in by_bot["bot_07"] if i.cause)


def test_the_report_shows_each_bots_share_of_the_llm_cost_and_the_forecaster_of_each_trade() -> None:
    """With an LLM forecaster (the project's local OpenAI-compatible server, priced per 1k tokens) the
    forecasts serve both bots that read signal.news: each is charged half of what the tokens cost;
    a bot that reads no news pays nothing; trades are counted by the forecaster that caused them."""
    from pets.execution.metrics import PORTFOLIO
    from pets.pipelines.news.forecaster import LlmForecaster, LlmSettings
    from pets.pipelines.news.llm_server import serve_llm
    from pets.pipelines.news.signals import NewsSignaller
    from pets.pipelines.simulator import AltData
    from pets.runtime import sources

    config = enable(load_config(project_root() / "config"), "bot_01", "bot_04", "bot_07")
    source = sources.simulated(config, seed=42, duration_s=300)
    assert source.events is not None
    journal = Journal()
    with serve_llm() as server:
        settings = LlmSettings(
            base_url=server.base_url, model="test-model", api_key="k", timeout_s=5, requests_per_min=100_000,
            tokens_per_min=10**9, usd_per_1k_prompt=Decimal("0.15"), usd_per_1k_completion=Decimal("0.60"),
        )  # fmt: skip
        llm = LlmForecaster(settings)
        news = NewsSignaller(llm, None, AltData.MATCH_THRESHOLD, AltData.FULL_SCORE)
        loop = TradingLoop(config, source.markets, journal=journal, news=news)
        loop.run(source.events())
    prompt = sum(p for p, _ in llm.stats.tokens.values())
    completion = sum(c for _, c in llm.stats.tokens.values())
    total = (prompt * Decimal("0.15") + completion * Decimal("0.60")) / 1000
    assert llm.stats.answered > 0 and total > 0
    report = loop.report()
    assert report["bot_04"].llm_cost_usd == report["bot_07"].llm_cost_usd == total / 2
    assert report["bot_01"].llm_cost_usd == 0 and report["bot_01"].forecasters == {}
    assert report[PORTFOLIO].llm_cost_usd == total
    assert report["bot_04"].forecasters.get("llm:test-model", 0) > 0
    # every bot_04 fill whose order a forecast caused, by that forecast's forecaster
    forecaster = {i.client_order_id: i.cause.model_version for i in journal.intents if i.cause}
    fills = [forecaster.get(f.client_order_id) for f in journal.fills if f.bot_id == "bot_04"]
    assert report["bot_04"].forecasters == {name: fills.count(name) for name in set(fills) if name}
    from pets.execution.metrics import format_report

    text = format_report(report)
    assert f"  bot_04: LLM ${total / 2:.4f}; trades llm:test-model" in text and "  bot_01: LLM" not in text


def test_the_loops_news_signaller_keeps_what_the_tops_that_reach_the_bots_give(shared_data: Path) -> None:
    """The loop hands the embedded news signaller a top's mid read once for all (`on_mid`), and a top
    showing the same mid only once the token's history forgets something then: after every top the
    signaller holds the mids and YES histories that `on_book` of every top that reaches risk and the
    bots (`same_top`) gives it."""
    from pets.pipelines.news.forecaster import BaselineForecaster
    from pets.pipelines.news.signals import NewsSignaller
    from pets.runtime import sources
    from pets.schemas.market_data import TopOfBook, same_top

    paths = sorted((shared_data / "polymarket" / "l2").glob("*.jsonl.gz"))[:4]
    if not paths:
        pytest.skip(f"no recordings in {shared_data / 'polymarket' / 'l2'}")
    source = sources.replay(paths)
    loop = TradingLoop(load_config(project_root() / "config"), [])  # Bots 4 and 7 read news
    assert loop.news is not None
    reference = NewsSignaller(BaselineForecaster())
    held: dict[str, TopOfBook] = {}

    def state(signaller: NewsSignaller, asset: str) -> tuple[object, ...]:
        history = signaller.attention.mids.get(asset)
        kept = None if history is None else (history.ts, history.mids, history.last, history.trim_ms)
        return signaller.mids.get(asset), kept

    def on_top(top: TopOfBook) -> None:  # after the loop's own handler
        last = held.get(top.asset_id)
        if last is None or not same_top(last, top):
            held[top.asset_id] = top
            reference.on_book(top)
        assert loop.news is not None and state(loop.news, top.asset_id) == state(reference, top.asset_id)

    loop.bus.subscribe("md.markets", reference.on_market)
    loop.bus.subscribe("md.tob", on_top)
    for info in source.markets:  # after the subscriptions: the reference learns the markets too
        loop.bus.publish("md.markets", info)
    loop.bus.drain()
    loop.run(source.frames)
    assert loop.news.mids == reference.mids and len(reference.mids) == 8
    histories, expected = loop.news.attention.mids, reference.attention.mids
    assert histories.keys() == expected.keys() and len(expected) == 4  # the YES tokens
    for asset, history in histories.items():
        want = expected[asset]
        assert (history.ts, history.mids, history.last, history.trim_ms) == (
            want.ts, want.mids, want.last, want.trim_ms,
        ), asset  # fmt: skip
