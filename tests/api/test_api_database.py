"""The control API over a real PostgreSQL (rows written by the project's own writers) and the real
Kafka broker (control commands on bot.control): every endpoint, every auth case, the audit table."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from kafka_support import consume_until
from pets.api.app import create_app
from pets.api.control import AuditLog
from pets.api.database import DatabaseDesk
from pets.api.recovery import stored_flows
from pets.pipelines import tables
from pets.pipelines.migrations import migrate
from pets.pipelines.records import pnl_row, position_row, report_row
from pets.pipelines.tables import ts_from_ns
from pets.pipelines.timescale import TimescaleWriter
from pets.schemas.codec import decode
from pets.schemas.config import PetsConfig, load_config
from pets.schemas.control import ControlCommand
from pets.schemas.orders import ExecutionReport, PnlSnapshot, Position
from pets.settings import Settings

pytestmark = pytest.mark.integration

D = Decimal
TOKEN = "desk-token-7f3a"
M1, A1, A2 = "0xmarket1", "111", "222"


def _snap(bot: str, ts_ns: int, equity: str, trades: int, wins: int, losses: int) -> PnlSnapshot:
    e = D(equity)
    return PnlSnapshot(
        bot_id=bot, ts_ns=ts_ns, cash=e, equity=e, realized_pnl=D(0), unrealized_pnl=D(0), fees=D(0),
        rebates=D(0), exposure=D(0), open_orders=0, trades=trades, wins=wins, losses=losses,
        max_drawdown=D(0),
    )  # fmt: skip


def _report(order: str, kind: str, ts_ns: int, leaves: str, qty: str = "0", px: str | None = None) -> Any:
    return ExecutionReport(
        report_id=f"{order}:{kind}", client_order_id=order, venue_order_id=None, bot_id="bot_01",
        market=M1, asset_id=A1, side="BUY", kind=kind, order_price=D("0.41"), order_size=D(10),  # type: ignore[arg-type]
        last_qty=D(qty), last_px=None if px is None else D(px), cum_qty=D(qty), leaves_qty=D(leaves),
        ts_ns=ts_ns, source_ts_ms=ts_ns // 1_000_000,
    )  # fmt: skip


def write_desk_rows(dsn: str, now_ns: int) -> None:
    """bot_01's equity 1200 -> 1260 -> 1230 (one win, then two losses), an open order, a filled one,
    a position of 100 tokens at 0.40 marked at 0.45, two zone denials, a breaker alert, and states:
    bot_01 paused, the portfolio halted."""
    t = [now_ns - 3_000_000_000 + i * 1_000_000_000 for i in range(3)]
    pnl = [
        _snap("bot_01", t[0], "1200", 0, 0, 0), _snap("bot_01", t[1], "1260", 2, 1, 0),
        _snap("bot_01", t[2], "1230", 3, 1, 2),
        _snap("portfolio", t[0], "10000", 0, 0, 0), _snap("portfolio", t[1], "10060", 2, 1, 0),
        _snap("portfolio", t[2], "10030", 3, 1, 2),
    ]  # fmt: skip
    position = Position(
        bot_id="bot_01", market=M1, asset_id=A1, qty=D(100), avg_price=D("0.40"), cost=D("40.00"),
        realized_pnl=D(0), ts_ns=t[1],
    )  # fmt: skip
    tob = dict.fromkeys(tables.TOP_OF_BOOK.column_names)
    tob.update(
        ts=ts_from_ns(t[2]), asset_id=A1, market=M1, mid=D("0.45"), tick_size=D("0.01"), stale=False, seq=1
    )
    market = dict.fromkeys(tables.MARKETS.column_names)
    market.update(
        condition_id=M1, market_id="m1", question="Will it rain?", slug="rain", category="politics",
        token_ids=[A1, A2], outcomes=["Yes", "No"], neg_risk=False, tick_size=D("0.01"),
        min_order_size=D(5), active=True, closed=False, accepting_orders=True, ts=ts_from_ns(t[0]),
    )  # fmt: skip

    def denial(i: int) -> tuple[Any, ...]:
        return tables.ORDER_DENIALS.row({
            "ts": ts_from_ns(t[i]), "client_order_id": f"d{i}", "bot_id": "bot_01",
            "strategy_type": "arbitrage", "action": "place", "market": M1, "asset_id": A1, "side": "BUY",
            "price": D("0.9"), "size": D(5),
            "rule": "zone", "reason": "zone 5 allows complete-set arbitrage only",
        })  # fmt: skip

    with TimescaleWriter(dsn) as writer:
        writer.write("pnl_snapshots", [pnl_row(s) for s in pnl])
        writer.write("execution_reports", [
            report_row(_report("o1", "ack", t[0], "10")),
            report_row(_report("o2", "ack", t[0], "10")),
            report_row(_report("o2", "fill", t[1], "0", "10", "0.40")),
        ])  # fmt: skip
        writer.write("positions", [position_row(position)])
        writer.write("position_history", [position_row(position)])
        writer.write("top_of_book", [tables.TOP_OF_BOOK.row(tob)])
        writer.write("markets", [tables.MARKETS.row(market)])
        writer.write("order_denials", [denial(0), denial(1)])
        writer.write("risk_events", [tables.RISK_EVENTS.row({
            "ts": ts_from_ns(t[2]), "alert_id": "a1", "kind": "circuit_breaker", "bot_id": "bot_01",
            "rule": "consecutive_losses", "message": "2 losses", "severity": "warning", "until_ts": None,
        })])  # fmt: skip
        at = ts_from_ns(t[2])
        writer.write("bot_status", [
            tables.BOT_STATUS.row({"bot_id": "bot_01", "state": "PAUSED", "reason": "losses", "ts": at}),
            tables.BOT_STATUS.row({"bot_id": "*", "state": "HALTED", "reason": "operator", "ts": at}),
        ])  # fmt: skip


@pytest.fixture
def config(settings: Settings) -> PetsConfig:
    return load_config(settings.config_dir)


@pytest.fixture
def desk_settings(prefixed_settings: Settings, fresh_db: str) -> Iterator[Settings]:
    migrate(fresh_db)
    write_desk_rows(fresh_db, time.time_ns())
    yield replace(prefixed_settings, postgres_dsn=fresh_db)


def client(settings: Settings, config: PetsConfig, token: str | None = TOKEN) -> TestClient:
    desk = DatabaseDesk(settings, config, refresh_s=0)
    return TestClient(create_app(desk, config, token, AuditLog(dsn=settings.postgres_dsn)))


def test_reads(desk_settings: Settings, config: PetsConfig) -> None:
    api = client(desk_settings, config)
    health = api.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert {f["name"] for f in health.json()["flows"]} >= {"risk", "executor", "market_state"}

    bots = api.get("/bots").json()
    assert [b["bot_id"] for b in bots] == [b.id for b in config.bots]
    bot = bots[0]
    assert {"bot_id", "name", "strategy", "state", "trades", "pnl"} <= set(bot)
    # allocation 12% of 10,000 = 1,200; last equity 1,230
    assert (bot["state"], D(bot["pnl"]), bot["trades"]) == ("PAUSED", D(30), 3)
    assert bot["win_rate"] == round(1 / 3, 4)
    assert bot["max_drawdown"] == round(30 / 1260, 6)
    assert bot["trades_today"] == 1
    assert bots[1]["state"] == "RUNNING"  # no change stored for it: the risk engine's default

    (pos,) = api.get("/positions").json()
    assert (pos["side"], D(pos["size"]), D(pos["entry"]), D(pos["current_price"])) == (
        "Yes",
        100,
        D("0.4"),
        D("0.45"),
    )
    assert D(pos["pnl"]) == D(100) * D("0.45") - D(40)
    assert pos["zone"] == 3 and pos["category"] == "politics"
    assert pos["duration_s"] >= 2

    (order,) = api.get("/orders").json()
    assert order["client_order_id"] == "o1" and D(order["leaves"]) == 10
    (fill,) = api.get("/fills").json()
    assert fill["client_order_id"] == "o2" and D(fill["qty"]) == 10

    pnl = api.get("/pnl", params={"resolution": 86_400}).json()
    (day,) = [b for b in pnl["series"]["bot_01"]]
    assert (D(day["open"]), D(day["high"]), D(day["low"]), D(day["close"])) == (1200, 1260, 1200, 1230)
    assert D(pnl["portfolio"]["pnl"]) == 30
    assert api.get("/pnl", params={"resolution": 0}).status_code == 422

    risk = api.get("/risk").json()
    assert risk["trading_state"] == "halted"
    b1 = risk["bots"][0]
    assert b1["consecutive_losses"] == 2 and b1["circuit_breaker"] == "tripped"
    assert b1["drawdown"] == pytest.approx(30 / 1260)
    assert (b1["drawdown_limit"], risk["drawdown_limit"]) == (0.25, 0.40)
    assert D(risk["exposure_by_zone"]["3"]) == D(100) * D("0.45")
    assert D(risk["exposure_by_category"]["politics"]) == D(100) * D("0.45")

    (alert,) = api.get("/alerts").json()
    assert alert["rule"] == "consecutive_losses"
    assert api.get("/bots/bot_01/config").json()["id"] == "bot_01"
    assert api.get("/bots/bot_99/config").status_code == 404
    metrics = api.get("/metrics")
    assert metrics.status_code == 200 and "pets_api_request_duration_seconds_bucket" in metrics.text
    assert api.get("/openapi.json").json()["info"]["title"] == "PETS control API"


def _audit(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT actor, action, bot_id, reason, outcome, command_id FROM api_audit ORDER BY ts"
        ).fetchall()


def test_control_needs_the_token_and_is_audited(desk_settings: Settings, config: PetsConfig) -> None:
    api = client(desk_settings, config)
    dsn = desk_settings.postgres_dsn
    assert dsn
    assert api.post("/halt").status_code == 401
    wrong = api.post("/halt", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert api.post("/bots/bot_01/stop", headers={"Authorization": TOKEN}).status_code == 401  # no scheme
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Pets-Operator": "alice"}
    assert api.post("/bots/bot_99/start", headers=auth).status_code == 404
    sent = api.post("/bots/bot_01/pause", headers=auth, json={"reason": "checking", "for_s": 60})
    assert sent.status_code == 200, sent.text
    halted = api.post("/halt", headers=auth, json={"reason": "fire drill"})
    assert halted.status_code == 200

    values = consume_until(desk_settings, "bot.control", lambda v: len(v) >= 2, timeout_s=30)
    commands: list[ControlCommand] = [decode("bot.control", v) for v in values]
    assert [(c.command, c.bot_id, c.reason, c.issued_by) for c in commands] == [
        ("pause", "bot_01", "checking", "api:alice"),
        ("halt", "*", "fire drill", "api:alice"),
    ]
    assert commands[0].until_ns is not None and commands[0].until_ns - commands[0].ts_ns == pytest.approx(
        60e9, rel=0.01
    )
    rows = _audit(dsn)
    outcomes = [r[4].split(":")[0] for r in rows]
    assert outcomes == ["refused"] * 4 + ["requested", "sent"] * 2
    assert rows[-1][:4] == ("alice", "halt", "*", "fire drill")
    assert rows[-1][5] == commands[1].command_id
    assert api.get("/audit").json()[0]["command_id"] == commands[1].command_id


def test_without_a_token_control_is_refused(desk_settings: Settings, config: PetsConfig) -> None:
    api = client(desk_settings, config, token=None)
    for path in ("/halt", "/resume-trading", "/bots/bot_01/start", "/bots/bot_01/stop", "/bots/*/pause",
                 "/bots/bot_01/resume"):  # fmt: skip
        answer = api.post(path, headers={"Authorization": "Bearer anything"})
        assert answer.status_code == 401, path
        assert "PETS_API_TOKEN" in answer.json()["detail"]
    assert api.get("/bots").status_code == 200  # reads stay open


def test_cors_is_closed_by_default(desk_settings: Settings, config: PetsConfig) -> None:
    api = client(desk_settings, config)
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    answer = api.options("/halt", headers=preflight)
    assert "access-control-allow-origin" not in answer.headers
    assert (
        "access-control-allow-origin"
        not in api.get("/health", headers={"Origin": "https://evil.example"}).headers
    )


def test_events_see_a_new_fill(desk_settings: Settings, config: PetsConfig) -> None:
    dsn = desk_settings.postgres_dsn
    assert dsn
    desk = DatabaseDesk(desk_settings, config, refresh_s=0)
    start = desk.last_seq()
    with TimescaleWriter(dsn) as writer:
        writer.write(
            "execution_reports", [report_row(_report("o1", "fill", time.time_ns(), "0", "10", "0.41"))]
        )
    news = desk.events_after(start)
    assert [(e["type"], e["client_order_id"]) for e in news] == [("fill", "o1")]


def test_a_database_down_is_degraded_not_an_error(prefixed_settings: Settings, config: PetsConfig) -> None:
    down = replace(prefixed_settings, postgres_dsn="postgresql://postgres@127.0.0.1:1/none")
    api = TestClient(create_app(DatabaseDesk(down, config), config, TOKEN, AuditLog(dsn=down.postgres_dsn)))
    health = api.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert any("PostgreSQL" in p for p in health.json()["problems"])
    assert api.get("/bots").status_code == 200
    assert api.get("/risk").json()["trading_state"] == "active"

    # an audit that cannot be written refuses the action before anything is sent
    refused = api.post("/halt", headers={"Authorization": f"Bearer {TOKEN}"})
    assert refused.status_code == 503 and "audit" in refused.json()["detail"]
    from pets.pipelines.kafka_io import existing_topics

    assert f"{down.topic_prefix}bot.control" not in existing_topics(down)  # nothing was sent


def test_health_reads_a_flows_heartbeat_and_lag_from_its_recovery_store(
    desk_settings: Settings, config: PetsConfig, tmp_path: Path
) -> None:
    """`pets flow run risk` (a real Bytewax flow with its recovery store) reads two commands, is
    stopped, three more arrive: /health shows its snapshot's age and a lag of 3."""
    import os
    import subprocess
    import sys

    from pets.api.control import new_command, publish_command
    from pets.pipelines.kafka_io import ensure_topics

    settings = replace(desk_settings, state_dir=tmp_path / "state")
    ensure_topics(settings)  # every topic the flow reads
    for _ in range(2):
        publish_command(settings, lambda: new_command("pause", "bot_02", "lag test", "test"))
    env = {
        **os.environ,
        "PETS_TOPIC_PREFIX": settings.topic_prefix,
        "PETS_STATE_DIR": str(settings.state_dir),
        "PETS_POSTGRES_DSN": settings.postgres_dsn or "",
        "PETS_KAFKA_BOOTSTRAP": settings.require_kafka(),  # the state dir above holds no infra.json
    }
    flow = subprocess.Popen(
        [sys.executable, "-m", "pets.cli", "flow", "run", "risk", "--epoch-ms", "200"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    control = f"{settings.topic_prefix}bot.control"
    try:
        deadline = time.monotonic() + 60
        while True:
            stored = {f.name: f for f in stored_flows(settings.recovery_dir)}
            risk = stored.get("risk")
            if risk is not None and risk.offsets.get((control, 0)) == 2:
                break
            assert time.monotonic() < deadline, "the risk flow never snapshotted its input offsets"
            time.sleep(0.3)
    finally:
        flow.terminate()
        flow.wait(20)
    for _ in range(3):
        publish_command(settings, lambda: new_command("resume", "bot_02", "lag test", "test"))
    health = client(settings, config).get("/health").json()
    risk_health = {f["name"]: f for f in health["flows"]}["risk"]
    assert risk_health["consumer_lag"] == 3
    assert 0 <= risk_health["heartbeat_age_s"] < 120


def test_a_position_after_its_bids_vanished_is_priced_at_most_at_the_best_ask(
    desk_settings: Settings, config: PetsConfig
) -> None:
    """A one-sided latest top (a game's end: asks alone, down to 0.30) caps the last mid (0.45), as the
    flows mark it (schemas.market_data.mark_price); the stale mid showed a gain the book disproves."""
    one_sided = dict.fromkeys(tables.TOP_OF_BOOK.column_names)
    one_sided.update(
        ts=ts_from_ns(time.time_ns() + 1_000_000_000), asset_id=A1, market=M1, best_ask=D("0.30"),
        tick_size=D("0.01"), stale=False, seq=2,
    )  # fmt: skip
    with TimescaleWriter(desk_settings.postgres_dsn or "") as writer:
        writer.write("top_of_book", [tables.TOP_OF_BOOK.row(one_sided)])
    (pos,) = client(desk_settings, config).get("/positions").json()
    assert D(pos["current_price"]) == D("0.30")
    assert D(pos["pnl"]) == D(100) * D("0.30") - D(40)
