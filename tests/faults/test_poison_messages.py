"""A poison message (malformed, ~900 KB) on a flow's input is dead-lettered and the flow goes on.

Before: the dead letter carried the whole payload JSON-escaped (control characters grow 6x), over
the broker's 1 MB message limit; writing it failed (MSG_SIZE_TOO_LARGE), the flow died, restarted
on the same message and died again. Now inputs over `max_message_bytes` are dead-lettered unparsed
and every dead letter keeps at most 64 KiB of its input with the input's size and sha256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from bytewax.testing import run_main
from click.testing import CliRunner

from kafka_support import consume_until
from pets.cli import main
from pets.flows import bots, executor, market_state, risk
from pets.flows.trading_io import kafka_source
from pets.pipelines.kafka_io import ensure_topics, producer
from pets.schemas.codec import decode, encode
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo
from pets.schemas.orders import ApprovedOrder, OrderIntent
from pets.settings import Settings

BROKER_LIMIT = 1_000_000  # librdkafka's message.max.bytes default; the broker's is 1,048,588
MARKET = "0xpoison"
YES, NO = "111", "222"
T0 = 1_750_000_000_000

# ~900 KB that is not JSON: raw control characters, each escaped to 6 bytes in a whole-payload letter
POISON = b'{"event_type":"book","asset_id":"' + b"\x01" * 900_000


def _settings(base: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(base, postgres_dsn=None, **changes)


def _produce(settings: Settings, topic: str, values: list[bytes], key: bytes = b"k") -> None:
    kafka = producer(settings, max_request_size=2_000_000)
    try:
        for value in values:
            kafka.send(f"{settings.topic_prefix}{topic}", key=key, value=value).get(timeout=30)
    finally:
        kafka.close()


def _check_letter(raw: bytes, topic: str) -> DeadLetter:
    assert len(raw) < BROKER_LIMIT
    letter: DeadLetter = decode(topic, raw)
    assert letter.truncated
    assert letter.payload_size == len(POISON)
    assert letter.payload_sha256 == hashlib.sha256(POISON).hexdigest()
    assert POISON.startswith(letter.raw_bytes())
    return letter


def _book(ts: int) -> bytes:
    return json.dumps({
        "event_type": "book", "asset_id": YES, "market": MARKET, "timestamp": str(ts), "hash": "h",
        "bids": [{"price": "0.48", "size": "10"}], "asks": [{"price": "0.52", "size": "10"}],
    }).encode()  # fmt: skip


INFO = MarketInfo(
    condition_id=MARKET, market_id="9", question="q", slug="s", category="sports", token_ids=(YES, NO),
    outcomes=("Yes", "No"), neg_risk=False, tick_size=D("0.01"), min_order_size=D(5), active=True,
    closed=False, accepting_orders=True,
)  # fmt: skip


@pytest.fixture
def isolated(prefixed_settings: Settings) -> Iterator[Settings]:
    yield _settings(prefixed_settings)


@pytest.mark.integration
@pytest.mark.parametrize("limit", [None, 2_000_000], ids=["over-the-input-limit", "parsed-and-refused"])
def test_market_state_dead_letters_a_poison_frame_and_goes_on(isolated: Settings, limit: int | None) -> None:
    settings = isolated if limit is None else dataclasses.replace(isolated, max_message_bytes=limit)
    ensure_topics(settings, ["md.book", "md.markets", "md.tob", "dlq.market_data"])
    _produce(settings, "md.markets", [POISON], key=MARKET.encode())
    _produce(settings, "md.book", [POISON, _book(T0)], key=MARKET.encode())
    run_main(market_state.build_flow(settings, market_infos=[INFO], tail=False))
    dead = consume_until(settings, "dlq.market_data", lambda got: len(got) >= 2)
    letters = [_check_letter(raw, "dlq.market_data") for raw in dead]
    assert sorted(letter.topic or "" for letter in letters) == [
        f"{settings.topic_prefix}md.book", f"{settings.topic_prefix}md.markets"
    ]  # fmt: skip
    assert all(("exceeds the input limit" in letter.reason) == (limit is None) for letter in letters)
    tops = [decode("md.tob", v) for v in consume_until(settings, "md.tob", lambda got: len(got) >= 1)]
    assert [(t.asset_id, t.best_bid, t.best_ask) for t in tops] == [(YES, D("0.48"), D("0.52"))]


def _intent(cid: str) -> OrderIntent:
    return OrderIntent(
        client_order_id=cid, bot_id="bot_01", strategy_type="arbitrage", action="place", market=MARKET,
        asset_id=YES, side="BUY", price=D("0.5"), size=D(10), category="sports", source_ts_ms=T0,
        created_ns=T0 * 1_000_000,
    )  # fmt: skip


@pytest.mark.integration
def test_risk_dead_letters_poison_on_every_input_and_decides_the_next_intent(isolated: Settings) -> None:
    ensure_topics(isolated, [*risk.INPUT_TOPICS, "order.exec", "order.denied", "risk.alert", "dlq.trading"])
    for topic in risk.INPUT_TOPICS:  # one poison message on every input
        _produce(isolated, topic, [POISON])
    _produce(isolated, "order.intent", [encode(_intent("good-1"))])
    source = kafka_source(isolated, risk.INPUT_TOPICS, tail=False)
    run_main(risk.build_flow(isolated, source))
    dead = consume_until(isolated, "dlq.trading", lambda got: len(got) >= len(risk.INPUT_TOPICS))
    topics = sorted(_check_letter(raw, "dlq.trading").topic or "" for raw in dead)
    assert topics == sorted(f"{isolated.topic_prefix}{topic}" for topic in risk.INPUT_TOPICS)
    (denied,) = consume_until(isolated, "order.denied", lambda got: len(got) >= 1)
    assert decode("order.denied", denied).intent.client_order_id == "good-1"  # unknown market: decided


@pytest.mark.integration
def test_bots_dead_letter_a_poison_top_of_book_and_go_on(isolated: Settings) -> None:
    ensure_topics(isolated, [*bots.INPUT_TOPICS, "order.intent", "dlq.trading"])
    _produce(isolated, "md.tob", [POISON])
    _produce(isolated, "bot.control", [b"{not json"])  # the next message: dead-lettered too, so read
    run_main(bots.build_flow(isolated, kafka_source(isolated, bots.INPUT_TOPICS, tail=False)))
    raw = consume_until(isolated, "dlq.trading", lambda got: len(got) >= 2)
    letters = [decode("dlq.trading", v) for v in raw]
    assert sorted(letter.payload_size or 0 for letter in letters) == [9, len(POISON)]


@pytest.mark.integration
def test_pets_replay_to_kafka_dead_letters_a_10_mb_frame_and_goes_on(
    isolated: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = json.loads(_book(T0 + 1))
    huge["bids"] = [{"price": "0.01", "size": "1"}] * 370_000  # valid, ~10 MB: more than Kafka takes
    frames = [_book(T0), json.dumps(huge).encode(), _book(T0 + 2)]
    assert len(frames[1]) > 10_000_000
    recording = tmp_path / "huge.jsonl"
    recording.write_bytes(b"\n".join(frames) + b"\n")
    monkeypatch.setenv("PETS_KAFKA_BOOTSTRAP", isolated.kafka_bootstrap or "")
    monkeypatch.setenv("PETS_TOPIC_PREFIX", isolated.topic_prefix)
    result = CliRunner().invoke(main, ["replay", str(recording), "--to", "kafka", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["frames"], summary["parsed"], summary["dead_lettered"], summary["produced"]) == (
        3,
        2,
        1,
        2,
    )
    (dead,) = consume_until(isolated, "dlq.market_data", lambda got: len(got) >= 1)
    assert len(dead) < BROKER_LIMIT
    letter = decode("dlq.market_data", dead)
    assert letter.truncated and letter.payload_size == len(frames[1])
    assert letter.payload_sha256 == hashlib.sha256(frames[1]).hexdigest()


@pytest.mark.integration
def test_executor_dead_letters_a_poison_order_and_executes_the_next(isolated: Settings) -> None:
    ensure_topics(
        isolated, [*executor.INPUT_TOPICS, "exec.report", "pnl.snapshot", "risk.alert", "dlq.trading"]
    )
    order = ApprovedOrder(intent=_intent("good-2"), size=D(10), approved_ns=T0 * 1_000_000, sequence=1)
    _produce(isolated, "order.exec", [POISON, encode(order)])
    run_main(executor.build_flow(isolated, tail=False))
    (dead,) = consume_until(isolated, "dlq.trading", lambda got: len(got) >= 1)
    _check_letter(dead, "dlq.trading")
    raw = consume_until(isolated, "exec.report", lambda got: len(got) >= 1)
    reports = [decode("exec.report", v) for v in raw]
    assert [r.client_order_id for r in reports][:1] == ["good-2"]  # no book yet: refused, but decided
