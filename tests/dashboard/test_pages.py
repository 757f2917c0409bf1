"""The dashboard's pages with Streamlit's AppTest, over a real control API serving a paper run."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

import pets.dashboard
from desk_support import TOKEN, ServedRun
from pets.dashboard import views

APP = str(Path(pets.dashboard.__file__).with_name("app.py"))


def _app(url: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["api_url"] = url
    return at.run()


def _page(at: AppTest, name: str) -> AppTest:
    at.sidebar.radio(key="page").set_value(name)
    at.run()
    assert not at.exception, at.exception
    return at


def test_pages_render(served_run: ServedRun, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(served_run.url)
    assert not at.exception, at.exception
    assert any("SIMULATED" in w.value for w in at.warning)
    labels = [m.label for m in at.metric]
    assert labels == ["Total ROI", "Sharpe", "Max drawdown", "Win rate"]
    pnl = httpx.get(f"{served_run.url}/pnl", params={"resolution": 900}).json()
    assert at.metric[0].value.startswith(f"{pnl['portfolio']['roi'] * 100:.2f}%")

    at = _page(at, "P&L")
    assert len(at.get("vega_lite_chart")) == 2  # the lines and the candlesticks
    at = _page(at, "Positions")
    positions = httpx.get(f"{served_run.url}/positions").json()
    assert (len(at.dataframe) == 1) == bool(positions)
    at = _page(at, "Bot control")
    assert len(at.expander) == 10
    at = _page(at, "Risk monitor")
    risk = httpx.get(f"{served_run.url}/risk").json()
    assert at.subheader[0].value == f"Trading state: {risk['portfolio_state']}"
    assert len(at.get("progress")) == len(views.gauges(risk))


def test_halt_without_a_token_is_refused(served_run: ServedRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PETS_API_TOKEN", raising=False)
    at = _app(served_run.url)
    at.button(key="halt_all").click().run()
    assert any("401" in e.value for e in at.error)
    assert httpx.get(f"{served_run.url}/risk").json()["portfolio_state"] != "HALTED"


def test_halt_and_start_all(served_run: ServedRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETS_API_TOKEN", TOKEN)
    at = _app(served_run.url)
    at.button(key="halt_all").click().run()
    # the trading card turns red once the halt has landed (it may already have): no other error
    assert not at.exception and [e.value for e in at.error if not e.value.startswith("Trading: ")] == []
    risk = _until(served_run.url, lambda r: r["trading_state"] == "halted")
    assert risk["portfolio_state"] == "HALTED"
    at.button(key="start_all").click().run()
    # resumed: no longer halted (the engine may stand in REDUCING after a losing day, as risk decides)
    resumed = _until(served_run.url, lambda r: r["trading_state"] == "active")
    assert resumed["trading_state"] == "active" and resumed["portfolio_state"] != "HALTED"


def test_views_arithmetic() -> None:
    pnl = {
        "portfolio": {"roi": 0.0125, "sharpe": None, "max_drawdown": 0.5, "win_rate": 0.75, "round_trips": 4},
        "limits": {"portfolio_drawdown": 0.4},
    }
    roi, sharpe, drawdown, win = views.overview_cards(pnl)
    assert (roi.value, roi.ok) == ("1.25%", True)
    assert (sharpe.value, sharpe.ok) == ("n/a", None)
    assert (drawdown.value, drawdown.ok, drawdown.reference) == ("50.00%", False, "limit 40.00%")
    assert (win.value, win.ok) == ("75.00%", True)
    risk = {
        "exposure_by_zone": {"1": "0", "3": "5"},
        "exposure_by_bot_zone": {"bot_01": {"3": "5"}},
        "bots": [
            {"bot_id": "bot_01", "consecutive_losses": 2, "consecutive_losses_limit": 3, "drawdown": 0.1,
             "drawdown_limit": 0.25},
            {"bot_id": "bot_02", "consecutive_losses": 1, "consecutive_losses_limit": 3, "drawdown": None,
             "drawdown_limit": 0.25},
        ],
        "drawdown": 0.02,
        "drawdown_limit": 0.4,
    }  # fmt: skip
    assert views.heatmap(risk) == [
        {"bot": "bot_01", "zone": "1", "exposure": 0.0},
        {"bot": "bot_01", "zone": "3", "exposure": 5.0},
    ]
    assert views.loss_warnings(risk) == ["bot_01: 2 consecutive losses (breaker at 3)"]
    assert views.gauges(risk) == [("portfolio", 0.02, 0.4), ("bot_01", 0.1, 0.25)]


def _until(url: str, ok: object, timeout_s: float = 30) -> dict[str, object]:
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        risk: dict[str, object] = httpx.get(f"{url}/risk").json()
        if ok(risk) or time.monotonic() > deadline:  # type: ignore[operator]
            return risk
        time.sleep(0.1)
