"""The executor flow in live mode on Bytewax's testing runtime: order.exec messages (TestingSource) are
placed at the local trading venue by the real py-clob-client-v2, and the reports are what the venue's
user channel says (ack, fills, cancel); heartbeats run; every missing opt-in piece refuses the start; a
crash replay of the approvals leaves each order once at the venue; a resume from a snapshot learns over
REST what the venue did while the executor was down, once."""

from __future__ import annotations

import base64
import dataclasses
import gc
import shutil
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main
from click.testing import CliRunner
from eth_account import Account

from pets.cli.flow import flow as flow_cli
from pets.execution.live import LiveRefusedError
from pets.flows.executor import build_flow
from pets.flows.recovery import recovery_store
from pets.flows.trading_io import Routed
from pets.pipelines.polymarket.user_ws import UserChannel
from pets.pipelines.venue_sim.user_server import (
    LocalTradingVenue,
    VenueOrder,
    binary_market,
    serve_trading_venue,
)
from pets.schemas.codec import encode
from pets.schemas.config import TradingMode, load_config
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderAction, OrderIntent
from pets.settings import Settings, VenueEndpoints, project_root

D = Decimal
T0 = 1_750_000_000_000
MARKET, YES, NO = "0xcond1", "1234", "5678"
TEST_KEY = "0x" + "4c" * 32  # a throwaway key made up for these tests, not a secret
SECRET = base64.urlsafe_b64encode(b"local-clob-test-secret-32-bytes!").decode()
ENV = {
    "PETS_LIVE": "true",
    "PETS_PRIVATE_KEY": TEST_KEY,
    "PETS_FUNDER": Account.from_key(TEST_KEY).address,
    "PETS_SIGNATURE_TYPE": "0",
    "PETS_CLOB_API_KEY": "test-api-key",
    "PETS_CLOB_SECRET": SECRET,
    "PETS_CLOB_PASSPHRASE": "pass",
}
CONFIG = load_config(project_root() / "config")
LIVE_CONFIG = msgspec.structs.replace(
    CONFIG,
    system=msgspec.structs.replace(
        CONFIG.system, trading=msgspec.structs.replace(CONFIG.system.trading, mode=TradingMode.LIVE)
    ),
)


