"""`pets run` end to end in one process: the simulator, the journal contract, the report, exact P&L."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from pets.cli.run import report_command, run
from pets.schemas.config import load_config
from pets.settings import project_root

CONFIG = load_config(project_root() / "config")
ENABLED = sorted(bot.id for bot in CONFIG.bots if bot.enabled)
REPORT_KEYS = {
    "trades", "win_rate", "pnl", "roi", "sharpe", "sortino", "max_drawdown", "fees", "rebates", "edge_quoted",
    "edge_captured", "markouts", "denials_by_reason",
}  # fmt: skip
LINES = sorted([*ENABLED, "portfolio"])
JOURNAL_COLUMNS = {
    "intents": {"bot_id", "market", "asset_id", "side", "price", "size", "source_ts_ms", "client_order_id"},
    "approved": {"bot_id", "client_order_id", "size", "requested_size", "sequence"},
    "denials": {"bot_id", "client_order_id", "rule", "reason"},
    "fills": {"bot_id", "asset_id", "side", "last_qty", "last_px", "fee", "rebate", "liquidity"},
    "positions": {"bot_id", "market", "asset_id", "qty", "avg_price", "cost", "realized_pnl"},
    "pnl": {"bot_id", "ts_ns", "cash", "equity", "realized_pnl", "unrealized_pnl", "fees", "rebates"},
}


def _run(args: list[str]) -> tuple[dict[str, Any], str]:
    result = CliRunner().invoke(run, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    journal = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PETS_MODE", "embedded")
        mp.delenv("PETS_POSTGRES_DSN", raising=False)
        report, _ = _run(["--duration", "120", "--journal", str(journal), "--json"])
    return report, journal


def test_json_report_contract_and_every_enabled_bot_trades(sim_run: tuple[dict[str, Any], Path]) -> None:
    report, _ = sim_run
    assert sorted(report) == LINES
    for bot_id, line in report.items():
        assert set(line) >= REPORT_KEYS, bot_id
        assert line["trades"] > 0, f"{bot_id} made no trade on the simulator"
        assert isinstance(line["denials_by_reason"], dict)
        # two minutes of venue time: far fewer than 30 fifteen-minute intervals
        assert line["sharpe"] is None and line["sortino"] is None


def test_the_portfolio_line_adds_up_the_bots_and_the_journal(sim_run: tuple[dict[str, Any], Path]) -> None:
    report, journal = sim_run
    bots = [report[bot_id] for bot_id in ENABLED]
    portfolio = report["portfolio"]
    fills = pl.read_parquet(journal / "fills.parquet")
    pnl = pl.read_parquet(journal / "pnl.parquet")
    final = pnl.filter((pl.col("bot_id") == "portfolio") & (pl.col("ts_ns") == pnl["ts_ns"].max())).row(
        0, named=True
    )
    assert portfolio["trades"] == sum(line["trades"] for line in bots) == fills.height
    fees = sum((Decimal(str(line["fees"])) for line in bots), Decimal(0))
    assert Decimal(str(portfolio["fees"])) == fees == sum(fills["fee"].to_list(), Decimal(0))
    total = sum((Decimal(str(line["pnl"])) for line in bots), Decimal(0))
    assert Decimal(str(portfolio["pnl"])) == total == final["equity"] - CONFIG.system.trading.starting_capital


def test_the_news_bots_trade_on_the_simulators_signals(sim_run: tuple[dict[str, Any], Path]) -> None:
    """Bots 4 and 7 buy only because of a signal, which each of their entries names."""
    _, journal = sim_run
    intents = pl.read_parquet(journal / "intents.parquet")
    for bot_id, sources in (("bot_04", {"news"}), ("bot_07", {"news", "model"})):
        buys = intents.filter((pl.col("bot_id") == bot_id) & (pl.col("side") == "BUY"))
        assert buys.height > 0, bot_id
        assert set(buys["cause_source"]) <= sources and buys["cause_signal_id"].null_count() == 0, bot_id


def test_journal_files_hold_the_contract_columns(sim_run: tuple[dict[str, Any], Path]) -> None:
    _, journal = sim_run
    for name, columns in JOURNAL_COLUMNS.items():
        frame = pl.read_parquet(journal / f"{name}.parquet")
        assert columns <= set(frame.columns), name
    intents = pl.read_parquet(journal / "intents.parquet")
    approved = pl.read_parquet(journal / "approved.parquet")
    denials = pl.read_parquet(journal / "denials.parquet")
    assert (
        intents.height
        == approved.filter(~pl.col("client_order_id").str.starts_with("risk-")).height + denials.height
    )  # every intent got exactly one verdict; risk's own cancel-alls are not intents
    assert set(approved["client_order_id"]) & set(denials["client_order_id"]) == set()


def test_pnl_and_positions_agree_with_the_fills_to_the_cent(sim_run: tuple[dict[str, Any], Path]) -> None:
    """Recompute cash, realized P&L and quantities from the fills (and the resolutions) alone."""
    _, journal = sim_run
    fills = pl.read_parquet(journal / "fills.parquet").to_dicts()
    markets = {m["condition_id"]: m for m in pl.read_parquet(journal / "markets.parquet").to_dicts()}
    pnl = pl.read_parquet(journal / "pnl.parquet")
    final = {r["bot_id"]: r for r in pnl.filter(pl.col("ts_ns") == pnl["ts_ns"].max()).to_dicts()}
    allocations = {
        bot.id: bot.capital_allocation * CONFIG.system.trading.starting_capital for bot in CONFIG.bots
    }
    cash: dict[str, Decimal] = defaultdict(Decimal)
    held: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for f in fills:
        signed = f["last_qty"] if f["side"] == "BUY" else -f["last_qty"]
        cash[f["bot_id"]] += -signed * f["last_px"] - f["fee"] + f["rebate"]
        held[f["bot_id"], f["market"], f["asset_id"]] += signed
    positions = {
        (p["bot_id"], p["market"], p["asset_id"]): p
        for p in pl.read_parquet(journal / "positions.parquet").to_dicts()
    }
    assert set(positions) == set(held)
    for key, qty in held.items():
        market = markets[key[1]]
        if market["winning_asset_id"] is not None:  # settled: paid 1 per winning share, then flat
            payout = Decimal(1) if key[2] == market["winning_asset_id"] else Decimal(0)
            cash[key[0]] += qty * payout
            assert positions[key]["qty"] == 0
        else:
            assert positions[key]["qty"] == qty
    for bot_id in ENABLED:
        assert final[bot_id]["cash"] == allocations[bot_id] + cash[bot_id]
        assert round(final[bot_id]["cash"], 2) == round(allocations[bot_id] + cash[bot_id], 2)
    total_cash = CONFIG.system.trading.starting_capital + sum(cash.values())
    assert final["portfolio"]["cash"] == total_cash


def test_report_command_reads_the_run_folder(sim_run: tuple[dict[str, Any], Path]) -> None:
    report, journal = sim_run
    result = CliRunner().invoke(report_command, ["--journal", str(journal), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # the same report but the fills' edge against the mids and their markouts: no books in a journal
    without_books = {"edge_quoted", "markouts"}
    stored = json.loads(result.stdout)
    assert sorted(stored) == LINES
    for bot_id, line in stored.items():
        assert {k: v for k, v in line.items() if k not in without_books} == {
            k: v for k, v in report[bot_id].items() if k not in without_books
        }
    table = CliRunner().invoke(report_command, ["--journal", str(journal)], catch_exceptions=False)
    assert all(bot_id in table.stdout for bot_id in ENABLED) and "portfolio" in table.stdout


def test_same_seed_same_journal(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    first, _ = _run(["--duration", "40", "--seed", "3", "--journal", str(a), "--json"])
    second, _ = _run(["--duration", "40", "--seed", "3", "--journal", str(b), "--json"])
    assert first == second
    for name in ("intents", "fills", "pnl"):
        assert pl.read_parquet(a / f"{name}.parquet").equals(pl.read_parquet(b / f"{name}.parquet"))


def test_bad_input_is_a_clean_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(run, ["--replay", str(tmp_path / "missing.jsonl.gz")])
    assert result.exit_code != 0 and "not found" in result.output
    result = CliRunner().invoke(run, ["--replay"])
    assert result.exit_code != 0 and "needs at least one recording" in result.output


@pytest.mark.shared_data
def test_replay_of_shared_recordings(shared_data: Path, tmp_path: Path) -> None:
    l2 = shared_data / "polymarket" / "l2"
    files = [l2 / "20250619_mlb-min-cin-2025-06-19.jsonl.gz", l2 / "20250624_mlb-chc-stl-2025-06-24.jsonl.gz"]
    report, status = _run(["--replay", *map(str, files), "--journal", str(tmp_path), "--json"])
    assert sorted(report) == LINES and "794 frames (0 dead-lettered)" in status
    # 514 + 278 recorded, then each market's market_resolved frame (both settled; docs/running.md)
    intents = pl.read_parquet(tmp_path / "intents.parquet")
    assert intents.height > 0 and int(intents["source_ts_ms"].min()) >= 1750_000_000_000  # type: ignore[arg-type]
    markets = pl.read_parquet(tmp_path / "markets.parquet")
    assert markets.height == 2  # one per recording, from its meta file
    # both recordings ran to settlement (meta: settled_winner_asset_id): the final state names the winners
    assert markets["winning_asset_id"].null_count() == 0


def test_halt_in_the_loop_cancels_every_open_order_and_stops_new_ones() -> None:
    from pets.runtime import sources
    from pets.runtime.journal import Journal
    from pets.runtime.loop import TradingLoop
    from pets.schemas.control import ControlCommand

    source = sources.simulated(CONFIG, seed=11, duration_s=90)
    frames = list(source.frames)
    journal = Journal()
    loop = TradingLoop(CONFIG, source.markets, journal=journal)
    for frame in frames[: len(frames) // 2]:
        loop.on_frame(frame)
    open_before = set(loop.exchange.orders)
    assert open_before, "the market makers should have quotes resting by now"
    reports_before = len(journal.reports)
    loop.control(ControlCommand(command_id="c1", command="halt", bot_id="*", ts_ns=0))
    cancelled = {r.client_order_id for r in journal.reports[reports_before:] if r.kind == "cancel"}
    assert cancelled == open_before and loop.exchange.orders == {}
    approved_before, denied_before = len(journal.approved), len(journal.denials)
    for frame in frames[len(frames) // 2 :]:
        loop.on_frame(frame)
    placed = [a for a in journal.approved[approved_before:] if a.intent.action in ("place", "replace")]
    assert placed == []  # halted: nothing but cancels until an operator resumes trading
    assert {d.rule for d in journal.denials[denied_before:]} <= {"halted"}
    assert loop.risk.snapshot()["state"] == "HALTED"


def test_the_simulator_publishes_its_alternative_data_in_pets_run(tmp_path: Path) -> None:
    """The shipped lineup: all four signal topics are published; Bot 2 reads the esports ones, Bots 4
    and 7 the news ones, Bots 7, 9 and 10 the model ones, through their SignalGates, which count what
    passed."""
    report, stderr = _run(["--duration", "60", "--journal", str(tmp_path), "--json"])
    assert sorted(report) == LINES
    [line] = [line for line in stderr.splitlines() if line.startswith("signals: ")]
    for topic in ("signal.esports", "signal.model", "signal.news", "signal.whale"):
        assert topic in line
    esports = int(line.split("signal.esports ")[1].split(",")[0])
    news, model = (int(line.split(f"signal.{s} ")[1].split(",")[0].split(" ")[0]) for s in ("news", "model"))
    passed = int(line.split("(passed ")[1].split(",")[0])
    # each reading bot has its own gate, as in the bots flow: a news item can pass two (Bots 4 and 7),
    # a forecast three (Bots 7, 9 and 10)
    assert esports > 0 and esports < passed <= esports + 2 * news + 3 * model


def test_bot_02_trades_the_simulated_esports_markets_in_the_embedded_run(tmp_path: Path) -> None:
    report, _ = _run(["--duration", "600", "--journal", str(tmp_path), "--json"])
    assert report["bot_02"]["trades"] > 0
