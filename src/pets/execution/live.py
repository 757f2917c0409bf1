"""The live CLOB adapter: approved orders -> the venue through py-clob-client-v2 (CLOB V2), fills from
the authenticated user channel -> execution reports.

Opt-in (`require_live` names every missing piece, never a secret's value): the operator passed
`--live`, PETS_LIVE=true, pets.yaml `trading.mode: live`, and a wallet in the environment or the
git-ignored secrets.env: PETS_PRIVATE_KEY, PETS_FUNDER (the address holding the funds; the signer's
own address for an EOA) and PETS_SIGNATURE_TYPE (0 EOA, 1 email/Magic proxy, 2 browser Safe,
3 deposit wallet). API credentials PETS_CLOB_API_KEY/SECRET/PASSPHRASE are optional as a set:
without them they are created or derived with the key (L1).

Before trading (`preflight`): `/version` must be 2 (V1-signed orders are rejected since the V2
cutover) and `/balance-allowance` must show pUSD and an allowance. Per token the venue's tick size
and neg-risk flag are fetched (and cached by the client): a price off the venue's grid is rejected
here with the reason (a stale tick size), and the neg-risk flag picks the exchange that is signed for.

Orders are signed here with exact amounts (pets.venue.precision), not with the client's
float helpers (they sign 1.13 shares as 1.12). Places go out as `POST /order`, or `POST /orders` in
batches of at most 15; a venue refusal becomes a `reject` with the venue's message. cancel ->
`DELETE /order`, a bot's cancel-all -> `DELETE /orders`, a portfolio cancel-all (risk halt) ->
`DELETE /cancel-all`, one `cancel` report per order the venue cancelled. `heartbeat()` ->
`POST /v1/heartbeats`: the dead-man switch (stop sending and the venue cancels everything).

User channel (`on_user`, messages of pets.pipelines.polymarket.user_ws):
- `order` PLACEMENT -> `ack` (the venue id); CANCELLATION -> `cancel` with the venue's status as the
  reason (CANCELED, INVALID, a killed FOK); UPDATE carries nothing the trades do not.
- `trade`: our fills are the maker orders whose order id is ours (size `matched_amount`, price, token
  and side of THAT maker order: a maker fill can be on the other outcome token than the trade's
  `asset_id`), or, when the taker order is ours, one fill per maker order at its price (1 - its
  price when the maker traded the complement token). A (trade, order) fill is counted once, at the
  first of MATCHED / MINED / CONFIRMED / RETRYING; later statuses are logged. A FAILED trade after
  it was counted keeps the fill in the books and raises a critical `RiskAlert` (rule
  `live_trade_failed`): the chain did not settle it, so position and cash are wrong until an
  operator checks the wallet; we do not invent a negative fill the portfolio cannot represent.
- After a gap, and after a resume from a recovery snapshot, the client sends REST trades (counted once
  like the rest) and an `open_orders` snapshot: an order we think open that the venue no longer lists
  is reported cancelled. An order whose POST answered after that listing was requested is left alone
  (the listing may predate it).

Replays are idempotent at the venue. The signed order is a pure function of the approval and the
wallet: the salt is derived from the client order id (`order_salt`) and the signed `timestamp` is the
intent's `created_ns` in ms, never the wall clock, so a re-sent approval has the same EIP-712 order hash
(the venue's order id) as its first send. When the flow resumes from a snapshot taken before an order
went out, Kafka re-delivers the approval, `seen` no longer holds it, and it is signed and posted again;
the venue refuses the copy ("order <hash> is invalid. Duplicated.") and this adapter adopts the order
it already holds under that hash instead of reporting a reject: the venue's trades and open orders of
its market are read over REST, as after a user-channel gap, so fills made meanwhile are counted and the
order is acked if still open, or reported cancelled if the venue no longer lists it.

An order POST or a cancel that gets no HTTP answer (timeout, reset, refused connection:
py-clob-client-v2 raises PolyApiException without a status), or a gateway's 502/504 (the gateway lost
the backend's answer), may have landed. It is sent again, `POST_ATTEMPTS` times in all with a doubling
pause from `POST_BACKOFF_S` (module constants): a copy of an order the venue already took is answered
"Duplicated" and adopted as above, so one order results; a cancel is idempotent. When the last post of
an order goes unanswered too, its state is settled at once over REST, as for an adoption: listed open or
traded -> adopted (`ack`, fills); neither -> `reject` (it never reached the venue). Only when REST fails
as well is the order reported `reject` with the reason that its state is unknown. A rejected order is
kept as unconfirmed under its order hash either way: if the venue shows it after all (a PLACEMENT or
trade event on the user channel, or a REST open-orders listing after a gap or a resume) it is adopted
with an `ack` and its fills are counted (risk and the bot reopen it on that ack).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from pets.pipelines.polymarket.user_ws import (
    RECONCILE_LOOKBACK_S,
    OrderEvent,
    TradeEvent,
    UserMessage,
    decimal_of,
    event_ms,
    rest_rows,
)
from pets.schemas.config import PetsConfig, TradingMode
from pets.schemas.control import ALL_BOTS, RiskAlert
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderIntent, ReportKind, Side
from pets.venue.fees import taker_fee
from pets.venue.precision import limit_order_amounts, market_order_amounts, on_tick_grid

log = logging.getLogger(__name__)

POLYGON_CHAIN_ID = 137
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
VENUE_VERSION = 2
MAX_BATCH = 15  # POST /orders
BPS = Decimal(10_000)
WALLET_KEYS = ("PETS_PRIVATE_KEY", "PETS_FUNDER", "PETS_SIGNATURE_TYPE")
API_KEYS = ("PETS_CLOB_API_KEY", "PETS_CLOB_SECRET", "PETS_CLOB_PASSPHRASE")
COUNTED = frozenset({"MATCHED", "MINED", "CONFIRMED", "RETRYING"})
ZERO = Decimal(0)
# py-clob-client-v2 posts the salt as a JSON number (its own salts are random() x now_ms, < 2^41); the
# exchange takes a uint256. 53 bits stay exact in every JSON parser (IEEE doubles included).
SALT_BITS = 53
# the venue's answer to a re-posted order hash it already holds: "order 0x... is invalid. Duplicated."
DUPLICATED = re.compile(r"is invalid\. duplicated", re.IGNORECASE)
# an order POST without an HTTP answer is sent again this many times in all, pausing 0.25 s, then 0.5 s
# (py-clob-client-v2 gives each attempt httpx's default 5 s timeout)
POST_ATTEMPTS = 3
POST_BACKOFF_S = 0.25
NO_ANSWER = "pets_no_answer"  # marks the answer `_call` makes of a request that got no HTTP answer
GATEWAY_LOST = frozenset({502, 504})  # the gateway's answer, not the venue's: the request may have landed


def order_salt(client_order_id: str) -> str:
    """The salt of the order signed for this client order id: the same on every re-sign, 53 bits."""
    digest = hashlib.sha256(client_order_id.encode()).digest()
    return str(int.from_bytes(digest[:8], "big") >> (64 - SALT_BITS))


class SignedOrder(NamedTuple):
    order: Any  # py_clob_client_v2 SignedOrderV2
    order_hash: str  # its EIP-712 hash: the venue's order id


class LiveRefusedError(RuntimeError):
    """Live trading was asked for but something is missing or wrong; the message lists each one."""


@dataclass(frozen=True, slots=True)
class Wallet:
    private_key: str = field(repr=False)
    funder: str
    signature_type: int  # 0 EOA, 1 email/Magic proxy, 2 browser Safe, 3 deposit wallet (POLY_1271)
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    api_passphrase: str | None = field(default=None, repr=False)


def live_environment(
    environ: Mapping[str, str] | None = None, secrets_file: Path | None = None
) -> dict[str, str]:
    """PETS_* values from secrets.env overlaid by the environment (the environment wins)."""
    values: dict[str, str] = {}
    if secrets_file is not None and secrets_file.is_file():
        for line in secrets_file.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip().strip('"').strip("'")
    values.update(os.environ if environ is None else environ)
    return values


def require_live(flag: bool, env: Mapping[str, str], config: PetsConfig) -> Wallet:
    """The wallet when every live condition holds; LiveRefusedError naming each missing one otherwise."""
    missing = []
    if not flag:
        missing.append("the --live flag")
    if env.get("PETS_LIVE", "").strip().lower() not in ("1", "true", "yes", "on"):
        missing.append("PETS_LIVE=true in the environment")
    if config.system.trading.mode != TradingMode.LIVE:
        missing.append("trading.mode: live in pets.yaml")
    missing += [f"{key} (environment or secrets.env)" for key in WALLET_KEYS if not env.get(key)]
    signature_type = env.get("PETS_SIGNATURE_TYPE", "")
    if signature_type and signature_type not in ("0", "1", "2", "3"):
        missing.append("PETS_SIGNATURE_TYPE must be 0, 1, 2 or 3")
    if env.get("PETS_PRIVATE_KEY") and not _is_private_key(env["PETS_PRIVATE_KEY"]):
        missing.append("PETS_PRIVATE_KEY is not a private key (64 hex digits, 0x optional)")
    creds = [key for key in API_KEYS if env.get(key)]
    if creds and len(creds) < len(API_KEYS):
        absent = ", ".join(k for k in API_KEYS if k not in creds)
        missing.append(f"{absent} (set all three API credentials, or none to derive them with the key)")
    if missing:
        raise LiveRefusedError("live trading refused; missing: " + "; ".join(missing))
    return Wallet(
        private_key=env["PETS_PRIVATE_KEY"],
        funder=env["PETS_FUNDER"],
        signature_type=int(signature_type),
        api_key=env.get("PETS_CLOB_API_KEY") or None,
        api_secret=env.get("PETS_CLOB_SECRET") or None,
        api_passphrase=env.get("PETS_CLOB_PASSPHRASE") or None,
    )


def _is_private_key(key: str) -> bool:
    """Whether the signer can use `key` (checked up front: the signing library's own error is a long
    traceback; the key itself never appears in a message)."""
    from eth_account import Account

    try:
        Account.from_key(key.strip())
    except Exception:  # any error of the key's format or range means the same to the operator
        return False
    return True


def clob_client(host: str, wallet: Wallet, *, chain_id: int = POLYGON_CHAIN_ID) -> Any:
    """An L2 py-clob-client-v2 client; API credentials are created or derived (L1) when not given."""
    from py_clob_client_v2.client import ClobClient
    from py_clob_client_v2.clob_types import ApiCreds

    creds = None
    if wallet.api_key and wallet.api_secret and wallet.api_passphrase:
        creds = ApiCreds(
            api_key=wallet.api_key, api_secret=wallet.api_secret, api_passphrase=wallet.api_passphrase
        )
    client = ClobClient(
        host,
        chain_id,
        key=wallet.private_key,
        creds=creds,
        signature_type=wallet.signature_type,
        funder=wallet.funder,
    )
    if creds is None:
        client.set_api_creds(client.create_or_derive_api_key())
    return client


def preflight(client: Any) -> None:
    """Refuse to trade on a venue that is not CLOB V2 or a wallet without pUSD or allowance."""
    from py_clob_client_v2.clob_types import AssetType, BalanceAllowanceParams

    version = client.get_version()
    if version != VENUE_VERSION:
        raise LiveRefusedError(
            f"the venue answers /version {version}; this adapter signs CLOB V{VENUE_VERSION}"
        )
    answer = _call(client.get_balance_allowance, BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
    if "error" in answer:
        raise LiveRefusedError(f"balance-allowance check failed: {answer['error']}")
    problems = []
    if decimal_of(str(answer.get("balance") or "")) <= 0:
        problems.append("no pUSD balance")
    allowances = answer.get("allowances") or {"exchange": answer.get("allowance")}
    if not any(decimal_of(str(v or "")) > 0 for v in allowances.values()):
        problems.append("no pUSD allowance for the exchange (run /balance-allowance/update or approve)")
    if problems:
        raise LiveRefusedError("live trading refused: " + "; ".join(problems))


@dataclass
class LiveOrder:
    """One of our orders at the venue."""

    approved: ApprovedOrder
    venue_id: str
    cum_qty: Decimal = ZERO
    fills: int = 0
    acked: bool = False
    closed: bool = False
    unconfirmed: bool = False  # reported rejected after every POST went unanswered: the venue may hold it
    posted_ns: int = 0  # wall clock when its POST returned: a REST listing requested earlier may miss it

    @property
    def leaves(self) -> Decimal:
        return ZERO if self.closed else max(self.approved.size - self.cum_qty, ZERO)


class LiveExchange:
    """Sends approved orders to the CLOB and turns the venue's answers and user-channel events into reports.

    Picklable without its client (Bytewax snapshots the state): `attach(client)` after a restore.
    """

    def __init__(self, client: Any, *, chain_id: int = POLYGON_CHAIN_ID) -> None:
        self.client = client
        self.chain_id = chain_id
        self.orders: dict[str, LiveOrder] = {}  # venue id -> order
        self.by_client: dict[str, str] = {}  # client order id -> venue id
        self.seen: set[str] = set()  # client order ids already sent (a re-delivered approval is ignored)
        self.trades: dict[tuple[str, str], str] = {}  # (trade id, venue order id) -> last status
        self.heartbeat_id = ""
        self.now_ms = 0

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "client"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, client=None)

    def attach(self, client: Any) -> None:
        self.client = client

    @property
    def open(self) -> dict[str, LiveOrder]:
        """Client order id -> the orders still open."""
        return {o.approved.intent.client_order_id: o for o in self.orders.values() if not o.closed}

    def open_orders(self) -> dict[str, tuple[int, Decimal]]:
        """bot -> (open orders, notional of its open buys), as PaperExchange.open_orders (for exposure)."""
        out: dict[str, tuple[int, Decimal]] = {}
        for order in self.open.values():
            intent = order.approved.intent
            count, buys = out.get(intent.bot_id, (0, ZERO))
            out[intent.bot_id] = (
                count + 1,
                buys + (order.leaves * intent.price if intent.side == "BUY" else ZERO),
            )
        return out

    # ---- orders ----------------------------------------------------------------------------------
    def on_order(self, approved: ApprovedOrder, now_ms: int) -> list[ExecutionReport]:
        return self.on_orders([approved], now_ms)

    def on_orders(self, approved: Iterable[ApprovedOrder], now_ms: int) -> list[ExecutionReport]:
        """Several approvals in order; consecutive places go out as batches."""
        self.now_ms = max(self.now_ms, now_ms)
        out: list[ExecutionReport] = []
        places: list[ApprovedOrder] = []
        for order in approved:
            intent = order.intent
            if intent.action == "place":
                places.append(order)
                continue
            out += self._place(places)
            places = []
            if intent.action == "replace":
                if intent.replaces in self.open:
                    out += self._cancel([intent.replaces], intent, "replaced")
                out += self._place([order])
            elif intent.action == "cancel":
                out += self._cancel([intent.replaces or intent.client_order_id], intent, "cancelled")
            else:
                out += self.cancel_all(intent.bot_id)
        return out + self._place(places)

    def heartbeat(self) -> str:
        """Keep the dead-man switch alive; returns the heartbeat id the venue chains."""
        response = _call(self.client.post_heartbeat, self.heartbeat_id)
        if response.get("heartbeat_id"):
            self.heartbeat_id = str(response["heartbeat_id"])
        else:
            log.error("heartbeat refused by the venue: %s", _error(response))
        return self.heartbeat_id

    def cancel_all(self, bot_id: str = ALL_BOTS) -> list[ExecutionReport]:
        if bot_id != ALL_BOTS:
            mine = [cid for cid, o in self.open.items() if o.approved.intent.bot_id == bot_id]
            return self._cancel(mine, None, f"cancel-all of {bot_id}") if mine else []
        return self._cancelled(_retrying(self.client.cancel_all), "cancel-all (emergency halt)")

    def _place(self, places: list[ApprovedOrder]) -> list[ExecutionReport]:
        from py_clob_client_v2.clob_types import PostOrdersV2Args

        out: list[ExecutionReport] = []
        signed: list[tuple[ApprovedOrder, SignedOrder]] = []
        adopted: list[LiveOrder] = []
        unknown: list[LiveOrder] = []  # every post unanswered
        for approved in places:
            intent = approved.intent
            if intent.client_order_id in self.seen:
                continue
            self.seen.add(intent.client_order_id)
            order_or_reason = self._sign(approved)
            if isinstance(order_or_reason, str):
                out.append(self._report(approved, "reject", reason=order_or_reason))
            else:
                signed.append((approved, order_or_reason))
        for post_only in (False, True):
            group = [(a, o) for a, o in signed if a.intent.post_only == post_only]
            for start in range(0, len(group), MAX_BATCH):
                chunk = group[start : start + MAX_BATCH]
                if len(chunk) == 1:
                    approved, one = chunk[0]
                    answers = [
                        _retrying(self.client.post_order, one.order, approved.intent.order_type, post_only)
                    ]
                else:
                    args = [PostOrdersV2Args(order=s.order, orderType=a.intent.order_type) for a, s in chunk]
                    batch = _retrying(self.client.post_orders, args, post_only)
                    answers = batch if isinstance(batch, list) else [batch] * len(chunk)
                for (approved, one), answer in zip(chunk, answers, strict=True):
                    if DUPLICATED.search(_error(answer)):  # the venue holds this very order: it is ours
                        adopted.append(self._track(approved, one.order_hash))
                    elif _unanswered(answer):
                        unknown.append(self._track(approved, one.order_hash))  # the venue's id if it has it
                    else:
                        out += self._posted(approved, answer)
        return out + (self._adopt(adopted) if adopted else []) + (self._settle(unknown) if unknown else [])

    def _posted(self, approved: ApprovedOrder, answer: Any) -> list[ExecutionReport]:
        if isinstance(answer, dict) and answer.get("success") and answer.get("orderID"):
            self._track(approved, str(answer["orderID"]))
            return []  # the ack comes with the venue's PLACEMENT event on the user channel
        return [self._report(approved, "reject", reason=f"venue refused: {_error(answer)}")]

    def _track(self, approved: ApprovedOrder, venue_id: str) -> LiveOrder:
        order = LiveOrder(approved, venue_id, posted_ns=time.time_ns())
        self.orders[venue_id] = order
        self.by_client[approved.intent.client_order_id] = venue_id
        return order

    def _confirm(self, order: LiveOrder, how: str) -> list[ExecutionReport]:
        """The venue shows an order we reported rejected when its posts went unanswered: it is ours."""
        order.unconfirmed = order.closed = False
        order.acked = True
        log.warning("%s was reported rejected (state unknown) but %s: adopted", order.venue_id, how)
        reason = f"reported rejected when its posts went unanswered, but {how}: adopted"
        return [self._report(order.approved, "ack", order, reason=reason)]

    def _adopt(self, adopted: list[LiveOrder]) -> list[ExecutionReport]:
        """Orders the venue already held when they were re-sent (a replay after a restart): no PLACEMENT
        comes for them, so the venue's REST trades and open orders of their markets say what they are now."""
        out: list[ExecutionReport] = []
        for mine in _by_market(adopted):
            found = self._reconcile(mine, "after a re-sent approval the venue already held")
            if isinstance(found, str):  # the venue said it holds them: live until the user channel says more
                for order in mine:
                    order.acked = True
                    reason = f"already at the venue (re-sent approval); REST check failed: {found}"
                    out.append(self._report(order.approved, "ack", order, reason=reason))
            else:
                out += found
        return out

    def _settle(self, unknown: list[LiveOrder]) -> list[ExecutionReport]:
        """Orders whose every post went unanswered: the venue's REST trades and open orders say whether
        it took them (adopted) or not (rejected); they stay unconfirmed, so a later sight still adopts."""
        out: list[ExecutionReport] = []
        unanswered = f"{POST_ATTEMPTS} posts got no answer"
        for mine in _by_market(unknown):
            for order in mine:
                order.closed = order.unconfirmed = True
            found = self._reconcile(mine, "after its posts went unanswered")
            if isinstance(found, str):
                why = (
                    f"order state unknown: {unanswered} and the REST check failed ({found}); the venue may "
                    "hold it, the next reconcile settles it (adopted with an ack if the venue lists it)"
                )
            else:
                out += found
                why = f"not placed: {unanswered} and the venue lists neither the order nor trades of it"
            for order in mine:
                if order.unconfirmed:
                    log.error("%s %s: %s", order.approved.intent.client_order_id, order.venue_id, why)
                    out.append(self._report(order.approved, "reject", order, reason=why))
        return out

    def _reconcile(self, mine: list[LiveOrder], when: str) -> list[ExecutionReport] | str:
        """Reports from the venue's REST trades and open orders of the market of `mine` for these
        orders, or the error when REST did not answer."""
        from py_clob_client_v2.clob_types import OpenOrderParams, TradeParams

        market = mine[0].approved.intent.market
        since_s = min(o.approved.intent.created_ns for o in mine) // NS_PER_S - RECONCILE_LOOKBACK_S
        listed_ns = time.time_ns()
        trades = _call(self.client.get_trades, TradeParams(market=market, after=max(since_s, 0)))
        listed = _call(self.client.get_open_orders, OpenOrderParams(market=market))
        if not isinstance(trades, list) or not isinstance(listed, list):
            return _error(listed if isinstance(trades, list) else trades)
        out: list[ExecutionReport] = []
        ids = {o.venue_id for o in mine}
        dead: list[tuple[str, bytes]] = []
        for trade in rest_rows(trades, TradeEvent, dead):
            if trade.taker_order_id in ids or any(m.order_id in ids for m in trade.maker_orders):
                reports, _ = self._on_trade(trade)  # alerts are for fills counted before; these are new
                out += reports
        open_ids = {row.id for row in rest_rows(listed, OrderEvent, dead)}
        for reason, _ in dead:
            log.warning("venue REST row left out: %s", reason)
        return out + self._check_open(mine, open_ids, listed_ns, when)

    def _sign(self, approved: ApprovedOrder) -> SignedOrder | str:
        """The signed V2 order with exact amounts, or the reason it cannot be sent. Deterministic: the
        salt comes from the client order id and the timestamp from the intent, so a re-sign is identical."""
        from py_clob_client_v2.config import get_contract_config
        from py_clob_client_v2.constants import BYTES32_ZERO
        from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2
        from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
        from py_clob_client_v2.order_utils.model.side import Side as ClientSide

        intent = approved.intent
        market = _call(self._market_params, intent.asset_id)
        if "error" in market:
            return f"no market parameters from the venue for token {intent.asset_id}: {market['error']}"
        tick, neg_risk = market["tick"], market["neg_risk"]
        if not on_tick_grid(intent.price, tick):
            return f"price {intent.price} is not on the venue's tick grid {tick} (the tick size changed)"
        try:
            if intent.order_type in ("GTC", "GTD"):
                maker, taker = limit_order_amounts(intent.side, intent.price, approved.size, tick)
            else:  # a marketable order spends pUSD (BUY) or sells shares (SELL)
                amount = intent.price * approved.size if intent.side == "BUY" else approved.size
                maker, taker = market_order_amounts(intent.side, amount, intent.price, tick)
        except ValueError as exc:
            return f"amounts rejected before sending: {exc}"
        contracts = get_contract_config(self.chain_id)
        exchange = contracts.neg_risk_exchange_v2 if neg_risk else contracts.exchange_v2
        builder = self.client.builder
        expiration = (intent.expires_at_ms or 0) // 1000 if intent.order_type == "GTD" else 0
        data = OrderDataV2(
            maker=builder.funder,
            tokenId=intent.asset_id,
            makerAmount=str(maker),
            takerAmount=str(taker),
            side=ClientSide.BUY if intent.side == "BUY" else ClientSide.SELL,
            signer=builder._v2_order_signer(),
            signatureType=builder.signature_type,
            timestamp=str(intent.created_ns // NS_PER_MS),
            metadata=BYTES32_ZERO,
            builder=BYTES32_ZERO,
            expiration=str(expiration),
        )
        signer = ExchangeOrderBuilderV2(
            exchange,
            self.chain_id,
            self.client.signer,
            generate_salt=lambda: order_salt(intent.client_order_id),
            domain_version=str(VENUE_VERSION),
        )
        order = signer.build_signed_order(data)
        return SignedOrder(order, signer.build_order_hash(signer.build_order_typed_data(order)))

    def _market_params(self, token_id: str) -> dict[str, Any]:
        return {
            "tick": Decimal(str(self.client.get_tick_size(token_id))),
            "neg_risk": bool(self.client.get_neg_risk(token_id)),
        }

    def _cancel(self, client_ids: list[str], request: OrderIntent | None, why: str) -> list[ExecutionReport]:
        open_orders = self.open
        known = [open_orders[c].venue_id for c in client_ids if c in open_orders]
        out = [_refused(request, f"cancel refused: order {c} is not open", self.now_ms) for c in client_ids
               if c not in open_orders and request is not None]  # fmt: skip
        if not known:
            return out
        if len(known) == 1:
            from py_clob_client_v2.clob_types import OrderPayload

            answer = _retrying(self.client.cancel_order, OrderPayload(orderID=known[0]))
        else:
            answer = _retrying(self.client.cancel_orders, known)
        reports = self._cancelled(answer, f"{why} ({request.client_order_id})" if request else why)
        if not reports and request is not None:
            out.append(_refused(request, f"cancel refused by the venue: {_error(answer)}", self.now_ms))
        return out + reports

    def _cancelled(self, answer: dict[str, Any], reason: str) -> list[ExecutionReport]:
        out = []
        for venue_id in answer.get("canceled") or ():
            order = self.orders.get(str(venue_id))
            if order is not None and not order.closed:
                out.append(self._close(order, "cancel", reason))
        if answer.get("not_canceled") or "error" in answer:
            log.warning("venue did not cancel: %s", _error(answer))
        # ours the venue would not cancel: gone already (filled, expired, or cancelled by an attempt whose
        # answer was lost) or not; its REST trades and open orders say which
        refused = [self.orders[str(i)] for i in answer.get("not_canceled") or () if str(i) in self.orders]
        for mine in _by_market([o for o in refused if not o.closed]):
            found = self._reconcile(mine, "when the venue would not cancel it")
            out += [] if isinstance(found, str) else found
        return out

    # ---- the user channel ------------------------------------------------------------------------
    def on_user(self, message: UserMessage) -> tuple[list[ExecutionReport], list[RiskAlert]]:
        """Reports (and alerts) for one user-channel message."""
        if message.kind == "order" and message.order is not None:
            return self._on_order_event(message.order), []
        if message.kind == "trade" and message.trade is not None:
            return self._on_trade(message.trade)
        if message.kind == "open_orders":
            return self._on_open_orders(message.open_orders, message.recv_ns), []
        log.warning("user channel %s: %s", message.kind, message.reason)
        return [], []

    def _on_order_event(self, event: OrderEvent) -> list[ExecutionReport]:
        order = self.orders.get(event.id)
        if order is not None and order.unconfirmed:
            self.now_ms = max(self.now_ms, event_ms(event.timestamp))
            if event.type == "CANCELLATION":  # it did reach the venue, and is gone: the reject stands
                order.unconfirmed = False
                return []
            return self._confirm(order, f"the venue sent its {event.type or 'order'} event")
        if order is None or order.closed:
            return []  # not ours (another session of the key) or already final
        self.now_ms = max(self.now_ms, event_ms(event.timestamp))
        if event.type == "PLACEMENT" and not order.acked:
            order.acked = True
            return [self._report(order.approved, "ack", order, reason=f"venue status {event.status}")]
        if event.type == "CANCELLATION":
            return [self._close(order, "cancel", f"venue cancelled: {event.status}")]
        return []

    def _on_open_orders(self, rows: list[OrderEvent], listed_ns: int) -> list[ExecutionReport]:
        """After a gap or a resume: orders the venue still lists are live, ours it does not list are gone."""
        listed = {row.id for row in rows}
        return self._check_open(list(self.orders.values()), listed, listed_ns, "after a gap or a resume")

    def _check_open(
        self, orders: list[LiveOrder], listed: set[str], listed_ns: int, when: str
    ) -> list[ExecutionReport]:
        """`listed`: the venue ids of a REST open-orders listing requested at `listed_ns` (wall clock)."""
        out = []
        for order in orders:
            if order.posted_ns > listed_ns:
                continue  # posted while the listing was on its way: it may not show there yet
            if order.unconfirmed and order.venue_id in listed:
                out += self._confirm(order, f"the venue lists it open {when}")
            if order.closed:
                continue
            if order.venue_id not in listed:
                out.append(self._close(order, "cancel", f"not open at the venue {when}"))
            elif not order.acked:
                order.acked = True
                out.append(
                    self._report(order.approved, "ack", order, reason=f"open at the venue (REST) {when}")
                )
        return out

    def _on_trade(self, trade: TradeEvent) -> tuple[list[ExecutionReport], list[RiskAlert]]:
        self.now_ms = max(self.now_ms, event_ms(trade.timestamp, trade.last_update, trade.match_time))
        fills: list[tuple[LiveOrder, str, Decimal, Decimal, Side, str, Decimal]] = []
        out: list[ExecutionReport] = []
        for order_id in (trade.taker_order_id, *(m.order_id for m in trade.maker_orders)):
            unconfirmed = self.orders.get(order_id)
            if unconfirmed is not None and unconfirmed.unconfirmed:
                out += self._confirm(unconfirmed, f"the venue traded it ({trade.id} {trade.status})")
        taker = self.orders.get(trade.taker_order_id)
        for maker in trade.maker_orders:
            qty, price, rate = (
                decimal_of(maker.matched_amount),
                decimal_of(maker.price),
                decimal_of(maker.fee_rate_bps),
            )
            if taker is not None:  # we took: each maker order is one fill at its price, seen from our token
                own = taker.approved.intent
                px = price if maker.asset_id == own.asset_id else 1 - price
                fills.append(
                    (taker, own.asset_id, qty, px, own.side, "taker", decimal_of(trade.fee_rate_bps))
                )
            elif (ours := self.orders.get(maker.order_id)) is not None:
                side: Side = (
                    "SELL" if maker.side == "SELL" else "BUY" if maker.side else ours.approved.intent.side
                )
                fills.append((ours, maker.asset_id, qty, price, side, "maker", rate))
        alerts: list[RiskAlert] = []
        for order, asset, qty, px, side, liquidity, rate in fills:
            key = (trade.id, order.venue_id)
            previous = self.trades.get(key)
            self.trades[key] = trade.status
            if previous is None and trade.status in COUNTED:
                out.append(self._fill(order, trade.id, asset, qty, px, side, liquidity, rate / BPS))
            elif trade.status == "FAILED" and previous in COUNTED:
                alerts.append(self._failed(order, trade, qty, px))
            elif previous != trade.status:
                log.info("trade %s of %s: %s -> %s", trade.id, order.venue_id, previous, trade.status)
        return out, alerts

    def _fill(
        self,
        order: LiveOrder,
        trade_id: str,
        asset: str,
        qty: Decimal,
        px: Decimal,
        side: Side,
        liquidity: str,
        fee_rate: Decimal,
    ) -> ExecutionReport:
        intent = order.approved.intent
        order.cum_qty += qty
        order.fills += 1
        done = order.cum_qty >= order.approved.size
        kind: ReportKind = "fill" if done else "partial_fill"
        if done:
            order.closed = True
        return ExecutionReport.of_order(
            intent,
            order.approved.size,
            kind,
            ts_ns=self.now_ms * NS_PER_MS,
            n=order.fills,
            venue_order_id=order.venue_id,
            cum_qty=order.cum_qty,
            leaves_qty=order.leaves,
            last_qty=qty,
            last_px=px,
            fee=taker_fee(qty, px, fee_rate) if liquidity == "taker" else ZERO,
            liquidity="taker" if liquidity == "taker" else "maker",
            trade_id=trade_id,
            asset_id=asset,
            side=side,
        )

    def _failed(self, order: LiveOrder, trade: TradeEvent, qty: Decimal, px: Decimal) -> RiskAlert:
        intent = order.approved.intent
        message = (
            f"trade {trade.id} FAILED on chain after it was counted: {qty} @ {px} of "
            f"{intent.client_order_id} ({intent.side} {intent.asset_id}) is in the books but did not "
            "settle; check the wallet"
        )
        log.error(message)
        return RiskAlert(
            alert_id=f"live_trade_failed:{trade.id}:{order.venue_id}",
            kind="limit_breach",
            bot_id=intent.bot_id,
            rule="live_trade_failed",
            message=message,
            severity="critical",
            ts_ns=self.now_ms * NS_PER_MS,
        )

    # ---- reports ---------------------------------------------------------------------------------
    def _close(self, order: LiveOrder, kind: ReportKind, reason: str) -> ExecutionReport:
        order.closed = True
        return self._report(order.approved, kind, order, reason=reason)

    def _report(
        self, approved: ApprovedOrder, kind: ReportKind, order: LiveOrder | None = None, *, reason: str
    ) -> ExecutionReport:
        return ExecutionReport.of_order(
            approved.intent,
            approved.size,
            kind,
            reason=reason,
            ts_ns=self.now_ms * NS_PER_MS,
            venue_order_id=order.venue_id if order else None,
            cum_qty=order.cum_qty if order else ZERO,
            leaves_qty=order.leaves if order else ZERO,
        )


def _by_market(orders: list[LiveOrder]) -> list[list[LiveOrder]]:
    markets = sorted({o.approved.intent.market for o in orders})
    return [[o for o in orders if o.approved.intent.market == market] for market in markets]


def _refused(request: OrderIntent, reason: str, now_ms: int) -> ExecutionReport:
    return ExecutionReport.refusal(request, reason, ts_ns=now_ms * NS_PER_MS)


def _call(method: Any, *args: Any) -> Any:
    """The venue's JSON answer; a failed request becomes {"error": message} (never raises)."""
    from py_clob_client_v2.exceptions import PolyApiException, PolyException

    try:
        answer = method(*args)
    except PolyApiException as exc:
        if exc.status_code is None:  # no HTTP answer (timeout, reset, refused): the request may have landed
            return {"error": f"no answer from the venue ({exc.error_msg})", NO_ANSWER: True}
        if exc.status_code in GATEWAY_LOST:
            return {"error": f"HTTP {exc.status_code} from the gateway: {exc.error_msg}", NO_ANSWER: True}
        return {"error": f"HTTP {exc.status_code}: {exc.error_msg}"}
    except (PolyException, ValueError, KeyError) as exc:
        return {"error": str(exc)}
    return answer if isinstance(answer, (dict, list)) else {"answer": answer}


def _retrying(method: Any, *args: Any) -> Any:
    """An order POST or a cancel through `_call`, sent again while it gets no answer from the venue (at
    most POST_ATTEMPTS in all): an order the venue took from an unanswered attempt is answered
    "Duplicated" on the next one; cancelling twice cancels once."""
    answer = _call(method, *args)
    for attempt in range(1, POST_ATTEMPTS):
        if not _unanswered(answer):
            break
        pause = POST_BACKOFF_S * 2 ** (attempt - 1)
        log.warning("request %d got no answer (%s); sending it again in %gs", attempt, _error(answer), pause)
        time.sleep(pause)
        answer = _call(method, *args)
    return answer


def _unanswered(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get(NO_ANSWER) is True


def _error(response: Any) -> str:
    if isinstance(response, dict):
        return str(
            response.get("errorMsg") or response.get("error") or response.get("not_canceled") or response
        )
    return str(response)
