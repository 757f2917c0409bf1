"""`pets metabase provision`: the PETS connection, one question per view and one dashboard, through
Metabase's HTTP API (written against Metabase v0.50; the calls are the long-stable ones):

    POST /api/session {username, password} -> {id}        (then header X-Metabase-Session: id)
    GET  /api/database -> {data: [...]}; POST /api/database {name, engine: postgres, details}
    GET  /api/card -> [...]; POST /api/card {name, display, dataset_query: native SQL}; PUT /api/card/:id
    GET  /api/dashboard -> [...]; POST /api/dashboard {name}; PUT /api/dashboard/:id {dashcards: [...]}

Idempotent: what exists (by name) is updated, not duplicated; the dashboard's cards are replaced.
The questions read the views of migration 0041 (mb_*), never the tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from pets.schemas.config import Zone

DATABASE_NAME = "PETS (TimescaleDB)"
DASHBOARD_NAME = "PETS desk"
METABASE_VERSION = "v0.50"


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    sql: str
    display: str = "table"  # Metabase's visualisation: table, line, bar, ...
    size: tuple[int, int] = (12, 6)  # width (of 24) x height on the dashboard


QUESTIONS = (
    Question(
        "P&L per bot per day",
        "SELECT day, bot_id, pnl, trades, wins, losses, max_drawdown FROM mb_bot_pnl_daily "
        "WHERE bot_id <> 'portfolio' ORDER BY day, bot_id",
        "line",
    ),
    Question(
        "Open positions by zone",
        "SELECT bot_id, question, zone, zone_name, qty, avg_price, mid, unrealized_pnl FROM mb_positions "
        "ORDER BY zone, bot_id",
    ),
    Question(
        "Fills today",
        "SELECT ts, bot_id, question, side, qty, price, notional, fee, zone FROM mb_fills "
        "WHERE ts >= date_trunc('day', now()) ORDER BY ts DESC",
    ),
    Question(
        "Denials by reason",
        "SELECT rule, sum(denials) AS denials FROM mb_denials_by_reason GROUP BY rule ORDER BY denials DESC",
        "bar",
    ),
    Question(
        "Risk events",
        "SELECT ts, bot_id, kind, rule, severity, message FROM mb_risk_events ORDER BY ts DESC",
    ),
)


class MetabaseError(RuntimeError):
    """Metabase answered an error (the message names the call and the status)."""


@dataclass(frozen=True, slots=True)
class Connection:
    """How Metabase reaches the trading database (its host name as Metabase sees it)."""

    host: str
    port: int
    dbname: str
    user: str
    password: str = field(repr=False)


@dataclass(slots=True)
class Provisioned:
    database_id: int
    card_ids: dict[str, int]
    dashboard_id: int


class MetabaseClient:
    def __init__(self, url: str, timeout_s: float = 30) -> None:
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        if not response.is_success:
            raise MetabaseError(f"{method} {path}: HTTP {response.status_code}: {response.text[:200]}")
        return response.json() if response.content else None

    def login(self, username: str, password: str) -> None:
        session = self.call("POST", "/api/session", {"username": username, "password": password})
        self._http.headers["X-Metabase-Session"] = session["id"]

    def provision(self, connection: Connection, questions: tuple[Question, ...] = QUESTIONS) -> Provisioned:
        database_id = self._database(connection)
        cards = {q.name: self._card(q, database_id) for q in questions}
        dashboard_id = self._dashboard(questions, cards)
        return Provisioned(database_id, cards, dashboard_id)

    def _database(self, c: Connection) -> int:
        body = {
            "name": DATABASE_NAME,
            "engine": "postgres",
            "details": {
                "host": c.host,
                "port": c.port,
                "dbname": c.dbname,
                "user": c.user,
                "password": c.password,
                "ssl": False,
            },
        }
        listed = self.call("GET", "/api/database")
        for db in listed["data"] if isinstance(listed, dict) else listed:
            if db["name"] == DATABASE_NAME:
                self.call("PUT", f"/api/database/{db['id']}", body)
                return int(db["id"])
        return int(self.call("POST", "/api/database", body)["id"])

    def _card(self, question: Question, database_id: int) -> int:
        body = {
            "name": question.name,
            "display": question.display,
            "visualization_settings": {},
            "dataset_query": {"type": "native", "native": {"query": question.sql}, "database": database_id},
        }
        for card in self.call("GET", "/api/card"):
            if card["name"] == question.name:
                self.call("PUT", f"/api/card/{card['id']}", body)
                return int(card["id"])
        return int(self.call("POST", "/api/card", body)["id"])

    def _dashboard(self, questions: tuple[Question, ...], cards: dict[str, int]) -> int:
        found = [d for d in self.call("GET", "/api/dashboard") if d["name"] == DASHBOARD_NAME]
        dashboard_id = (
            int(found[0]["id"])
            if found
            else int(self.call("POST", "/api/dashboard", {"name": DASHBOARD_NAME})["id"])
        )
        dashcards, row, col = [], 0, 0
        for n, question in enumerate(questions, start=1):
            width, height = question.size
            if col + width > 24:
                row, col = row + height, 0
            dashcards.append({"id": -n, "card_id": cards[question.name], "row": row, "col": col,
                              "size_x": width, "size_y": height})  # fmt: skip
            col += width
        self.call("PUT", f"/api/dashboard/{dashboard_id}", {"dashcards": dashcards})
        return dashboard_id


def write_price_zones(dsn: str, zones: Sequence[Zone]) -> None:
    """price_zones (migration 0041) as config/zone_framework.yaml says now."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM price_zones")
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO price_zones (zone, name, lower, upper) VALUES (%s, %s, %s, %s)",
                [(z.zone, z.name, z.lower, z.upper) for z in zones],
            )
