"""The live CLOB adapter: approved orders -> the venue through py-clob-client-v2 (CLOB V2).

Live trading starts only when ALL of these hold, and `require_live` names every one that does not:
the operator passed `--live`, PETS_LIVE=true, pets.yaml `trading.mode: live`, and a wallet is
configured in the environment or the git-ignored secrets.env (PETS_PRIVATE_KEY, PETS_CLOB_API_KEY,
PETS_CLOB_SECRET, PETS_CLOB_PASSPHRASE; PETS_SIGNATURE_TYPE and PETS_FUNDER for proxy wallets).
Secrets live only in `Wallet` fields excluded from its repr; nothing here logs them.

What it does: place (GTC/GTD/FOK/FAK, post-only) -> POST /order, signed by the client (EIP-712
domain version 2); the venue's answer becomes an `ack` (with the venue order id) or a `reject`
(with the venue's error message). cancel -> DELETE /order; replace = cancel + place; cancel_all
(an emergency halt) -> DELETE /cancel-all, one `cancel` report per order the venue cancelled.
`heartbeat()` -> POST /v1/heartbeats: the dead-man switch (stop sending and the venue cancels).
Fills are NOT reported here: on the venue they arrive on the authenticated user channel (trade
events MATCHED -> MINED -> CONFIRMED), which this adapter does not follow yet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pets.schemas.config import PetsConfig, TradingMode
from pets.schemas.control import ALL_BOTS
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderIntent, ReportKind, report_id

POLYGON_CHAIN_ID = 137
NS_PER_MS = 1_000_000
_WALLET_KEYS = ("PETS_PRIVATE_KEY", "PETS_CLOB_API_KEY", "PETS_CLOB_SECRET", "PETS_CLOB_PASSPHRASE")


class LiveRefusedError(RuntimeError):
    """Live trading was asked for but a condition is missing; the message lists each one."""


@dataclass(frozen=True, slots=True)
class Wallet:
    private_key: str = field(repr=False)
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    api_passphrase: str = field(repr=False)
    signature_type: int = 0  # 0 EOA, 1 email/Magic proxy, 2 browser Safe, 3 deposit wallet
    funder: str | None = None


def wallet_from_env(
    environ: Mapping[str, str] | None = None, secrets_file: Path | None = None
) -> Wallet | None:
    """The wallet from PETS_* variables (the environment wins over secrets.env); None when incomplete."""
    values: dict[str, str] = {}
    if secrets_file is not None and secrets_file.is_file():
        for line in secrets_file.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip().strip('"').strip("'")
    values.update(os.environ if environ is None else environ)
    if not all(values.get(key) for key in _WALLET_KEYS):
        return None
    return Wallet(
        private_key=values["PETS_PRIVATE_KEY"],
        api_key=values["PETS_CLOB_API_KEY"],
        api_secret=values["PETS_CLOB_SECRET"],
        api_passphrase=values["PETS_CLOB_PASSPHRASE"],
        signature_type=int(values.get("PETS_SIGNATURE_TYPE") or 0),
        funder=values.get("PETS_FUNDER") or None,
    )


def require_live(flag: bool, env_live: bool, config: PetsConfig, wallet: Wallet | None) -> Wallet:
    """The wallet when every live condition holds; LiveRefusedError naming each missing one otherwise."""
    missing = []
    if not flag:
        missing.append("the --live flag")
    if not env_live:
        missing.append("PETS_LIVE=true in the environment")
    if config.system.trading.mode != TradingMode.LIVE:
        missing.append("trading.mode: live in pets.yaml")
    if wallet is None:
        missing.append(f"a wallet ({', '.join(_WALLET_KEYS)} in the environment or secrets.env)")
    if missing or wallet is None:
        raise LiveRefusedError("live trading refused; missing: " + "; ".join(missing))
    return wallet


class LiveExchange:
    """Sends approved orders to the CLOB and reports what the venue answered."""

    def __init__(self, host: str, wallet: Wallet, *, chain_id: int = POLYGON_CHAIN_ID) -> None:
        from py_clob_client_v2.client import ClobClient
        from py_clob_client_v2.clob_types import ApiCreds

        creds = ApiCreds(
            api_key=wallet.api_key, api_secret=wallet.api_secret, api_passphrase=wallet.api_passphrase
        )
        self.client = ClobClient(
            host,
            chain_id,
            key=wallet.private_key,
            creds=creds,
            signature_type=wallet.signature_type,
            funder=wallet.funder,
        )
        self.open: dict[str, tuple[str, ApprovedOrder]] = {}  # client order id -> (venue id, order)
        self.heartbeat_id = ""
        self.now_ms = 0

    def on_order(self, approved: ApprovedOrder, now_ms: int) -> list[ExecutionReport]:
        self.now_ms = max(self.now_ms, now_ms)
        intent = approved.intent
        if intent.action == "place":
            return [self._place(approved)]
        if intent.action == "replace":
            out = self._cancel(intent.replaces, intent) if intent.replaces in self.open else []
            return [*out, self._place(approved)]
        if intent.action == "cancel":
            return self._cancel(intent.replaces or intent.client_order_id, intent)
        return self.cancel_all(intent.bot_id)

    def heartbeat(self) -> str:
        """Keep the dead-man switch alive; returns the heartbeat id the venue chains."""
        response = self._call(self.client.post_heartbeat, self.heartbeat_id)
        if isinstance(response, dict) and response.get("heartbeat_id"):
            self.heartbeat_id = str(response["heartbeat_id"])
        return self.heartbeat_id

    def cancel_all(self, bot_id: str = ALL_BOTS) -> list[ExecutionReport]:
        if bot_id != ALL_BOTS:
            out: list[ExecutionReport] = []
            for client_id, (_, order) in list(self.open.items()):
                if order.intent.bot_id == bot_id:
                    out += self._cancel(client_id, order.intent)
            return out
        response = self._call(self.client.cancel_all)
        cancelled = set(response.get("canceled") or ()) if isinstance(response, dict) else set()
        out = []
        for client_id, (venue_id, order) in list(self.open.items()):
            if venue_id in cancelled:
                del self.open[client_id]
                out.append(self._report(order, "cancel", venue_id, reason="cancel-all (emergency halt)"))
        return out

    def _place(self, approved: ApprovedOrder) -> ExecutionReport:
        from py_clob_client_v2.clob_types import OrderArgsV2, PartialCreateOrderOptions

        intent = approved.intent
        expiration = (intent.expires_at_ms or 0) // 1000 if intent.order_type == "GTD" else 0
        args = OrderArgsV2(
            token_id=intent.asset_id,
            price=float(intent.price),
            size=float(approved.size),
            side=intent.side,
            expiration=expiration,
        )
        options = PartialCreateOrderOptions(
            tick_size=str(intent.tick_size),  # type: ignore[arg-type]
            neg_risk=intent.neg_risk,
        )
        response = self._call(
            self.client.create_and_post_order, args, options, intent.order_type, intent.post_only
        )
        if isinstance(response, dict) and response.get("success") and response.get("orderID"):
            venue_id = str(response["orderID"])
            if intent.order_type in ("GTC", "GTD"):
                self.open[intent.client_order_id] = (venue_id, approved)
            return self._report(approved, "ack", venue_id, reason=f"venue status {response.get('status')}")
        return self._report(approved, "reject", None, reason=_error(response))

    def _cancel(self, client_id: str | None, request: OrderIntent) -> list[ExecutionReport]:
        from py_clob_client_v2.clob_types import OrderPayload

        entry = self.open.get(client_id or "")
        if entry is None:
            return [_refused(request, f"cancel refused: order {client_id} is not open", self.now_ms)]
        venue_id, order = entry
        response = self._call(self.client.cancel_order, OrderPayload(orderID=venue_id))
        cancelled = isinstance(response, dict) and venue_id in (response.get("canceled") or ())
        if not cancelled:
            return [_refused(request, f"cancel refused by the venue: {_error(response)}", self.now_ms)]
        del self.open[order.intent.client_order_id]
        return [self._report(order, "cancel", venue_id, reason=f"cancelled ({request.client_order_id})")]

    def _call(self, method: Any, *args: Any) -> Any:
        """The venue's JSON answer; a failed request becomes {"error": message} (never raises)."""
        from py_clob_client_v2.exceptions import PolyApiException, PolyException

        try:
            return method(*args)
        except PolyApiException as exc:
            return {"error": f"HTTP {exc.status_code}: {exc.error_msg}"}
        except (PolyException, ValueError) as exc:
            return {"error": str(exc)}

    def _report(
        self, approved: ApprovedOrder, kind: ReportKind, venue_id: str | None, *, reason: str | None = None
    ) -> ExecutionReport:
        intent = approved.intent
        live = kind == "ack"
        return ExecutionReport(
            report_id=report_id(intent.client_order_id, kind, 1),
            client_order_id=intent.client_order_id,
            venue_order_id=venue_id,
            bot_id=intent.bot_id,
            market=intent.market,
            asset_id=intent.asset_id,
            side=intent.side,
            kind=kind,
            order_price=intent.price,
            order_size=approved.size,
            leaves_qty=approved.size if live else Decimal(0),
            reason=reason,
            ts_ns=self.now_ms * NS_PER_MS,
            source_ts_ms=intent.source_ts_ms,
        )


def _refused(request: OrderIntent, reason: str, now_ms: int) -> ExecutionReport:
    return ExecutionReport(
        report_id=report_id(request.client_order_id, "reject", 1),
        client_order_id=request.client_order_id,
        venue_order_id=None,
        bot_id=request.bot_id,
        market=request.market,
        asset_id=request.asset_id,
        side=request.side,
        kind="reject",
        order_price=request.price,
        order_size=request.size,
        reason=reason,
        ts_ns=now_ms * NS_PER_MS,
        source_ts_ms=request.source_ts_ms,
    )


def _error(response: Any) -> str:
    if isinstance(response, dict):
        return str(
            response.get("errorMsg") or response.get("error") or response.get("not_canceled") or response
        )
    return str(response)
