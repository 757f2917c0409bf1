"""The paper exchange: approved orders filled against the current L2 book, as the venue would.

Books come from a `BookSource` (the market-state engine's pure books, pets.pipelines.market_data),
so the paper exchange sees exactly the book the bots priced from. Paper orders never enter that
book and never match each other.

Taker orders (FOK, FAK, and the marketable part of GTC/GTD) walk the opposite side level by level
up to their limit price: one report per level (`partial_fill` ... `fill`), each with the venue's
taker fee at that level's price. FOK fills completely or is rejected; FAK cancels its remainder;
GTC/GTD rest their remainder. With `consume_liquidity` the size a paper taker took from a level is
not offered again until the venue updates that level (otherwise a bot could take the same displayed
size on every frame).

Resting (maker) orders and the queue model:
- On placement the order joins the back of the queue at its price: `queue_ahead` = the displayed
  size at that price on its side (0 with `queue_position: false`).
- After every book update of its token, a DECREASE of the displayed size at its price is
  attributed to the queue ahead first (cancels and trades ahead both move it forward). Whatever
  the decrease exceeds the queue ahead by happened behind it; `trade_fraction` of that excess is
  taken to be trades, which would have filled this order first, so it fills that much (rounded
  down to the 0.01-share grid; the remainder is carried as credit). Increases join behind it.
- Trade-through: when the best opposite price reaches the order's price (a BUY's best ask <= its
  price, a SELL's best bid >= its price), a counterparty is at or through it: it fills fully at its
  own price.
- `queue_position: false` is the optimistic model (NautilusTrader's default): no queue ahead, so
  the first decrease at its price fills it (by `trade_fraction`), as does a touch.
Maker fills pay no fee and earn `maker_rebate_share` of the taker fee they generated.

Validation as the venue: price on the tick grid inside (0, 1), size on the 0.01 grid and at least
the market's minimum shares (marketable orders: $1 notional), post-only only on GTC/GTD and never
crossing, a sell covered by tokens held and not already offered, a buy by free cash (cash minus
open buy orders) when the wallet states it, GTD expiry. Every report id is deterministic
(pets.schemas.orders.report_id) and every timestamp is the venue time of the event that caused it, so
a replay reproduces the reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol

from mypy_extensions import mypyc_attr

from pets.native import by_constructor
from pets.schemas.config import PetsConfig
from pets.schemas.control import ALL_BOTS
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderIntent, ReportKind
from pets.venue.fees import FeeSchedule
from pets.venue.order_book import OrderBook
from pets.venue.units import PRICE_SCALE, SIZE_SCALE, size_decimal

ZERO: Final = Decimal(0)
NS_PER_MS: Final = 1_000_000
GRID_UNITS: Final = SIZE_SCALE // 100  # 0.01 share in size units
MARKETABLE: Final = frozenset({"FOK", "FAK"})


class BookSource(Protocol):
    def book(self, asset_id: str) -> OrderBook | None: ...


class Balances(Protocol):
    """The wallet behind the orders (the portfolio): what it can pay and deliver. `free_cash` None: the
    cash is gated upstream (the executor flow's market keys: risk's global ledger, docs/execution.md)."""

    def free_cash(self) -> Decimal | None: ...

    def token_balance(self, bot_id: str, asset_id: str) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class PaperConfig:
    """How the paper exchange fills (pets.yaml `paper_exchange`)."""

    fees: FeeSchedule
    queue_position: bool = True
    trade_fraction: Decimal = Decimal("0.5")  # share of a decrease beyond the queue ahead that is trades
    consume_liquidity: bool = True
    min_marketable_usdc: Decimal = Decimal(1)

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return by_constructor(self)

    @classmethod
    def from_config(cls, config: PetsConfig) -> PaperConfig:
        paper, venue = config.system.paper_exchange, config.system.venue
        return cls(
            fees=FeeSchedule.from_config(venue),
            queue_position=paper.queue_position,
            trade_fraction=paper.trade_fraction,
            consume_liquidity=paper.consume_liquidity,
            min_marketable_usdc=venue.min_marketable_usdc,
        )


@mypyc_attr(allow_interpreted_subclasses=True)
class RestingOrder:
    """An open paper order and its place in the queue (sizes in book units of 1e-6 shares)."""

    __slots__ = (
        "approved",
        "counts",
        "credit",
        "cum_qty",
        "expires_at_ms",
        "fee_rate",
        "intent",
        "last_level",
        "leaves",
        "price_units",
        "queue_ahead",
        "size",
    )

    def __init__(self, approved: ApprovedOrder, price_units: int, fee_rate: Decimal) -> None:
        self.approved = approved
        self.intent = approved.intent
        self.price_units = price_units
        self.size = approved.size
        self.cum_qty = ZERO
        self.leaves = approved.size
        self.queue_ahead = 0
        self.last_level = 0
        self.credit = 0
        self.counts: dict[str, int] = {}
        self.fee_rate = fee_rate
        self.expires_at_ms = approved.intent.expires_at_ms if approved.intent.order_type == "GTD" else None


@mypyc_attr(allow_interpreted_subclasses=True)
class PaperExchange:
    """Open paper orders per token; every handler returns the execution reports it caused."""

    def __init__(self, config: PaperConfig, books: BookSource, balances: Balances | None = None) -> None:
        self.config = config
        self.books = books
        self.balances = balances
        self.orders: dict[str, RestingOrder] = {}  # open orders by client order id
        self.by_asset: dict[str, dict[str, RestingOrder]] = {}
        self.seen: set[str] = set()  # every client order id placed (the venue refuses a reuse)
        self.consumed: dict[tuple[str, bool, int], tuple[int, int]] = {}  # level -> (size seen, taken)
        self.now_ms = 0
        self.market_fee_rates: dict[str, Decimal] = {}  # market -> feeRate stated by the venue
        self.market_categories: dict[str, str] = {}

    # ------------------------------------------------------------------ orders

    def on_order(self, approved: ApprovedOrder, now_ms: int | None = None) -> list[ExecutionReport]:
        """Apply one approved order: place, cancel, replace (cancel + place) or cancel_all."""
        self._clock(now_ms if now_ms is not None else approved.intent.source_ts_ms)
        intent = approved.intent
        action = intent.action
        if action == "place":
            return self._place(approved)
        if action == "cancel":
            target = intent.replaces or intent.client_order_id
            return self._cancel_request(intent, target, "cancelled by the bot")
        if action == "replace":
            out: list[ExecutionReport] = []
            if intent.replaces is not None and intent.replaces in self.orders:
                out += self._close(
                    self.orders[intent.replaces], "cancel", f"replaced by {intent.client_order_id}"
                )
            return out + self._place(approved)
        return self.cancel_all(intent.bot_id, intent.market, f"cancel-all {intent.client_order_id}")

    def cancel_all(
        self, bot_id: str = ALL_BOTS, market: str = "*", reason: str = "cancel-all"
    ) -> list[ExecutionReport]:
        """Cancel every open order of `bot_id` ("*" = all bots) in `market` ("*" = all markets)."""
        out: list[ExecutionReport] = []
        for order in list(self.orders.values()):
            intent = order.intent
            if bot_id in (ALL_BOTS, intent.bot_id) and market in ("*", intent.market):
                out += self._close(order, "cancel", reason)
        return out

    def on_market_resolved(self, market: str, now_ms: int) -> list[ExecutionReport]:
        """A resolved market trades no more: its open orders are cancelled."""
        self._clock(now_ms)
        return self.cancel_all(ALL_BOTS, market, "market resolved")

    def set_market(self, market: str, category: str, fee_rate: Decimal | None) -> None:
        """The market's category and, when the venue states it, its own feeRate (MarketInfo)."""
        self.market_categories[market] = category
        if fee_rate is not None:
            self.market_fee_rates[market] = fee_rate

    def _fee_rate(self, intent: OrderIntent) -> Decimal:
        category = self.market_categories.get(intent.market, intent.category)
        return self.config.fees.rate(category, self.market_fee_rates.get(intent.market))

    def open_orders(self) -> dict[str, tuple[int, Decimal]]:
        """bot -> (open orders, notional of its open buys): what the P&L snapshots call exposure."""
        out: dict[str, tuple[int, Decimal]] = {}
        for order in self.orders.values():
            count, buys = out.get(order.intent.bot_id, (0, ZERO))
            if order.intent.side == "BUY":
                buys += order.leaves * order.intent.price
            out[order.intent.bot_id] = (count + 1, buys)
        return out

    def _place(self, approved: ApprovedOrder) -> list[ExecutionReport]:
        intent = approved.intent
        if intent.client_order_id in self.seen:
            return []  # a re-delivered approval (at-least-once input): already handled
        self.seen.add(intent.client_order_id)
        book = self.books.book(intent.asset_id)
        reason = self._refusal(approved, book)
        if reason is not None:
            return [self._report_for(approved, "reject", reason=reason)]
        assert book is not None
        order = RestingOrder(approved, int(intent.price * PRICE_SCALE), self._fee_rate(intent))
        crosses = self._crosses(order, book)
        if crosses and intent.post_only:
            best = book.best_ask() if intent.side == "BUY" else book.best_bid()
            return [
                self._report_for(
                    approved,
                    "reject",
                    reason=(
                        f"post-only {intent.side} at {intent.price} would cross the book (best "
                        f"{'ask' if intent.side == 'BUY' else 'bid'} {best.price if best else '-'})"
                    ),
                )
            ]
        if intent.order_type == "FOK":
            available = self._available_to(order, book)
            if available < order.leaves:
                return [
                    self._report_for(
                        approved,
                        "reject",
                        reason=(
                            f"FOK not fully fillable: {available} of {order.leaves} available at "
                            f"{intent.price} or better"
                        ),
                    )
                ]
        if intent.order_type == "FAK" and not crosses:
            return [
                self._report_for(
                    approved, "reject", reason=(f"FAK found nothing to match at {intent.price} or better")
                )
            ]
        out = [self._report(order, "ack")]
        if crosses:
            out += self._take(order, book)
        if order.leaves <= 0:
            return out
        if intent.order_type in MARKETABLE:
            return out + self._close(
                order, "cancel", f"{intent.order_type} remainder {order.leaves} cancelled", resting=False
            )
        self._rest(order, book)
        return out

    def _refusal(self, approved: ApprovedOrder, book: OrderBook | None) -> str | None:
        """Why the venue would refuse this order, or None."""
        intent, size = approved.intent, approved.size
        if book is None or (not book.bid_prices and not book.ask_prices):
            return f"no order book for asset {intent.asset_id}"
        price = intent.price
        tick = book.tick_size  # the book judges prices by the one tick rule of every path
        if not (ZERO < price < 1) or price % tick:
            return f"price {price} is not on the {tick} tick grid within (0, 1)"
        if size <= 0 or size % Decimal("0.01"):
            return f"size {size} is not a positive multiple of 0.01"
        if intent.order_type in MARKETABLE:
            if size * price < self.config.min_marketable_usdc:
                return (
                    f"marketable notional {size * price} below the minimum {self.config.min_marketable_usdc}"
                )
        elif size < intent.min_order_size:
            return f"size {size} below the market minimum {intent.min_order_size} shares"
        if intent.post_only and intent.order_type not in ("GTC", "GTD"):
            return f"post-only is only allowed on GTC/GTD orders, not {intent.order_type}"
        if (
            intent.order_type == "GTD"
            and intent.expires_at_ms is not None
            and intent.expires_at_ms <= self.now_ms
        ):
            return f"GTD expiry {intent.expires_at_ms} is not in the future"
        if self.balances is not None:
            if intent.side == "SELL":
                held = self.balances.token_balance(intent.bot_id, intent.asset_id) - self._offered(
                    intent.bot_id, intent.asset_id
                )
                if size > held:
                    return (
                        f"not enough balance: sell {size} of {intent.asset_id} "
                        f"but {held} held and not offered"
                    )
            else:
                cash = self.balances.free_cash()
                if cash is not None:
                    worst_fee = self.config.fees.taker(size, price, self._fee_rate(intent))
                    free = cash - self._reserved_cash()
                    if size * price + worst_fee > free:
                        return f"not enough balance: buy {size * price + worst_fee} but {free} free cash"
        return None

    def _offered(self, bot_id: str, asset_id: str) -> Decimal:
        return sum(
            (
                o.leaves
                for o in self.by_asset.get(asset_id, {}).values()
                if o.intent.side == "SELL" and o.intent.bot_id == bot_id
            ),
            ZERO,
        )

    def _reserved_cash(self) -> Decimal:
        return sum((o.leaves * o.intent.price for o in self.orders.values() if o.intent.side == "BUY"), ZERO)

    def _cancel_request(self, intent: OrderIntent, target: str, reason: str) -> list[ExecutionReport]:
        order = self.orders.get(target)
        if order is None:
            refusal = f"cancel refused: order {target} is not open"
            return [ExecutionReport.refusal(intent, refusal, ts_ns=self.now_ms * NS_PER_MS)]
        return self._close(order, "cancel", reason)

    # ------------------------------------------------------------------ book updates

    def on_book_update(self, asset_id: str, now_ms: int | None = None) -> list[ExecutionReport]:
        """Re-check the resting orders of `asset_id` after its book changed (queue, trade-through, GTD)."""
        resting = self.by_asset.get(asset_id)
        book = self.books.book(asset_id)
        if book is not None:
            self._clock(now_ms if now_ms is not None else book.ts_ms)
        if not resting or book is None:
            return []
        out: list[ExecutionReport] = []
        for order in list(resting.values()):
            if order.expires_at_ms is not None and order.expires_at_ms <= self.now_ms:
                out += self._close(order, "expire", f"GTD order expired at {order.expires_at_ms}")
                continue
            if book.stale:
                continue
            out += self._check_resting(order, book)
        return out

    def on_timer(self, now_ms: int) -> list[ExecutionReport]:
        """Expire GTD orders whose time has come (also when their book is quiet)."""
        self._clock(now_ms)
        out: list[ExecutionReport] = []
        for order in list(self.orders.values()):
            if order.expires_at_ms is not None and order.expires_at_ms <= self.now_ms:
                out += self._close(order, "expire", f"GTD order expired at {order.expires_at_ms}")
        return out

    def _check_resting(self, order: RestingOrder, book: OrderBook) -> list[ExecutionReport]:
        price = order.price_units
        if order.intent.side == "BUY":
            opposite = book.ask_prices[0] if book.ask_prices else None
            through = opposite is not None and opposite <= price
            level = book.bid_sizes.get(price, 0)
        else:
            opposite = book.bid_prices[-1] if book.bid_prices else None
            through = opposite is not None and opposite >= price
            level = book.ask_sizes.get(price, 0)
        if through:
            return self._fill(order, order.leaves, order.intent.price, "maker", book.ts_ms)
        decrease = order.last_level - level
        order.last_level = level
        if decrease <= 0:
            return []
        if decrease <= order.queue_ahead:
            order.queue_ahead -= decrease
            return []
        excess = decrease - order.queue_ahead
        order.queue_ahead = 0
        units = int(excess * self.config.trade_fraction) + order.credit
        grid_units = units - units % GRID_UNITS
        order.credit = units - grid_units
        if grid_units <= 0:
            return []
        qty = min(size_decimal(grid_units), order.leaves)
        return self._fill(order, qty, order.intent.price, "maker", book.ts_ms)

    # ------------------------------------------------------------------ matching

    def _crosses(self, order: RestingOrder, book: OrderBook) -> bool:
        if order.intent.side == "BUY":
            return bool(book.ask_prices) and book.ask_prices[0] <= order.price_units
        return bool(book.bid_prices) and book.bid_prices[-1] >= order.price_units

    def _levels(self, order: RestingOrder, book: OrderBook) -> Iterable[tuple[int, int]]:
        """(price units, size units still available) of the opposite side within the limit, best first."""
        limit = order.price_units
        buy = order.intent.side == "BUY"
        prices = book.ask_prices if buy else reversed(book.bid_prices)
        sizes = book.ask_sizes if buy else book.bid_sizes
        for price in prices:
            if (price > limit) if buy else (price < limit):
                return
            size = sizes[price]
            if self.config.consume_liquidity:
                taken = self.consumed.get((order.intent.asset_id, buy, price))
                if taken is not None and taken[0] == size:
                    size -= taken[1]
            if size > 0:
                yield price, size

    def _available_to(self, order: RestingOrder, book: OrderBook) -> Decimal:
        total = sum(size for _, size in self._levels(order, book))
        return size_decimal(total - total % GRID_UNITS)

    def _take(self, order: RestingOrder, book: OrderBook) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        buy = order.intent.side == "BUY"
        sizes = book.ask_sizes if buy else book.bid_sizes
        asset_id = order.intent.asset_id
        for price, available in list(self._levels(order, book)):
            units = min(available - available % GRID_UNITS, int(order.leaves * SIZE_SCALE))
            if units <= 0:
                continue
            if self.config.consume_liquidity:
                key = (asset_id, buy, price)
                taken = self.consumed.get(key)
                before = taken[1] if taken is not None and taken[0] == sizes[price] else 0
                self.consumed[key] = (sizes[price], before + units)
            out += self._fill(order, size_decimal(units), Decimal(price) / PRICE_SCALE, "taker", book.ts_ms)
            if order.leaves <= 0:
                break
        return out

    def _rest(self, order: RestingOrder, book: OrderBook) -> None:
        own = book.bid_sizes if order.intent.side == "BUY" else book.ask_sizes
        level = own.get(order.price_units, 0)
        order.last_level = level
        order.queue_ahead = level if self.config.queue_position else 0
        client_id = order.intent.client_order_id
        self.orders[client_id] = order
        self.by_asset.setdefault(order.intent.asset_id, {})[client_id] = order

    def _fill(
        self, order: RestingOrder, qty: Decimal, px: Decimal, liquidity: str, source_ts_ms: int
    ) -> list[ExecutionReport]:
        qty = min(qty, order.leaves)
        order.cum_qty += qty
        order.leaves -= qty
        fees = self.config.fees
        if liquidity == "taker":
            fee, rebate = fees.taker(qty, px, order.fee_rate), ZERO
        else:
            fee, rebate = ZERO, fees.maker(qty, px, order.fee_rate)
        kind: ReportKind = "fill" if order.leaves <= 0 else "partial_fill"
        n = order.counts.get("trade", 0) + 1
        order.counts["trade"] = n
        report = self._report(
            order,
            kind,
            last_qty=qty,
            last_px=px,
            fee=fee,
            rebate=rebate,
            liquidity=liquidity,
            trade_id=f"{order.intent.client_order_id}:t{n}",
            source_ts_ms=source_ts_ms,
        )
        if order.leaves <= 0:
            self._forget(order)
        return [report]

    def _close(
        self, order: RestingOrder, kind: ReportKind, reason: str, *, resting: bool = True
    ) -> list[ExecutionReport]:
        order.leaves = ZERO  # a cancelled or expired order has nothing left working
        report = self._report(order, kind, reason=reason)
        if resting:
            self._forget(order)
        return [report]

    def _forget(self, order: RestingOrder) -> None:
        client_id = order.intent.client_order_id
        self.orders.pop(client_id, None)
        resting = self.by_asset.get(order.intent.asset_id)
        if resting is not None:
            resting.pop(client_id, None)
            if not resting:
                del self.by_asset[order.intent.asset_id]

    # ------------------------------------------------------------------ reports

    def _clock(self, now_ms: int) -> None:
        if now_ms > self.now_ms:
            self.now_ms = now_ms

    def _report(
        self,
        order: RestingOrder,
        kind: ReportKind,
        *,
        last_qty: Decimal = ZERO,
        last_px: Decimal | None = None,
        fee: Decimal = ZERO,
        rebate: Decimal = ZERO,
        liquidity: str | None = None,
        reason: str | None = None,
        trade_id: str | None = None,
        source_ts_ms: int | None = None,
    ) -> ExecutionReport:
        intent = order.intent
        n = order.counts.get(kind, 0) + 1
        order.counts[kind] = n
        return ExecutionReport.of_order(
            intent,
            order.size,
            kind,
            ts_ns=self.now_ms * NS_PER_MS,
            n=n,
            venue_order_id=f"paper:{intent.client_order_id}",
            cum_qty=order.cum_qty,
            leaves_qty=order.leaves,
            last_qty=last_qty,
            last_px=last_px,
            fee=fee,
            rebate=rebate,
            liquidity=liquidity,  # type: ignore[arg-type]
            reason=reason,
            trade_id=trade_id,
            source_ts_ms=source_ts_ms,
        )

    def _report_for(self, approved: ApprovedOrder, kind: ReportKind, *, reason: str) -> ExecutionReport:
        """A report for an order that never became a RestingOrder (refused before placement)."""
        return ExecutionReport.of_order(
            approved.intent, approved.size, kind, reason=reason, ts_ns=self.now_ms * NS_PER_MS
        )
