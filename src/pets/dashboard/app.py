"""The operator's dashboard: `pets dashboard [--api URL]` runs this script with Streamlit.

Pages: Overview, P&L, Positions, Bot control, Risk monitor. Everything comes from the control API
(pets.dashboard.client); control buttons send the API's POSTs with PETS_API_TOKEN from the
environment. Paper P&L is labelled SIMULATED.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import altair as alt
import streamlit as st

from pets.dashboard import views
from pets.dashboard.client import ApiError, DeskClient

PAGES = ("Overview", "P&L", "Positions", "Bot control", "Risk monitor")
DEFAULT_API = "http://127.0.0.1:8000"


def _api_url() -> str:
    if "api_url" not in st.session_state:
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("--api", default=DEFAULT_API)
        known, _ = parser.parse_known_args(sys.argv[1:])
        st.session_state["api_url"] = known.api
    return str(st.session_state["api_url"])


def _client() -> DeskClient:
    return DeskClient(_api_url(), os.environ.get("PETS_API_TOKEN") or None)


def _act(client: DeskClient, path: str, what: str, **extra: Any) -> None:
    try:
        client.control(path, reason=f"dashboard: {what}", **extra)
    except ApiError as exc:
        st.error(str(exc))
    else:
        st.success(f"{what}: sent")


def _simulated_banner(health: dict[str, Any]) -> None:
    if health.get("simulated"):
        st.warning("SIMULATED: paper trading, the P&L shown is simulated.", icon="⚠")


def overview(client: DeskClient) -> None:
    st.header("Overview")
    halt, start, stop = st.columns(3)
    if halt.button("EMERGENCY HALT ALL", type="primary", key="halt_all"):
        _act(client, "/halt", "emergency halt")
    if start.button("START ALL", key="start_all"):
        _act(client, "/resume-trading", "resume trading")
        _act(client, "/bots/*/start", "start all bots")
    if stop.button("STOP", key="stop_all"):
        _act(client, "/bots/*/stop", "stop all bots")

    @st.fragment(run_every=1)
    def cards() -> None:
        pnl = client.get("/pnl", resolution=900)
        risk = client.get("/risk")
        state = risk["portfolio_state"]  # ACTIVE, REDUCING (daily loss: closing only) or HALTED
        (st.info if state == "ACTIVE" else st.error)(f"Trading: {state} {risk.get('reason', '')}")
        if pnl["simulated"]:
            st.caption("SIMULATED P&L")
        for column, card in zip(st.columns(4), views.overview_cards(pnl), strict=True):
            mark = "" if card.ok is None else (" ✓" if card.ok else " ✗")
            column.metric(card.label, card.value + mark, help=card.reference)
            column.caption(card.reference)

    cards()


def pnl_page(client: DeskClient) -> None:
    st.header("P&L")
    resolution = st.selectbox("Interval (s)", [10, 60, 300, 900, 3600], index=1, key="resolution")
    pnl = client.get("/pnl", resolution=resolution)
    if pnl["simulated"]:
        st.caption("SIMULATED P&L")
    rows = views.pnl_lines(pnl)
    if not rows:
        st.info("No P&L snapshots yet.")
        return
    lines = (
        alt.Chart(alt.Data(values=rows))
        .mark_line()
        .encode(
            x=alt.X("time:T", title="time (UTC)"),
            y=alt.Y("pnl:Q", title="P&L"),
            color="bot:N",
            tooltip=["bot:N", "time:T", "pnl:Q"],
        )
        .interactive()
    )
    st.altair_chart(lines, width="stretch")
    who = st.selectbox("Candlesticks of", sorted(pnl["series"]), key="candles_of")
    data = alt.Data(values=views.candles(pnl, who))
    base = alt.Chart(data).encode(
        x=alt.X("time:T", title="time (UTC)"),
        color=alt.condition("datum.open <= datum.close", alt.value("#06982d"), alt.value("#ae1325")),
        tooltip=["time:T", "open:Q", "high:Q", "low:Q", "close:Q"],
    )
    chart = base.mark_rule().encode(
        y=alt.Y("low:Q", title="equity", scale=alt.Scale(zero=False)), y2="high:Q"
    )
    chart = chart + base.mark_bar(size=6).encode(y="open:Q", y2="close:Q")
    st.altair_chart(chart.interactive(), width="stretch")


def positions_page(client: DeskClient) -> None:
    st.header("Positions")

    @st.fragment(run_every=1)
    def table() -> None:
        positions = client.get("/positions")
        if not positions:
            st.info("No open positions.")
            return
        columns = [
            "bot_id",
            "question",
            "side",
            "size",
            "entry",
            "current_price",
            "pnl",
            "zone",
            "duration_s",
        ]
        st.dataframe([{c: p[c] for c in columns} for p in positions], width="stretch")

    table()


def bot_control(client: DeskClient) -> None:
    st.header("Bot control")
    for bot in client.get("/bots"):
        label = f"{bot['bot_id']} {bot['name']}: {bot['state']}"
        with st.expander(label, expanded=bot["state"] not in ("RUNNING", "DISABLED")):
            a, b, c, d = st.columns(4)
            a.metric("Trades today", bot["trades_today"])
            b.metric("Win rate", f"{bot['win_rate'] * 100:.1f}%")
            c.metric("P&L" + (" (SIMULATED)" if bot["simulated"] else ""), bot["pnl"])
            latency = bot["avg_latency_ms"]
            d.metric("Signal -> order", "n/a" if latency is None else f"{latency:.1f} ms")
            st.caption(bot["reason"] or "")
            pause, stop, start, resume = st.columns(4)
            bot_id = bot["bot_id"]
            if pause.button("Pause", key=f"pause_{bot_id}"):
                _act(client, f"/bots/{bot_id}/pause", f"pause {bot_id}")
            if stop.button("Stop", key=f"stop_{bot_id}"):
                _act(client, f"/bots/{bot_id}/stop", f"stop {bot_id}")
            if start.button("Start", key=f"start_{bot_id}"):
                _act(client, f"/bots/{bot_id}/start", f"start {bot_id}")
            if resume.button("Resume", key=f"resume_{bot_id}"):
                _act(client, f"/bots/{bot_id}/resume", f"resume {bot_id}")
            if st.toggle("Configuration", key=f"config_{bot_id}"):
                st.json(client.get(f"/bots/{bot_id}/config"))


def risk_page(client: DeskClient) -> None:
    st.header("Risk monitor")
    risk = client.get("/risk")
    st.subheader(f"Trading state: {risk['portfolio_state']}")
    cells = views.heatmap(risk)
    if cells:
        heat = (
            alt.Chart(alt.Data(values=cells))
            .mark_rect()
            .encode(x="zone:O", y="bot:N", color="exposure:Q", tooltip=["bot:N", "zone:O", "exposure:Q"])
        )
        st.altair_chart(heat, width="stretch")
    else:
        st.info("No exposure.")
    for warning in views.loss_warnings(risk):
        st.warning(warning)
    st.dataframe(
        [
            {k: b[k] for k in ("bot_id", "state", "circuit_breaker", "consecutive_losses", "reason")}
            for b in risk["bots"]
        ],
        width="stretch",
    )
    st.subheader("Drawdown against limits")
    for who, drawdown, limit in views.gauges(risk):
        st.progress(min(1.0, drawdown / limit), text=f"{who}: {drawdown * 100:.2f}% of {limit * 100:.0f}%")


def main() -> None:
    st.set_page_config(page_title="PETS desk", layout="wide")
    client = _client()
    try:
        health = client.get("/health")
    except ApiError as exc:
        st.error(str(exc))
        return
    st.sidebar.title("PETS desk")
    page = st.sidebar.radio("Page", PAGES, key="page")
    st.sidebar.caption(f"API {client.base_url}: {health['status']} ({health['source']})")
    _simulated_banner(health)
    render = {
        "Overview": overview,
        "P&L": pnl_page,
        "Positions": positions_page,
        "Bot control": bot_control,
        "Risk monitor": risk_page,
    }[page]
    try:
        render(client)
    except ApiError as exc:
        st.error(str(exc))


main()
