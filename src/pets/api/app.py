"""The control API (FastAPI): the desk's state read-only for anyone who can reach it, control actions
only with the bearer token.

Reads: /health /bots /bots/{id}/config /positions /orders /fills /pnl /risk /alerts /audit /metrics,
and the WebSocket /events (fills, denials, alerts, bot state changes as they happen).
Control: POST /halt, /resume-trading, /bots/{id}/start|stop|pause|resume -> a ControlCommand on
bot.control (as the CLI sends it), each attempt written to the audit (who, when, what, why, outcome).
Auth: `Authorization: Bearer <PETS_API_TOKEN>`, compared in constant time; a server started without
a token refuses every control action (401) and is bound to localhost by `pets api serve`.
CORS is closed unless origins are given.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal, Protocol

import msgspec
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Histogram, generate_latest
from pydantic import BaseModel, Field

from pets.api import state as views
from pets.api.control import AuditLog, audit_entry, new_command
from pets.api.state import DeskState
from pets.schemas.config import PetsConfig
from pets.schemas.control import ALL_BOTS, BotCommand, ControlCommand

REQUEST_SECONDS = Histogram(
    "pets_api_request_duration_seconds",
    "Control API request duration, by method, route template and status code.",
    ["method", "route", "status"],
)
EVENTS_POLL_S = 0.25
log = logging.getLogger(__name__)


class Desk(Protocol):
    """Where the API reads its state and sends its commands (pets.api.run_desk / pets.api.database)."""

    source: str

    def current(self) -> DeskState: ...

    def events_after(self, seq: int) -> list[dict[str, Any]]: ...

    def last_seq(self) -> int: ...

    def control(self, make: Callable[[], ControlCommand]) -> ControlCommand: ...


class ControlRequest(BaseModel):
    reason: str = Field(default="", max_length=500, description="Why (stored with the state and the audit).")


class PauseRequest(ControlRequest):
    for_s: float | None = Field(
        default=None, gt=0, le=10 * 365 * 86_400, description="Seconds; without it until resume."
    )


_bearer = HTTPBearer(auto_error=False, description="PETS_API_TOKEN of the server")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def create_app(
    desk: Desk,
    config: PetsConfig,
    token: str | None,
    audit: AuditLog,
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    app = FastAPI(
        title="PETS control API",
        version="1",
        description="The operator's desk: bots, positions, orders, fills, P&L, risk; control with a token.",
    )
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Pets-Operator"],
        )
    bot_ids = {bot.id for bot in config.bots}

    @app.middleware("http")
    async def timed(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            REQUEST_SECONDS.labels(request.method, path, str(status)).observe(time.perf_counter() - started)

    def state() -> DeskState:
        return desk.current()

    # ------------------------------------------------------------------ reads

    @app.get("/health", summary="Liveness and readiness: each flow's heartbeat age and consumer lag")
    def health() -> dict[str, Any]:
        return views.health_view(state())

    @app.get("/bots", summary="One object per configured bot")
    def bots() -> list[dict[str, Any]]:
        return views.bots_view(state(), config)

    @app.get("/bots/{bot_id}/config", summary="A bot's configuration (bots/bot_NN_*.yaml)")
    def bot_config_view(bot_id: str) -> dict[str, Any]:
        if bot_id not in bot_ids:
            raise HTTPException(404, f"unknown bot {bot_id!r}")
        out: dict[str, Any] = msgspec.to_builtins(config.bot(bot_id))
        return out

    @app.get("/positions", summary="Open positions with their zone")
    def positions() -> list[dict[str, Any]]:
        return views.positions_view(state(), config)

    @app.get("/orders", summary="Open orders")
    def orders(bot_id: Annotated[str | None, Query(max_length=16)] = None) -> list[dict[str, Any]]:
        return views.orders_view(state(), bot_id)

    @app.get("/fills", summary="The latest fills, newest first")
    def fills(
        limit: Annotated[int, Query(ge=1, le=views.RECENT)] = 100,
        bot_id: Annotated[str | None, Query(max_length=16)] = None,
    ) -> list[dict[str, Any]]:
        return views.fills_view(state(), limit, bot_id)

    @app.get("/pnl", summary="Equity and P&L per bot and portfolio, bucketed by `resolution` seconds")
    def pnl(
        resolution: Annotated[int, Query(ge=1, le=86_400, description="Bucket width in seconds")] = 60,
        bot_id: Annotated[str | None, Query(max_length=16)] = None,
    ) -> dict[str, Any]:
        return views.pnl_view(state(), config, resolution, bot_id)

    @app.get("/risk", summary="Exposure per zone and category, breakers, drawdowns against limits")
    def risk() -> dict[str, Any]:
        return views.risk_view(state(), config)

    @app.get("/alerts", summary="Risk alerts, newest first")
    def alerts(limit: Annotated[int, Query(ge=1, le=views.RECENT)] = 100) -> list[dict[str, Any]]:
        return views.alerts_view(state(), limit)

    @app.get("/audit", summary="Control actions asked of this API, newest first")
    def audit_view(limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
        return audit.latest(limit)

    @app.get("/metrics", summary="Prometheus text exposition", response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/events")
    async def events(websocket: WebSocket, after: int | None = None) -> None:
        """Fills, denials, alerts and bot state changes after sequence `after` (default: from now)."""
        await websocket.accept()
        seq = desk.last_seq() if after is None else after
        while True:
            news = await asyncio.to_thread(desk.events_after, seq)
            try:
                for event in news:
                    await websocket.send_json(event)
                    seq = max(seq, int(event["seq"]))
                # waiting for the next poll is also where a client's goodbye is noticed
                message = await asyncio.wait_for(websocket.receive(), EVENTS_POLL_S)
            except TimeoutError:
                continue
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return

    # ------------------------------------------------------------------ control

    def act(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None,
        command: BotCommand,
        bot_id: str,
        body: ControlRequest | None,
        until_ns: int | None = None,
    ) -> dict[str, Any]:
        actor = (request.headers.get("x-pets-operator") or "api")[:100]
        client = request.client.host if request.client else "unknown"
        reason = body.reason if body else ""

        def record(outcome: str, command_id: str | None = None) -> str | None:
            """Write one audit row; why it could not be written (None: written)."""
            try:
                audit.write(audit_entry(actor, client, command, bot_id, reason, outcome, command_id))
            except Exception as exc:  # the audit's database not answering
                log.warning("audit not written (%s %s: %s): %s", command, bot_id, outcome, exc)
                return str(exc)
            return None

        refused = _refusal(token, credentials)
        if refused is not None:
            record(f"refused: {refused}")
            raise HTTPException(401, refused, headers={"WWW-Authenticate": "Bearer"})
        if bot_id != ALL_BOTS and bot_id not in bot_ids:
            record("refused: unknown bot")
            raise HTTPException(404, f"unknown bot {bot_id!r}")
        # the request is on record before anything is sent: no unaudited command
        unwritable = record("requested")
        if unwritable is not None:
            raise HTTPException(503, f"{command} not sent: the audit cannot be written ({unwritable})")
        issued_by = f"api:{actor}"
        try:
            cmd = desk.control(lambda: new_command(command, bot_id, reason, issued_by, until_ns))
        except Exception as exc:  # the broker not answering: the command was not sent
            record(f"failed: {exc}")
            raise HTTPException(503, f"could not send {command}: {exc}") from None
        record("sent", cmd.command_id)
        return {"sent": command, "bot_id": bot_id, "command_id": cmd.command_id, "reason": reason}

    @app.post("/halt", summary="Emergency halt: cancel every open order; nothing trades until resumed")
    def halt(
        request: Request, credentials: Credentials, body: ControlRequest | None = None
    ) -> dict[str, Any]:
        return act(request, credentials, "halt", ALL_BOTS, body)

    @app.post("/resume-trading", summary="Lift an emergency halt")
    def resume_trading(
        request: Request, credentials: Credentials, body: ControlRequest | None = None
    ) -> dict[str, Any]:
        return act(request, credentials, "resume_trading", ALL_BOTS, body)

    def bot_action(command: Literal["start", "stop", "resume"], doc: str) -> None:
        def endpoint(
            bot_id: str, request: Request, credentials: Credentials, body: ControlRequest | None = None
        ) -> dict[str, Any]:
            return act(request, credentials, command, bot_id, body)

        app.post(f"/bots/{{bot_id}}/{command}", summary=doc, name=f"bot_{command}")(endpoint)

    bot_action("start", "Start a bot (or '*'): it proposes orders again")
    bot_action("stop", "Stop a bot (or '*'): its open orders are cancelled until start")
    bot_action("resume", "Resume a paused or halted bot (or '*')")

    @app.post("/bots/{bot_id}/pause", summary="Pause a bot (or '*'), for `for_s` seconds or until resume")
    def pause(
        bot_id: str, request: Request, credentials: Credentials, body: PauseRequest | None = None
    ) -> dict[str, Any]:
        until = None
        if body is not None and body.for_s is not None:
            until = (
                desk.current().now_ns + int(body.for_s * 1e9)
                if desk.source == "run"
                else (time.time_ns() + int(body.for_s * 1e9))
            )
        return act(request, credentials, "pause", bot_id, body, until)

    return app


def _refusal(token: str | None, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """Why a control request is refused (None: it is not)."""
    if not token:
        return "control actions are disabled: the server has no PETS_API_TOKEN"
    if credentials is None or credentials.scheme.lower() != "bearer":
        return "control actions need Authorization: Bearer <PETS_API_TOKEN>"
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        return "wrong token"
    return None
