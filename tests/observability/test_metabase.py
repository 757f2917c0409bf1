"""Metabase: the views of migration 0041 in PostgreSQL, and `pets metabase provision` against a local
stand-in of Metabase's HTTP API that runs each question on the real database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from pets.cli import main
from pets.pipelines.metabase.local_server import LocalMetabase
from pets.pipelines.metabase.provision import QUESTIONS
from pets.pipelines.migrations import migrate

pytestmark = pytest.mark.integration


@pytest.fixture
def trading_db(fresh_db: str) -> Iterator[str]:
    migrate(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        conn.execute(
            "INSERT INTO markets (condition_id, question, category, token_ids, outcomes, neg_risk, "
            "tick_size, min_order_size, active, closed, accepting_orders, ts) VALUES ('m1', "
            "'Will it rain?', 'weather', '{y1,n1}', '{Yes,No}', false, 0.01, 5, true, false, true, now())"
        )
        snapshots = [  # bot_01: two snapshots on Dec 6, two on Dec 7 (UTC)
            ("2026-12-06 10:00+00", "1000", 0), ("2026-12-06 23:00+00", "1030", 4),
            ("2026-12-07 01:00+00", "1030", 4), ("2026-12-07 12:00+00", "990", 9),
        ]  # fmt: skip
        for ts, equity, trades in snapshots:
            conn.execute(
                "INSERT INTO pnl_snapshots VALUES (%s, 'bot_01', %s, %s, 0, 0, 0, 0, 0, 0, %s, 1, 1, 0.05)",
                (ts, equity, equity, trades),
            )
        conn.execute(
            "INSERT INTO positions VALUES ('bot_01', 'm1', 'y1', 100, 0.45, 45, 0, now()), "
            "('bot_01', 'm1', 'n1', 0, 0.55, 0, 3, now()), ('bot_05', 'm1', 'n1', 20, 0.85, 17, 0, now())"
        )
        for ts, mid in (("2026-12-07 11:00+00", "0.50"), ("2026-12-07 11:30+00", "0.52")):
            conn.execute(
                "INSERT INTO top_of_book (ts, asset_id, market, mid, tick_size, stale, seq) "
                "VALUES (%s, 'y1', 'm1', %s, 0.01, false, 1)",
                (ts, mid),
            )
        reports = (("r1", "ack", 0, None), ("r2", "partial_fill", 40, "0.45"), ("r3", "fill", 60, "0.45"))
        for rid, kind, qty, px in reports:
            conn.execute(
                "INSERT INTO execution_reports (ts, report_id, client_order_id, bot_id, market, asset_id, "
                "side, kind, order_price, order_size, last_qty, last_px, cum_qty, leaves_qty, fee, rebate, "
                "source_ts) VALUES (now(), %s, 'o1', 'bot_01', 'm1', 'y1', 'BUY', %s, 0.45, 100, %s, %s, "
                "0, 0, 0.1, 0, now())",
                (rid, kind, qty, px),
            )
        for n, rule in enumerate(("zone", "zone", "kelly")):
            conn.execute(
                "INSERT INTO order_denials VALUES ('2026-12-07 10:00+00', %s, 'bot_01', 'directional', "
                "'place', 'm1', 'y1', 'BUY', 0.3, 10, %s, %s)",
                (f"d{n}", rule, f"{rule} says no {n}"),
            )
        conn.execute(
            "INSERT INTO risk_events VALUES (now(), 'a1', 'circuit_breaker', 'bot_01', "
            "'consecutive_losses', '3 losses', 'critical', NULL), "
            "(now(), 'a2', 'resumed', '*', 'operator', 'resumed', 'info', NULL)"
        )
    yield fresh_db


def rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def test_the_views_answer_with_exact_figures(trading_db: str) -> None:
    daily = rows(trading_db, "SELECT day::text, pnl, trades, snapshots FROM mb_bot_pnl_daily ORDER BY day")
    # Dec 6: 1030 - 1000 = 30 over 4 - 0 trades; Dec 7: 990 - 1030 = -40 over 9 - 4 trades
    assert daily == [("2026-12-06", D(30), 4, 2), ("2026-12-07", D(-40), 5, 2)]
    positions = rows(
        trading_db,
        "SELECT bot_id, asset_id, zone, zone_name, mid, unrealized_pnl, question "
        "FROM mb_positions ORDER BY bot_id",
    )
    # y1: 100 held at 0.45 (zone 3), latest mid 0.52: 100 x 0.07 = 7; n1 of bot_05 at 0.85 (zone 5), no book
    assert positions == [
        ("bot_01", "y1", 3, "coin_flip", D("0.52"), D("7.00"), "Will it rain?"),
        ("bot_05", "n1", 5, "near_certain", None, None, "Will it rain?"),
    ]  # the flat n1 position of bot_01 is not listed
    fills = rows(trading_db, "SELECT report_id, qty, notional, zone FROM mb_fills ORDER BY report_id")
    assert fills == [("r2", D(40), D("18.00"), 3), ("r3", D(60), D("27.00"), 3)]
    denials = rows(trading_db, "SELECT rule, denials FROM mb_denials_by_reason ORDER BY rule")
    assert denials == [("kelly", 1), ("zone", 2)]
    events = rows(trading_db, "SELECT alert_id, is_breaker FROM mb_risk_events ORDER BY alert_id")
    assert events == [("a1", True), ("a2", False)]
    # the zone boundaries: lower bound included, the last zone includes 1
    zones = rows(trading_db, "SELECT price_zone(0.20), price_zone(0.1999), price_zone(1), price_zone(0)")
    assert zones == [(2, 1, 5, 1)]


def test_provision_creates_the_connection_questions_and_dashboard_once(
    trading_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PETS_POSTGRES_DSN", trading_db)
    with LocalMetabase("admin@pets.local", "mb-password") as metabase:
        args = ["metabase", "provision", "--url", metabase.url, "--user", "admin@pets.local"]
        monkeypatch.setenv("PETS_METABASE_PASSWORD", "mb-password")
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 0, first.output
        again = CliRunner().invoke(main, args)
        assert again.exit_code == 0, again.output
        assert json.loads(first.output) == json.loads(again.output)  # updated in place, nothing duplicated
        done = json.loads(first.output)
        assert len(metabase.objects["database"]) == 1 and len(metabase.objects["dashboard"]) == 1
        assert sorted(done["cards"]) == sorted(q.name for q in QUESTIONS)
        dashboard = metabase.objects["dashboard"][done["dashboard_id"]]
        assert sorted(c["card_id"] for c in dashboard["dashcards"]) == sorted(done["cards"].values())
        # every question runs on the real database and returns rows
        answers = {}
        session = next(iter(metabase.sessions))
        for name, card_id in done["cards"].items():
            status, answer = metabase.answer("POST", f"/api/card/{card_id}/query", session, {})
            assert status == 200, (name, answer)
            answers[name] = answer["data"]["rows"]
        empty = [name for name, found in answers.items() if not found]
        assert empty == [], empty
        wrong = CliRunner().invoke(main, [*args[:-1], "nobody@pets.local"])
        assert wrong.exit_code == 1 and "HTTP 401" in wrong.output


def test_compose_metabase_keeps_its_own_application_database() -> None:
    import yaml

    from pets.settings import project_root

    services = yaml.safe_load((project_root() / "docker-compose.yml").read_text())["services"]
    env = services["metabase"]["environment"]
    trading = services["timescaledb"]["environment"]
    assert env["MB_DB_HOST"] != "timescaledb" and env["MB_DB_HOST"] in services
    own = services[env["MB_DB_HOST"]]["environment"]["POSTGRES_DB"]
    assert env["MB_DB_DBNAME"] == own != trading["POSTGRES_DB"]
