"""A local stand-in for Metabase's HTTP API (the calls `pets metabase provision` makes, in v0.50's
shapes), for tests and for trying provisioning without a Metabase: sessions, databases, cards,
dashboards, each checked as Metabase checks it (a session on every call, a card's database must exist,
a dashcard's card must exist), and `POST /api/card/:id/query`, which runs the card's native SQL on the
PostgreSQL its database names, as Metabase would: `{"data": {"cols": [{"name"}], "rows": [...]}}`.
"""

from __future__ import annotations

import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from pets.pipelines.venue_sim.serving import HttpServer, json_body, send_json

_ITEM = re.compile(r"^/api/(database|card|dashboard)/(\d+)(/query)?$")


class LocalMetabase(HttpServer):
    def __init__(self, username: str, password: str, host: str = "127.0.0.1") -> None:
        self.users = {username: password}
        self.sessions: set[str] = set()
        self.objects: dict[str, dict[int, dict[str, Any]]] = {"database": {}, "card": {}, "dashboard": {}}
        self.calls: list[tuple[str, str]] = []
        self._next = 1
        self._lock = threading.Lock()
        super().__init__(host, self._handler())

    def answer(self, method: str, path: str, session: str | None, body: Any) -> tuple[int, Any]:
        with self._lock:
            self.calls.append((method, path))
            if (method, path) == ("POST", "/api/session"):
                if self.users.get(body.get("username")) != body.get("password"):
                    return 401, {"errors": {"password": "did not match stored password"}}
                token = str(uuid.uuid4())
                self.sessions.add(token)
                return 200, {"id": token}
            if session not in self.sessions:
                return 401, "Unauthenticated"
            kind = path.removeprefix("/api/")
            if kind in self.objects:
                if method == "GET":
                    listed = list(self.objects[kind].values())
                    return 200, {"data": listed, "total": len(listed)} if kind == "database" else listed
                if method == "POST":
                    problem = self._invalid(kind, body)
                    if problem:
                        return 400, {"errors": problem}
                    item = {**body, "id": self._next}
                    self.objects[kind][self._next] = item
                    self._next += 1
                    return 200, item
            match = _ITEM.match(path)
            if match is None or int(match[2]) not in self.objects[match[1]]:
                return 404, "Not found."
            item = self.objects[match[1]][int(match[2])]
            if match[3]:
                return (
                    (200, self._query(item))
                    if method == "POST" and match[1] == "card"
                    else (404, "Not found.")
                )
            if method == "PUT":
                problem = self._invalid(match[1], {**item, **body})
                if problem:
                    return 400, {"errors": problem}
                item.update(body)
                return 200, item
            return (200, item) if method == "GET" else (405, "Method not allowed")

    def _invalid(self, kind: str, body: dict[str, Any]) -> dict[str, str] | None:
        if not body.get("name"):
            return {"name": "value must be a non-blank string."}
        if kind == "database":
            details = body.get("details") or {}
            if body.get("engine") != "postgres" or not all(
                details.get(k) for k in ("host", "port", "dbname", "user")
            ):
                return {"details": "engine postgres with host, port, dbname and user"}
        if kind == "card":
            query = body.get("dataset_query") or {}
            if query.get("type") != "native" or query.get("database") not in self.objects["database"]:
                return {"dataset_query": "a native query on a known database"}
        if kind == "dashboard":
            for dashcard in body.get("dashcards", []):
                if dashcard.get("card_id") not in self.objects["card"]:
                    return {"dashcards": f"card {dashcard.get('card_id')} does not exist"}
        return None

    def _query(self, card: dict[str, Any]) -> dict[str, Any]:
        import psycopg

        details = self.objects["database"][card["dataset_query"]["database"]]["details"]
        with psycopg.connect(
            host=details["host"], port=details["port"], dbname=details["dbname"], user=details["user"],
            password=details.get("password") or None,
        ) as conn:  # fmt: skip
            cursor = conn.execute(card["dataset_query"]["native"]["query"])
            cols = [{"name": c.name} for c in cursor.description or ()]
            rows = [[str(v) if v is not None else None for v in row] for row in cursor.fetchall()]
        return {"status": "completed", "row_count": len(rows), "data": {"cols": cols, "rows": rows}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                status, answer = server.answer(
                    self.command,
                    self.path.split("?")[0],
                    self.headers.get("X-Metabase-Session"),
                    json_body(self),
                )
                send_json(self, status, answer)

            do_GET = do_POST = do_PUT = _serve

        return Handler
