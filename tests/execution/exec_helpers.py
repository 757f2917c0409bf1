"""Scripted books and orders for the execution tests (numbers stated here, not read from config)."""

from __future__ import annotations

from decimal import Decimal
from itertools import count

from pets.execution.paper_exchange import PaperConfig, PaperExchange
from pets.schemas.config import VenueConfig
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderIntent
from pets.venue.fees import FeeSchedule
from pets.venue.order_book import OrderBook

D = Decimal
ASSET = "111"
MARKET = "0xmarket"
T0 = 1_750_000_000_000
RATE = D("0.03")  # every category's taker feeRate in these tests
REBATE_SHARE = D("0.20")
_ids = count(1)


def units(price: str) -> int:
    return int(D(price) * 10_000)


def size_units(size: str) -> int:
    return int(D(size) * 1_000_000)


class Books:
    """A BookSource over hand-set books."""

    def __init__(self) -> None:
        self.books: dict[str, OrderBook] = {}

    def book(self, asset_id: str) -> OrderBook | None:
        return self.books.get(asset_id)

    def set(
        self, bids: dict[str, str], asks: dict[str, str], ts: int = T0, asset_id: str = ASSET
    ) -> OrderBook:
        """Replace the book: {price: size} per side."""
        book = self.books.setdefault(asset_id, OrderBook(asset_id, MARKET))
        reason = book.apply_snapshot(
            [(units(p), size_units(s)) for p, s in bids.items()],
            [(units(p), size_units(s)) for p, s in asks.items()],
            ts,
            None,
        )
        assert reason is None, reason
        return book

    def level(self, side: str, price: str, size: str, ts: int, asset_id: str = ASSET) -> None:
        """One price_change: `side` BUY (bid) / SELL (ask) level at `price` becomes `size` ("0" removes)."""
        book = self.books[asset_id]
        assert book.apply_changes([(side == "BUY", units(price), size_units(size))], ts) is None


def exchange(
    books: Books,
    *,
    queue_position: bool = True,
    trade_fraction: str = "1",
    consume_liquidity: bool = True,
    balances: object = None,
) -> PaperExchange:
    fees = FeeSchedule(
        VenueConfig(
            fee_rates={"default": RATE},
            maker_rebate_share=REBATE_SHARE,
            min_order_shares=D(5),
            min_marketable_usdc=D(1),
            size_decimals=2,
            max_batch_orders=15,
        )
    )
    config = PaperConfig(
        fees=fees,
        queue_position=queue_position,
        trade_fraction=D(trade_fraction),
        consume_liquidity=consume_liquidity,
    )
    return PaperExchange(config, books, balances)  # type: ignore[arg-type]


def order(
    side: str,
    price: str,
    size: str,
    *,
    order_type: str = "GTC",
    post_only: bool = False,
    bot_id: str = "bot_05",
    asset_id: str = ASSET,
    action: str = "place",
    replaces: str | None = None,
    client_order_id: str | None = None,
    expires_at_ms: int | None = None,
    market: str = MARKET,
) -> ApprovedOrder:
    intent = OrderIntent(
        client_order_id=client_order_id or f"{bot_id}-test-{next(_ids)}",
        bot_id=bot_id,
        strategy_type="market_making",
        action=action,  # type: ignore[arg-type]
        market=market,
        asset_id=asset_id,
        side=side,  # type: ignore[arg-type]
        price=D(price),
        size=D(size),
        order_type=order_type,  # type: ignore[arg-type]
        post_only=post_only,
        replaces=replaces,
        source_ts_ms=T0,
        created_ns=T0 * 1_000_000,
        expires_at_ms=expires_at_ms,
    )
    return ApprovedOrder(intent=intent, size=D(size), approved_ns=T0 * 1_000_000, sequence=1)


def kinds(reports: list[ExecutionReport]) -> list[str]:
    return [r.kind for r in reports]


def fills(reports: list[ExecutionReport]) -> list[tuple[Decimal, Decimal]]:
    return [(r.last_qty, r.last_px) for r in reports if r.last_qty > 0]  # type: ignore[misc]
