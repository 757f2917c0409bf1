"""The control API over an in-process run (`pets run --api-port`): it never changes what the run
decides, its commands reach the loop between inputs, and /events streams what happened."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from pets.api import run_desk
from pets.api.app import create_app
from pets.api.control import AuditLog
from pets.api.run_desk import RunDesk
from pets.runtime import sources
from pets.runtime.journal import Journal
from pets.runtime.loop import TradingLoop
from pets.schemas.config import PetsConfig, load_config
from pets.settings import Settings

TOKEN = "run-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def config() -> PetsConfig:
    from pets.settings import load_settings

    settings: Settings = load_settings()
    return load_config(settings.config_dir)


def _run(config: PetsConfig, served: bool, duration_s: float = 120) -> tuple[TradingLoop, RunDesk | None]:
    source = sources.simulated(config, duration_s=duration_s)
    journal = Journal()
    loop = TradingLoop(config, source.markets, journal=journal)
    inputs: Any = source.events() if source.events is not None else source.frames
    desk = None
    if served:
        desk = RunDesk(loop, journal)
        inputs = desk.feed(inputs)
    loop.run(inputs)
    return loop, desk


def test_serving_does_not_change_the_run(config: PetsConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_desk, "PUBLISH_S", 0.0)  # publish between every few inputs
    plain, _ = _run(config, served=False)
    served, desk = _run(config, served=True)
    assert desk is not None and desk.sequence > 0
    assert served.report() == plain.report()
    assert served.stats.topics == plain.stats.topics


def test_a_run_served(config: PetsConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_desk, "PUBLISH_S", 0.0)
    loop, desk = _run(config, served=True)
    assert desk is not None
    desk.finished = True
    desk.publish()
    api = TestClient(create_app(desk, config, TOKEN, AuditLog()))
    health = api.get("/health").json()
    assert (health["status"], health["source"], health["simulated"]) == ("ok", "run", True)
    bots = api.get("/bots").json()
    report = loop.report()
    assert {b["bot_id"] for b in bots if b["state"] != "DISABLED"} == set(report) - {"portfolio"}
    for bot in (b for b in bots if b["bot_id"] in report):
        line = report[bot["bot_id"]]
        assert (bot["trades"], bot["win_rate"], bot["sharpe"]) == (line.trades, line.win_rate, line.sharpe)
        assert bot["pnl"] == str(line.pnl)
    fills = api.get("/fills", params={"limit": 500}).json()
    assert len(fills) == min(500, len(loop.journal.fills) if loop.journal else 0)
    positions = api.get("/positions").json()
    assert len(positions) == sum(1 for p in loop.portfolio.positions() if p.qty != 0)
    risk = api.get("/risk").json()
    assert risk["portfolio_state"] == loop.risk.snapshot()["state"]
    assert risk["trading_state"] == ("active" if risk["portfolio_state"] == "ACTIVE" else "halted")
    assert len(api.get("/orders").json()) == len(loop.exchange.orders)

    # /events from the start of the run: what happened, in order
    with api.websocket_connect("/events?after=0") as socket:
        first = socket.receive_json()
    assert first["seq"] == 1 and first["type"] in {"fill", "denial", "alert", "bot_state"}
    kinds = {e["type"] for e in desk.events_after(0)}
    assert "fill" in kinds

    # control after the run: applied by the serving loop, seen through the API
    assert api.post("/halt", headers=AUTH, json={"reason": "drill"}).status_code == 200
    desk.apply_commands()
    risk = api.get("/risk").json()
    assert (risk["trading_state"], risk["portfolio_state"]) == ("halted", "HALTED")
    assert "drill" in risk["reason"]
    assert desk.events_after(0)[-1]["type"] == "bot_state"
    assert api.post("/resume-trading", headers=AUTH).status_code == 200
    assert api.post("/bots/bot_05/stop", headers=AUTH).status_code == 200
    desk.apply_commands()
    assert api.get("/risk").json()["trading_state"] == "active"
    assert {b["bot_id"]: b["state"] for b in api.get("/bots").json()}["bot_05"] == "STOPPED"
    sent = [a["action"] for a in api.get("/audit").json() if a["outcome"] == "sent"]
    assert sent == ["stop", "resume_trading", "halt"]


def test_a_halt_asked_before_the_run_stops_all_trading(config: PetsConfig) -> None:
    source = sources.simulated(config, duration_s=60)
    journal = Journal()
    loop = TradingLoop(config, source.markets, journal=journal)
    desk = RunDesk(loop, journal)
    api = TestClient(create_app(desk, config, TOKEN, AuditLog()))
    assert api.post("/halt", headers=AUTH).status_code == 200
    loop.run(desk.feed(source.events() if source.events is not None else source.frames))
    assert journal.approved == [] or all(a.intent.action == "cancel_all" for a in journal.approved)
    assert journal.fills == []
    assert api.get("/risk").json()["trading_state"] == "halted"


def test_without_a_token_the_server_binds_to_localhost() -> None:
    from pets.api.server import bind_host

    assert bind_host("0.0.0.0", None)[0] == "127.0.0.1"
    assert "PETS_API_TOKEN" in (bind_host("0.0.0.0", None)[1] or "")
    assert bind_host("0.0.0.0", "secret") == ("0.0.0.0", None)
    assert bind_host("127.0.0.1", None) == ("127.0.0.1", None)
