"""Bot 3, Copy Trading (aggressive): copies the fills of the best whale wallets (chain.fill) under risk.

Followed wallets: from the latest whale ranking (whale.rankings, one row per wallet; a newer ranking
date replaces the older one), the best `top_n_wallets` by rank among those with at least
`min_wallet_trades` trades and `min_resolved_markets` resolved markets; plus `pinned_wallets`, minus
`excluded_wallets`.

On a followed wallet's BUY of a token (a fill seen once: (tx hash, log index)):
- skipped when the fill is older than `max_delay_s` on the venue clock (the latest book time minus
  the fill's block time), when it is dust (less than `min_whale_usdc`), when the token has no fresh
  book or the best ask is more than `max_price_drift` above the whale's price (do not chase), or when
  the zone rules forbid copy trading at the ask (with the wallet's ranked win rate as the estimated
  win probability, which zone 3 asks for);
- otherwise a FAK buy at the best ask of `copy_fraction` x the whale's shares, capped by the ask's
  size and by `max_position_usdc` of cost in the market (what the bot holds there at the ask).
On a followed wallet's SELL of a token the bot holds copies of that wallet in: it sells the same
share of them (whale sold / whale's position as the bot saw it build up; all of them when the whale
sells more than that), FAK at the best bid. The rest is held to resolution, where the venue settles.
Every intent's cause names the wallet and the fill it copies (source "whale", signal id
"<tx hash>:<log index>").
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from mypy_extensions import mypyc_attr

from pets.bots.base import ZERO, Bot, OwnOrder
from pets.schemas.config import BotConfig, CopyTradingParams, VenueConfig
from pets.schemas.market_data import MarketInfo
from pets.schemas.orders import ExecutionReport, IntentCause, OrderIntent, Side
from pets.schemas.signals import WalletFill, WhaleRanking
from pets.venue.precision import SIZE_STEP, round_size

SEEN_FILLS = 10_000  # fill keys remembered against re-delivery


def fill_key(fill: WalletFill) -> str:
    return f"{fill.tx_hash}:{fill.log_index}"


def _pair(wallet: str, token: str) -> str:
    return f"{wallet}|{token}"


def followed_wallets(
    ranked: Mapping[str, WhaleRanking], params: CopyTradingParams
) -> dict[str, WhaleRanking | None]:
    """Lower-case wallet -> its ranking row (None: pinned, unranked): the best `top_n_wallets` by rank
    with enough trades and resolved markets, plus the pinned ones, minus the excluded ones."""
    excluded = {w.lower() for w in params.excluded_wallets}
    eligible = sorted(
        (r for w, r in ranked.items() if w.lower() not in excluded
         and r.trades >= params.min_wallet_trades and r.markets >= params.min_resolved_markets),
        key=lambda r: r.rank,
    )  # fmt: skip
    followed: dict[str, WhaleRanking | None] = {r.wallet.lower(): r for r in eligible[: params.top_n_wallets]}
    for wallet in params.pinned_wallets:
        if wallet.lower() not in excluded:
            followed.setdefault(wallet.lower(), ranked.get(wallet.lower()))
    return followed


@mypyc_attr(allow_interpreted_subclasses=True)
class CopyTrader(Bot):
    strategy_type = "directional"
    data_topics = ("chain.fill", "whale.rankings")
    skips_tops = True  # books only: it acts on fills of whales

    def __init__(self, config: BotConfig, venue: VenueConfig, id_namespace: str | None = None) -> None:
        super().__init__(config, venue, id_namespace)
        self.ranking_date = ""
        self.ranked: dict[str, WhaleRanking] = {}  # wallet -> its row of the latest ranking
        self.followed: dict[str, WhaleRanking | None] = {}  # wallet -> its row (None: pinned, unranked)
        self.seen: dict[str, None] = {}  # fill keys, oldest first
        self.whale_held: dict[str, Decimal] = {}  # wallet|token -> shares the whale bought as we saw it
        self.copied: dict[str, Decimal] = {}  # wallet|token -> shares we hold copying that wallet
        self.copying: dict[str, str] = {}  # client order id -> the wallet it copies
        self.skipped: dict[str, int] = {}  # reason -> fills not copied
        self._refollow()

    def bind(self, config: BotConfig, venue: VenueConfig) -> None:
        super().bind(config, venue)
        self.params: CopyTradingParams = config.params_as(CopyTradingParams)

    def wants_tops(self) -> bool:
        return False

    # ------------------------------------------------------------------ followed wallets

    def _on_whale_ranking(self, ranking: WhaleRanking) -> list[OrderIntent]:
        if ranking.ranking_date < self.ranking_date:
            return []
        if ranking.ranking_date > self.ranking_date:
            self.ranking_date, self.ranked = ranking.ranking_date, {}
        self.ranked[ranking.wallet.lower()] = ranking
        self._refollow()
        return []

    def _refollow(self) -> None:
        self.followed = followed_wallets(self.ranked, self.params)

    # ------------------------------------------------------------------ fills of whales

    def _skip(self, reason: str) -> list[OrderIntent]:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        return []

    def _on_wallet_fill(self, fill: WalletFill) -> list[OrderIntent]:
        wallet = fill.wallet.lower()
        if fill.retracted or wallet not in self.followed or fill.asset_id not in self.token_market:
            return []
        key = fill_key(fill)
        if key in self.seen:
            return []
        self.seen[key] = None
        if len(self.seen) > SEEN_FILLS:
            del self.seen[next(iter(self.seen))]
        pair = _pair(wallet, fill.asset_id)
        if fill.side == "SELL":
            return self._follow_exit(fill, pair)
        self.whale_held[pair] = self.whale_held.get(pair, ZERO) + fill.shares
        return self._copy_buy(fill, wallet)

    def _copy_buy(self, fill: WalletFill, wallet: str) -> list[OrderIntent]:
        params = self.params
        if self.clock_ms - fill.ts_ms > params.max_delay_s * 1000:
            return self._skip("too_old")
        if fill.usdc < params.min_whale_usdc:
            return self._skip("dust")
        info = self.token_market[fill.asset_id]
        book = self.fresh_book(fill.asset_id)
        if not self.tradable(info) or book is None or book.best_ask is None:
            return self._skip("no_book")
        ask = book.best_ask
        if ask - fill.price > params.max_price_drift:
            return self._skip("price_drift")
        ranking = self.followed[wallet]
        probability = ranking.win_rate if ranking is not None else None
        if not self.zone_allows(ask, probability=probability):
            return self._skip("zone")
        held_cost = ZERO  # what the bot holds in the market, the copied token at the ask, others at their mid
        for token in info.token_ids:
            held_cost += self.held(token) * (ask if token == fill.asset_id else self._mark(token))
        room = self.config.max_position_usdc - held_cost
        shares = params.copy_fraction * fill.shares
        if book.best_ask_size is not None:
            shares = min(shares, book.best_ask_size)
        shares = round_size(min(shares, room / ask) if room > 0 else ZERO)
        if shares < SIZE_STEP or shares * ask < self.venue.min_marketable_usdc:
            return self._skip("too_small")
        if held_cost == 0 and shares * ask < self.config.min_position_usdc:
            return self._skip("too_small")
        note = f"copy {wallet} BUY {fill.shares} @ {fill.price} ({fill.exchange} block {fill.block_number})"
        return self._place(fill, wallet, "BUY", ask, shares, probability, note)

    def _follow_exit(self, fill: WalletFill, pair: str) -> list[OrderIntent]:
        whale = self.whale_held.get(pair, ZERO)
        self.whale_held[pair] = max(whale - fill.shares, ZERO)
        mine = min(self.copied.get(pair, ZERO), self.held(fill.asset_id))
        if mine <= 0:
            return []
        share = fill.shares / whale if whale > fill.shares else Decimal(1)
        book = self.fresh_book(fill.asset_id)
        if book is None or book.best_bid is None:
            return self._skip("no_book")
        bid = book.best_bid
        shares = mine * share
        if book.best_bid_size is not None:
            shares = min(shares, book.best_bid_size)
        shares = round_size(shares)
        if shares < SIZE_STEP or shares * bid < self.venue.min_marketable_usdc:
            return self._skip("too_small")
        wallet = pair.split("|", 1)[0]
        note = f"exit with {wallet}: it sold {fill.shares} of {whale} @ {fill.price}"
        return self._place(fill, wallet, "SELL", bid, shares, None, note)

    def _place(
        self,
        fill: WalletFill,
        wallet: str,
        side: Side,
        price: Decimal,
        shares: Decimal,
        probability: Decimal | None,
        note: str,
    ) -> list[OrderIntent]:
        cause = IntentCause(source="whale", signal_id=fill_key(fill), probability=probability, note=note)
        intent = self.place(
            fill.asset_id, side, price, shares, order_type="FAK", passive=False,
            probability=probability, cause=cause,
        )  # fmt: skip
        if intent is None:
            return []
        self.copying[intent.client_order_id] = wallet
        return [intent]

    def _mark(self, token: str) -> Decimal:
        book = self.books.get(token)
        return book.mid if book is not None and book.mid is not None else ZERO

    # ------------------------------------------------------------------ own orders

    def _on_fill(self, order: OwnOrder, report: ExecutionReport) -> list[OrderIntent]:
        wallet = self.copying.get(order.client_order_id)
        if wallet is not None:
            pair = _pair(wallet, order.asset_id)
            signed = report.last_qty if order.side == "BUY" else -report.last_qty
            self.copied[pair] = max(self.copied.get(pair, ZERO) + signed, ZERO)
        return []

    def _on_order_gone(self, order: OwnOrder, why: str) -> list[OrderIntent]:
        self.copying.pop(order.client_order_id, None)
        return []

    def _on_market(self, info: MarketInfo) -> list[OrderIntent]:
        if info.closed or info.winning_asset_id is not None:
            tokens = set(info.token_ids)
            for book in (self.copied, self.whale_held):
                for pair in [p for p in book if p.split("|", 1)[1] in tokens]:
                    del book[pair]  # settled by the venue
        return []
