"""The risk Bytewax flow: exact outputs, dead letters, crash recovery in process and through Kafka."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from pets.flows.risk import build_flow, db_rows
from pets.flows.trading_io import Routed
from pets.schemas.codec import encode
from pets.schemas.config import load_config
from pets.schemas.control import ControlCommand, DeadLetter, RiskAlert
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.schemas.orders import ApprovedOrder, OrderDenied, OrderIntent
from pets.settings import Settings

PETS = str(Path(sys.executable).parent / "pets")
T0 = 1_750_000_000_000
MS = 1_000_000
PREFIX = "unit."


def market(n: int) -> MarketInfo:
    return MarketInfo(
        condition_id=f"m{n}",
        market_id=f"g{n}",
        question="?",
        slug=f"m{n}",
        category="sports",
        token_ids=(f"yes{n}", f"no{n}"),
        outcomes=("Yes", "No"),
        neg_risk=False,
        tick_size=D("0.01"),
        min_order_size=D(5),
        active=True,
        closed=False,
        accepting_orders=True,
    )


def tob(asset: str, mkt: str, ts_ms: int = T0) -> TopOfBook:
    return TopOfBook(
        asset_id=asset,
        market=mkt,
        ts_ms=ts_ms,
        best_bid=D("0.49"),
        best_ask=D("0.51"),
        best_bid_size=D(100),
        best_ask_size=D(100),
        mid=D("0.50"),
        microprice=D("0.50"),
        spread=D("0.02"),
        imbalance=D(0),
        tick_size=D("0.01"),
        stale=False,
        paired_asset_id=None,
        ask_sum=None,
        bid_sum=None,
        seq=1,
    )


def intent(n: int, cid: str, price: str = "0.51", size: str = "40", ts_ms: int = T0) -> OrderIntent:
    return OrderIntent(
        client_order_id=cid,
        bot_id="bot_01",
        strategy_type="arbitrage",
        action="place",
        market=f"m{n}",
        asset_id=f"yes{n}",
        side="BUY",
        price=D(price),
        size=D(size),
        category="sports",
        source_ts_ms=ts_ms,
        created_ns=ts_ms * MS,
    )


def msg(topic: str, message: Any, prefix: str = PREFIX) -> KafkaSourceMessage[bytes, bytes]:
    raw = message if isinstance(message, bytes) else encode(message)
    return KafkaSourceMessage(key=None, value=raw, topic=f"{prefix}{topic}", offset=0, partition=0)  # type: ignore[arg-type]


def by_topic(outputs: Iterable[Routed]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for out in outputs:
        found.setdefault(out.topic, []).append(out)
    return found


def test_the_flow_publishes_exactly_the_decisions_alerts_and_dead_letters(settings: Settings) -> None:
    settings = dataclasses.replace(settings, topic_prefix=PREFIX)
    approve = intent(1, "a1")
    off_grid = intent(1, "a2", price="0.505")
    after_halt = intent(1, "a3", ts_ms=T0 + 1)
    halt = ControlCommand(command_id="h1", command="halt", bot_id="*", reason="test", ts_ns=T0 * MS)
    source = TestingSource(
        [
            msg("md.markets", market(1)),
            msg("md.tob", tob("yes1", "m1")),
            msg("md.tob", tob("no1", "m1")),
            msg("order.intent", approve),
            msg("order.intent", off_grid),
            msg("order.intent", b'{"bot_id": 7}'),
            msg("bot.control", halt),
            msg("order.intent", after_halt),
        ]
    )
    out: list[Any] = []
    db: list[Any] = []
    run_main(build_flow(settings, source, TestingSink(out), db_sink=TestingSink(db)))
    topics = by_topic(out)
    assert topics["order.exec"][0] == Routed(
        "order.exec", "m1", ApprovedOrder(intent=approve, size=D(40), approved_ns=T0 * MS, sequence=1)
    )
    assert topics["order.denied"] == [
        Routed(
            "order.denied",
            "m1",
            OrderDenied(
                intent=off_grid,
                rule="tick",
                reason="price 0.505 is not on the 0.01 tick grid within (0, 1)",
                denied_ns=T0 * MS,
            ),
        ),
        Routed(
            "order.denied",
            "m1",
            OrderDenied(
                intent=after_halt,
                rule="halted",
                reason="trading halted (emergency halt by cli: test); an operator must resume trading",
                denied_ns=(T0 + 1) * MS,
            ),
        ),
    ]
    cancel_all = topics["order.exec"][1].message
    assert (cancel_all.intent.action, cancel_all.intent.bot_id, cancel_all.intent.market) == (
        "cancel_all",
        "*",
        "*",
    )
    (alert,) = [r.message for r in topics["risk.alert"]]
    assert (alert.kind, alert.bot_id, alert.severity, alert.message) == (
        "emergency_halt",
        "*",
        "critical",
        "emergency halt by cli: test",
    )
    (dead,) = [r.message for r in topics["dlq.trading"]]
    assert (
        isinstance(dead, DeadLetter) and dead.topic == "unit.order.intent" and dead.payload == '{"bot_id": 7}'
    )
    assert dead.reason == "unit.order.intent: Expected `str`, got `int` - at `$.bot_id`"
    tables = {table for table, _ in db}
    assert {"approved_orders", "order_denials", "risk_events", "bot_status"} <= tables
    status = {row[0]: row[1] for table, row in db if table == "bot_status"}
    assert status["*"] == "HALTED" and status["bot_01"] == "RUNNING"


def recovery(tmp: Path) -> RecoveryConfig:
    tmp.mkdir(parents=True, exist_ok=True)
    init_db_dir(tmp, 1)
    return RecoveryConfig(str(tmp))


def assert_each_intent_decided_once(outputs: list[Routed], ids: list[str], budget: D) -> None:
    decided = [r.message.intent.client_order_id for r in outputs if r.topic in ("order.exec", "order.denied")]
    assert sorted(decided) == sorted(ids)  # every intent decided, none twice (approved or denied)
    approvals = [r.message for r in outputs if r.topic == "order.exec"]
    assert sum((a.intent.price * a.size for a in approvals), D(0)) <= budget
    assert any(r.message.rule == "allocation" for r in outputs if r.topic == "order.denied")


@pytest.mark.parametrize("epoch", [timedelta(0), timedelta(hours=1)], ids=["resume_mid_way", "replay_all"])
def test_a_crash_never_approves_twice_nor_exceeds_a_limit(
    settings: Settings, tmp_path: Path, epoch: timedelta
) -> None:
    """Abort half way and resume from the recovery store with the published decisions as the journal.
    bot_01 asks for 80 x 20.40 = 1,632 USDC against its 1,200 allocation."""
    settings = dataclasses.replace(settings, topic_prefix=PREFIX)
    setup = [msg("md.markets", market(n)) for n in range(1, 21)] + [
        msg("md.tob", tob(f"yes{n}", f"m{n}")) for n in range(1, 21)
    ]
    intents = [intent(i % 20 + 1, f"c{i}", ts_ms=T0 + 250 * i) for i in range(80)]
    items = [msg("order.intent", i) for i in intents]
    source = TestingSource([*setup, *items[:37], TestingSource.ABORT(), *items[37:]], batch_size=5)
    out: list[Routed] = []
    journal = lambda: [r.message for r in list(out) if r.topic in ("order.exec", "order.denied")]  # noqa: E731
    config = recovery(tmp_path / "recovery")
    for run in range(2):
        before = len(out)
        run_main(
            build_flow(settings, source, TestingSink(out), journal=journal),
            epoch_interval=epoch,
            recovery_config=config,
        )
        assert len(out) > before, f"run {run} decided nothing"
    assert_each_intent_decided_once(out, [i.client_order_id for i in intents], D(1200))
    budget_fill = sum((r.message.intent.price * r.message.size for r in out if r.topic == "order.exec"), D(0))
    assert budget_fill > D(1200) - D("20.40")  # the allocation was used up, not lost in the restart


def test_without_the_journal_a_replay_would_approve_again(settings: Settings, tmp_path: Path) -> None:
    """The journal is what makes the replay safe: the same crash without it approves intents twice."""
    settings = dataclasses.replace(settings, topic_prefix=PREFIX)
    setup = [msg("md.markets", market(1)), msg("md.tob", tob("yes1", "m1"))]
    items = [msg("order.intent", intent(1, f"c{i}", size="20", ts_ms=T0 + 250 * i)) for i in range(6)]
    source = TestingSource([*setup, *items[:3], TestingSource.ABORT(), *items[3:]])
    out: list[Routed] = []
    config = recovery(tmp_path / "recovery")
    for _ in range(2):
        run_main(
            build_flow(settings, source, TestingSink(out), journal=tuple),
            epoch_interval=timedelta(hours=1),
            recovery_config=config,
        )
    approved = [r.message.intent.client_order_id for r in out if r.topic == "order.exec"]
    assert len(approved) > len(set(approved))


def test_db_rows_of_every_output_kind(settings: Settings) -> None:
    a = intent(1, "x")
    alert = RiskAlert(
        alert_id="r1", kind="resumed", bot_id="*", rule="r", message="m", severity="info", ts_ns=5
    )
    rows = [
        *db_rows(
            Routed("order.exec", "m1", ApprovedOrder(intent=a, size=D(10), approved_ns=T0 * MS, sequence=3))
        ),
        *db_rows(
            Routed("order.denied", "m1", OrderDenied(intent=a, rule="tick", reason="r", denied_ns=T0 * MS))
        ),
        *db_rows(Routed("risk.alert", "*", alert)),
    ]
    assert [table for table, _ in rows] == ["approved_orders", "order_denials", "risk_events"]
    assert rows[0][1][1:3] == ("x", 3) and rows[0][1][10:12] == (D(40), D(10))  # requested and approved size


# ------------------------------------------------------------------------------------- through Kafka


def _consume(settings: Settings, names: list[str]) -> Any:
    from kafka import TopicPartition

    from pets.pipelines.kafka_io import consumer

    client = consumer(settings)
    parts = [
        TopicPartition(f"{settings.topic_prefix}{n}", p)
        for n in names
        for p in client.partitions_for_topic(f"{settings.topic_prefix}{n}") or ()
    ]
    client.assign(parts)
    client.seek_to_beginning(*parts)
    return client


class Decisions:
    """Everything the risk flow has published on order.exec / order.denied so far."""

    def __init__(self, settings: Settings) -> None:
        self.client = _consume(settings, ["order.exec", "order.denied"])
        self.decoders: dict[str, Any] = {
            f"{settings.topic_prefix}order.exec": msgspec.json.Decoder(ApprovedOrder),
            f"{settings.topic_prefix}order.denied": msgspec.json.Decoder(OrderDenied),
        }
        self.items: list[ApprovedOrder | OrderDenied] = []

    def poll(self) -> list[ApprovedOrder | OrderDenied]:
        for tp, records in self.client.poll(timeout_ms=200).items():
            self.items += [self.decoders[tp.topic].decode(r.value) for r in records]
        return self.items

    def wait(self, until: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not until(self.poll()):
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}; got {len(self.items)} decisions"
            )


def _start_risk_flow(settings: Settings, state_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETS_")}
    env.update(
        PETS_MODE="local",
        PETS_STATE_DIR=str(state_dir),
        PETS_TOPIC_PREFIX=settings.topic_prefix,
        PETS_KAFKA_BOOTSTRAP=settings.require_kafka(),
        PETS_CONFIG_DIR=str(settings.config_dir),
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [PETS, "flow", "run", "risk", "--epoch-ms", "300"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.integration
def test_killing_the_risk_flow_mid_run_approves_nothing_twice_and_keeps_limits(
    settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    from pets.pipelines.kafka_io import delete_topics, ensure_topics, producer

    settings = dataclasses.replace(settings, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    names = [
        "md.markets",
        "md.tob",
        "bot.control",
        "exec.report",
        "order.intent",
        "order.exec",
        "order.denied",
        "risk.alert",
        "dlq.trading",
    ]
    ensure_topics(settings, names)
    limit = load_config(settings.config_dir).bot("bot_01").max_position_usdc
    send = producer(settings)
    flows: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "risk.log"
    decisions: Decisions | None = None

    def produce(topic: str, key: str, message: Any) -> None:
        send.send(f"{topic_prefix}{topic}", key=key.encode(), value=encode(message))

    try:
        for n in range(1, 21):
            produce("md.markets", f"m{n}", market(n))
            produce("md.tob", f"yes{n}", tob(f"yes{n}", f"m{n}"))
        send.flush()
        flows.append(_start_risk_flow(settings, tmp_path / "state", log))
        decisions = Decisions(settings)
        # the flow reads its inputs in no fixed order across topics: probe until it has the books
        for attempt in range(60):
            probe = intent(1, f"probe{attempt}", size="20", ts_ms=T0)
            produce("order.intent", "m1", probe)
            send.flush()
            decisions.wait(
                lambda items, cid=probe.client_order_id: any(  # type: ignore[misc]
                    d.intent.client_order_id == cid for d in items
                ),
                30,
                "the probe decision",
            )
            if any(isinstance(d, ApprovedOrder) for d in decisions.items):
                break
        # one market: one partition of order.intent, so the intents arrive in order (80 x 20.40 USDC
        # against bot_01's position limit in one market)
        intents = [intent(1, f"k{i}", ts_ms=T0 + 250 * (i + 1)) for i in range(80)]

        def feed() -> None:
            for item in intents:
                produce("order.intent", item.market, item)
                send.flush()
                time.sleep(0.03)

        feeder = threading.Thread(target=feed)
        feeder.start()
        decisions.wait(lambda items: len(items) >= 25, 30, "25 decisions before the kill")
        os.killpg(flows[0].pid, signal.SIGKILL)
        flows[0].wait(10)
        killed_at = len(decisions.poll())
        feeder.join()
        flows.append(_start_risk_flow(settings, tmp_path / "state", log))
        ids = {d.intent.client_order_id for d in decisions.items}
        expected = ids | {i.client_order_id for i in intents}
        decisions.wait(
            lambda items: {d.intent.client_order_id for d in items} >= expected,
            60,
            "every intent decided after the restart",
        )
        time.sleep(1.5)  # anything published twice would show up by now
        final = decisions.poll()
    finally:
        for flow in flows:
            if flow.poll() is None:
                os.killpg(flow.pid, signal.SIGTERM)
                flow.wait(10)
        send.close()
        if decisions is not None:
            decisions.client.close()
        delete_topics(settings, [f"{topic_prefix}{n}" for n in names])
    assert killed_at < len(final), f"the restarted flow published nothing; log:\n{log.read_text()[-2000:]}"
    decided = [d.intent.client_order_id for d in final]
    assert len(decided) == len(set(decided)), "an intent was decided twice"
    approved = [d for d in final if isinstance(d, ApprovedOrder) and d.intent.market == "m1"]
    assert limit - D("20.40") < sum((a.intent.price * a.size for a in approved), D(0)) <= limit
    rules = Counter(d.rule if isinstance(d, OrderDenied) else "approved" for d in final)
    assert rules["position_size"] > 0, rules


@pytest.mark.integration
def test_decisions_alerts_and_states_land_in_the_database(settings: Settings, fresh_db: str) -> None:
    import psycopg

    from pets.flows.market_state import TimescaleSink

    subprocess.run(
        [PETS, "db", "migrate"],
        env={**os.environ, "PETS_POSTGRES_DSN": fresh_db},
        check=True,
        capture_output=True,
    )
    settings = dataclasses.replace(settings, topic_prefix=PREFIX)
    halt = ControlCommand(command_id="h1", command="halt", bot_id="*", reason="test", ts_ns=T0 * MS)
    items = [
        msg("md.markets", market(1)),
        msg("md.tob", tob("yes1", "m1")),
        msg("order.intent", intent(1, "a1")),
        msg("order.intent", intent(1, "a2", price="0.505")),
        msg("bot.control", halt),
    ]
    for _ in range(2):  # a replay of the same input adds no rows
        run_main(build_flow(settings, TestingSource(items), TestingSink([]), db_sink=TimescaleSink(fresh_db)))
    with psycopg.connect(fresh_db) as conn:
        count = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("approved_orders", "order_denials", "risk_events")
        }
        states: dict[str, str] = dict(conn.execute("SELECT bot_id, state FROM bot_status").fetchall())
    assert count == {
        "approved_orders": 2,
        "order_denials": 1,
        "risk_events": 1,
    }  # the order and the cancel-all
    assert states["*"] == "HALTED" and states["bot_01"] == "RUNNING"


def test_an_intent_that_overtook_its_first_top_is_decided_when_the_top_arrives(settings: Settings) -> None:
    """A lagging risk flow can read an intent before the first top of book it was priced from (two
    topics, read as they arrive): it is judged once that top is in, as `pets run` judges it, instead
    of a `stale_book` denial for a book it has not seen."""
    settings = dataclasses.replace(settings, topic_prefix=PREFIX)
    early = intent(1, "e1")
    source = TestingSource(
        [
            msg("md.markets", market(1)),
            msg("order.intent", early),
            msg("md.tob", tob("yes1", "m1")),
            msg("md.tob", tob("no1", "m1")),
        ]
    )
    out: list[Any] = []
    run_main(build_flow(settings, source, TestingSink(out), db_sink=TestingSink([])))
    topics = by_topic(out)
    assert "order.denied" not in topics
    assert [r.message.intent for r in topics["order.exec"]] == [early]