@pytest.fixture
def venue() -> Iterator[LocalTradingVenue]:
    tokens = binary_market(MARKET, YES, NO)
    with serve_trading_venue(
        tokens, api_key="test-api-key", api_secret=SECRET, api_passphrase="pass"
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def stop_orphan_channels() -> Iterator[None]:
    yield
    stop_channels()


def stop_channels() -> None:
    """A run aborted by TestingSource.ABORT never closes its inputs: stop the user channels it left
    following the venue, as the death of its process would."""
    for channel in [o for o in gc.get_objects() if type(o) is UserChannel]:
        channel.stop()


def settings_at(venue: LocalTradingVenue) -> Settings:
    endpoints = VenueEndpoints(clob_url=venue.rest_url, ws_user_url=venue.ws_url)
    return Settings(config_dir=project_root() / "config", topic_prefix="", venue=endpoints)


def live_flow(
    venue: LocalTradingVenue, messages: list[Any], out: list[Routed], rows: list[Any], user_idle_stop_s: float
) -> Dataflow:
    """The live executor flow against `venue`, fed `messages` (batches of 10), heartbeats every 0.1 s."""
    return build_flow(
        settings_at(venue),
        TestingSource(messages, batch_size=10),
        TestingSink(out),
        db_sink=TestingSink(rows),
        config=LIVE_CONFIG,
        live=True,
        environ=ENV,
        heartbeat_s=0.1,
        user_idle_stop_s=user_idle_stop_s,
    )


def order_exec(
    client_id: str, side: str, price: str, size: str, *, action: OrderAction = "place", bot: str = "bot_05"
) -> KafkaSourceMessage[Any, Any]:
    intent = OrderIntent(
        client_order_id=client_id,
        bot_id=bot,
        strategy_type="market_making",
        action=action,
        market=MARKET if action != "cancel_all" else "*",
        asset_id=YES if action != "cancel_all" else "*",
        side=side,  # type: ignore[arg-type]
        price=D(price),
        size=D(size),
        source_ts_ms=T0,
        created_ns=T0 * 1_000_000,
    )
    approved = ApprovedOrder(intent=intent, size=D(size), approved_ns=T0 * 1_000_000, sequence=1)
    return KafkaSourceMessage(key=MARKET.encode(), value=encode(approved), topic="order.exec")


def test_live_executor_places_at_the_venue_and_reports_the_user_channel(venue: LocalTradingVenue) -> None:
    def fill_a(order: VenueOrder) -> None:  # a taker hits our bid in two trades right after placement
        if order.price == D("0.45"):
            venue.fill(order.id, "4")
            venue.fill(order.id, "6", cross=True)

    venue.on_post = fill_a
    messages = [
        order_exec("a", "BUY", "0.45", "10"),
        order_exec("b", "BUY", "0.40", "10"),
        order_exec("c", "BUY", "0.405", "10"),  # off the venue's 0.01 grid: refused before sending
        order_exec("halt-1", "BUY", "0", "0", action="cancel_all", bot="*"),
    ]
    out: list[Routed] = []
    rows: list[Any] = []
    flow = live_flow(venue, messages, out, rows, user_idle_stop_s=1.5)
    run_main(flow)
    reports: list[ExecutionReport] = [r.message for r in out if r.topic == "exec.report"]
    by_order: dict[str, list[tuple[str, Decimal, Decimal]]] = {}
    for report in reports:
        by_order.setdefault(report.client_order_id, []).append(
            (report.kind, report.last_qty, report.leaves_qty)
        )
    assert by_order == {
        "a": [("ack", D(0), D(10)), ("partial_fill", D(4), D(6)), ("fill", D(6), D(0))],
        "b": [("cancel", D(0), D(0))],  # the halt cancelled it before its PLACEMENT arrived: no ack
        "c": [("reject", D(0), D(0))],
    }
    assert [r.asset_id for r in reports if r.last_qty] == [YES, YES]  # the crossed trade was on NO
    posted = [(m, p, len(b) if isinstance(b, list) else 1) for m, p, _, b in venue.requests if m == "POST"]
    assert ("POST", "/orders", 2) in posted  # a and b went out in one batch
    assert ("DELETE", "/cancel-all") in [(m, p) for m, p, _, _ in venue.requests]
    assert venue.heartbeats >= 1 and venue.open_orders() == []
    assert "/data/trades" not in [path for _, path, _, _ in venue.requests]  # a fresh start: no reconcile
    assert any(r.topic == "pnl.snapshot" for r in out)
    assert [name for name, _ in rows].count("execution_reports") == len(reports)


@pytest.mark.parametrize(
    "missing",
    [
        "PETS_LIVE",
        "PETS_PRIVATE_KEY",
        "PETS_FUNDER",
        "PETS_SIGNATURE_TYPE",
        "PETS_CLOB_SECRET",
        "trading.mode",
    ],
)
def test_the_live_executor_refuses_to_start_naming_what_is_missing(
    missing: str, venue: LocalTradingVenue
) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    config = CONFIG if missing == "trading.mode" else LIVE_CONFIG
    with pytest.raises(LiveRefusedError, match=missing.replace(".", r"\.")) as refused:
        build_flow(
            settings_at(venue), TestingSource([]), TestingSink([]), config=config, live=True, environ=env
        )
    assert SECRET not in str(refused.value) and TEST_KEY not in str(refused.value)
    assert venue.requests == []  # nothing was sent to the venue


def test_a_venue_without_collateral_refuses_the_start(venue: LocalTradingVenue) -> None:
    venue.balance = "0"
    with pytest.raises(LiveRefusedError, match="no pUSD balance"):
        build_flow(
            settings_at(venue), TestingSource([]), TestingSink([]), config=LIVE_CONFIG, live=True, environ=ENV
        )


def test_pets_flow_run_live_without_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PETS_ROOT", str(tmp_path))  # no secrets.env there
    monkeypatch.setenv("PETS_CONFIG_DIR", str(project_root() / "config"))
    result = CliRunner().invoke(flow_cli, ["run", "executor", "--live", "--no-recovery"])
    assert result.exit_code != 0
    assert "live trading refused" in result.output and "--live flag" not in result.output
    assert "PETS_LIVE=true" in result.output and "PETS_PRIVATE_KEY" in result.output
    other = CliRunner().invoke(flow_cli, ["run", "bots", "--live"])
    assert other.exit_code != 0 and "executor flow only" in other.output


def test_paper_stays_the_default(venue: LocalTradingVenue) -> None:
    flow = build_flow(
        dataclasses.replace(settings_at(venue)),
        TestingSource([order_exec("p", "BUY", "0.45", "10")]),
        TestingSink(out := []),  # type: ignore[var-annotated]
        db_sink=TestingSink([]),
        config=LIVE_CONFIG,
        environ=ENV,
    )
    run_main(flow)
    assert venue.requests == []  # without live=True nothing reaches the venue
    assert [r.message.kind for r in out if r.topic == "exec.report"] == ["reject"]  # paper: no book yet


def test_a_crash_replay_of_the_approvals_places_each_order_once(
    venue: LocalTradingVenue, tmp_path: Path
) -> None:
    """Run 1 posts a and b and crashes before its epoch closes (no snapshot holds them); run 2 resumes
    from the recovery store, Kafka re-delivers a and b, and then c arrives."""
    messages = [
        order_exec("a", "BUY", "0.45", "10"),
        order_exec("b", "BUY", "0.40", "10"),
        TestingSource.PAUSE(timedelta(seconds=0.3)),  # a and b reach the venue before the crash
        TestingSource.ABORT(),
        order_exec("c", "BUY", "0.35", "10"),
    ]
    recovery = recovery_store(tmp_path / "recovery")
    runs: list[list[ExecutionReport]] = []
    for run in range(2):
        out: list[Routed] = []
        flow = live_flow(venue, messages, out, [], user_idle_stop_s=1.0)
        run_main(flow, epoch_interval=timedelta(hours=1), recovery_config=recovery)
        runs.append([r.message for r in out if r.topic == "exec.report"])
        if run == 0:
            assert len(venue.orders) == 2  # the crash came after a and b were placed
    posts = [(p, b) for m, p, _, b in venue.requests if m == "POST" and p in ("/order", "/orders")]
    assert sum(len(body) if path == "/orders" else 1 for path, body in posts) == 5  # a, b sent twice
    assert len(venue.orders) == 3 and len(venue.open_orders()) == 3  # yet the venue holds a, b, c once
    replayed = [(r.client_order_id, r.kind) for r in runs[1] if r.client_order_id in ("a", "b")]
    assert replayed == [("a", "ack"), ("b", "ack")]  # adopted: live, not rejected, not placed again
    by_client = {r.client_order_id: r.venue_order_id for r in runs[1] if r.kind == "ack"}
    assert {by_client["a"], by_client["b"]} <= set(venue.orders)
    assert not any(r.kind == "reject" for run_reports in runs for r in run_reports)


def test_a_resumed_executor_learns_once_what_the_venue_did_while_it_was_down(
    venue: LocalTradingVenue, tmp_path: Path
) -> None:
    """Run 1 places a and b, hears their acks, snapshots and crashes. While it is down the venue fills 4
    of a and cancels b (nobody is subscribed: those events reach no one). Resumed from the snapshot, the
    executor reconciles over REST right after subscribing: a's partial fill and b's cancel, nothing else;
    a second resume from the same snapshot gives the same reports (ids included), and a resume from the
    state the first resume left reports nothing more."""
    messages = [
        order_exec("a", "BUY", "0.45", "10"),
        order_exec("b", "BUY", "0.40", "10"),
        TestingSource.PAUSE(timedelta(seconds=0.6)),  # the acks arrive and epochs close meanwhile
        TestingSource.ABORT(),
    ]

    def run(store: Path) -> tuple[list[ExecutionReport], list[Any]]:
        out: list[Routed] = []
        rows: list[Any] = []
        flow = live_flow(venue, messages, out, rows, user_idle_stop_s=1.0)
        run_main(flow, epoch_interval=timedelta(milliseconds=100), recovery_config=recovery_store(store))
        return [r.message for r in out if r.topic == "exec.report"], rows

    def reconciles() -> list[str]:
        return [query["after"] for _, path, query, _ in venue.requests if path == "/data/trades"]

    store = tmp_path / "recovery"
    first, _ = run(store)
    stop_channels()  # the crash: run 1's user channel is gone with it
    assert [(r.client_order_id, r.kind) for r in first] == [("a", "ack"), ("b", "ack")]
    assert reconciles() == []
    last_event_ms = max(int(event["timestamp"]) for event in venue.published)  # what run 1 heard last
    shutil.copytree(store, tmp_path / "same_snapshot")
    venue_a, venue_b = (r.venue_order_id or "" for r in first)
    venue.fill(venue_a, "4")
    venue._cancel([venue_b])
    assert venue.subscriber_count() == 0

    resumed, rows = run(store)
    got = [(r.client_order_id, r.kind, r.last_qty, r.leaves_qty, r.venue_order_id) for r in resumed]
    assert got == [("a", "partial_fill", D(4), D(6), venue_a), ("b", "cancel", D(0), D(0), venue_b)]
    assert reconciles() == [str(last_event_ms // 1000 - 60)]  # since just before the snapshot's last event
    assert [name for name, _ in rows].count("positions") == 1  # a's 4 shares, counted once
    again, _ = run(tmp_path / "same_snapshot")
    assert again == resumed  # the same reports, ids and venue timestamps included: stored once downstream
    after_resume, _ = run(store)  # from what the first resume left: the fill and the cancel are known
    assert len(reconciles()) == 3 and after_resume == []
    assert [o.id for o in venue.open_orders()] == [venue_a] and len(venue.orders) == 2
