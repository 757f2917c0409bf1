"""Bot 3 (copy trading) on scripted whale fills, rankings and books."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import msgspec
from bot_factories import CONFIG, T0, VENUE, legs, market, report, tob

from pets.bots.copy_trading import CopyTrader
from pets.bots.registry import build_bots
from pets.schemas.config import CopyTradingParams
from pets.schemas.orders import OrderIntent
from pets.schemas.signals import WalletFill, WhaleRanking

WHALE = "0x" + "aa" * 20
PARAMS = CopyTradingParams(
    top_n_wallets=2, min_wallet_trades=50, min_resolved_markets=5, copy_fraction=D("0.10"), max_delay_s=30,
    max_price_drift=D("0.02"), min_whale_usdc=D(50),
)  # fmt: skip


def new_bot(**changes: Any) -> CopyTrader:
    params = msgspec.structs.replace(PARAMS, **changes)
    config = msgspec.structs.replace(CONFIG.bot("bot_03"), params=params, enabled=True)
    assert (config.min_position_usdc, config.max_position_usdc) == (D(10), D(250))
    bot = CopyTrader(config, VENUE)
    bot.use_zones(CONFIG.zones)
    bot.on_market(market("m1"))
    return bot


def ranking(wallet: str = WHALE, rank: int = 1, date: str = "2026-06-01", **changes: Any) -> WhaleRanking:
    fields: dict[str, Any] = {
        "ranking_date": date, "rank": rank, "wallet": wallet, "pnl": D(10_000), "volume": D(10**6),
        "trades": 500, "markets": 40, "win_rate": D("0.6"), "roi": D("0.1"),
    }  # fmt: skip
    return WhaleRanking(**{**fields, **changes})


def whale_fill(
    side: str = "BUY",
    shares: str = "1000",
    price: str = "0.30",
    n: int = 1,
    wallet: str = WHALE,
    ts: int = T0,
) -> WalletFill:
    return WalletFill(
        tx_hash=f"0xtx{n}", log_index=7, block_number=90_000_000 + n, exchange="ctf_v2", wallet=wallet,
        counterparty="0x" + "bb" * 20, asset_id="yes1", side=side,  # type: ignore[arg-type]
        price=D(price), shares=D(shares), usdc=D(shares) * D(price), fee=D(0), ts_ms=ts,
    )  # fmt: skip


def with_book(
    bot: CopyTrader, bid: str = "0.30", ask: str = "0.31", size: str = "1000", ts: int = T0
) -> None:
    bot.on_top_of_book(tob("yes1", "m1", bid, ask, ts_ms=ts, bid_size=size, ask_size=size))


def followed_bot(**changes: Any) -> CopyTrader:
    bot = new_bot(**changes)
    bot.on_whale_ranking(ranking())
    with_book(bot)
    return bot


def test_copies_a_followed_wallets_buy_with_the_copy_fraction_at_the_ask() -> None:
    bot = followed_bot()
    [intent] = bot.on_wallet_fill(whale_fill())
    # 0.10 x 1000 shares = 100 at the ask 0.31 ($31: above min_position_usdc 10, below max 250)
    assert legs([intent]) == [("place", "yes1", "BUY", D("0.31"), D(100), "FAK")]
    assert intent.strategy_type == "directional" and intent.probability == D("0.6")
    assert intent.cause is not None and intent.cause.source == "whale" and intent.cause.signal_id == "0xtx1:7"
    assert WHALE in intent.cause.note
    assert bot.on_wallet_fill(whale_fill()) == []  # the same fill again (re-delivery): copied once


def test_size_is_capped_by_the_position_limit_and_the_ask_size() -> None:
    bot = followed_bot()
    # 0.10 x 10,000 = 1,000 shares would cost 310 > 250: 250 / 0.31 = 806.45... -> 806.45 shares
    [intent] = bot.on_wallet_fill(whale_fill(shares="10000"))
    assert intent.size == D("806.45") and intent.size * intent.price <= 250
    bot = followed_bot()
    with_book(bot, size="40")
    [intent] = bot.on_wallet_fill(whale_fill(shares="1000", n=2))
    assert intent.size == D(40)


def test_skips_old_dust_chased_and_zone_forbidden_fills() -> None:
    bot = followed_bot()
    assert bot.on_wallet_fill(whale_fill(ts=T0 - 30_001)) == []  # 30.001 s old > max_delay_s 30
    assert bot.on_wallet_fill(whale_fill(shares="160", n=2)) == []  # 160 x 0.30 = $48 < $50: dust
    assert bot.on_wallet_fill(whale_fill(price="0.28", n=3)) == []  # ask 0.31 is 0.03 past 0.28 > 0.02
    with_book(bot, bid="0.84", ask="0.85")
    assert bot.on_wallet_fill(whale_fill(price="0.85", n=4)) == []  # zone 5: no directional bets
    assert bot.skipped == {"too_old": 1, "dust": 1, "price_drift": 1, "zone": 1}
    with_book(bot, bid="0.29", ask="0.30")
    assert len(bot.on_wallet_fill(whale_fill(ts=T0 - 30_000, n=5))) == 1  # exactly 30 s old, 0 drift: copied


def test_zone_3_needs_the_wallets_win_rate_above_its_threshold() -> None:
    bot = followed_bot()
    with_book(bot, bid="0.49", ask="0.50")
    assert len(bot.on_wallet_fill(whale_fill(price="0.50"))) == 1  # win rate 0.6 > 0.52
    bot = new_bot()
    bot.on_whale_ranking(ranking(win_rate=D("0.51")))
    with_book(bot, bid="0.49", ask="0.50")
    assert bot.on_wallet_fill(whale_fill(price="0.50")) == [] and bot.skipped == {"zone": 1}


def test_followed_wallets_come_from_the_latest_ranking_pins_and_exclusions() -> None:
    others = ["0x" + c * 40 for c in "123456"]
    bot = new_bot(pinned_wallets=(others[4],), excluded_wallets=(others[5],))
    for row in [
        ranking(others[0], rank=1, trades=49),  # too few trades
        ranking(others[1], rank=2, markets=4),  # too few resolved markets
        ranking(others[5], rank=3),  # excluded
        ranking(WHALE, rank=4),
        ranking(others[2], rank=5),
        ranking(others[3], rank=6),  # 3rd eligible: beyond top 2
    ]:
        bot.on_whale_ranking(row)
    assert set(bot.followed) == {WHALE, others[2], others[4]}  # the top 2 eligible + the pinned one
    bot.on_whale_ranking(ranking(others[3], rank=1, date="2026-06-02"))  # a newer ranking replaces it
    assert set(bot.followed) == {others[3], others[4]}
    bot.on_whale_ranking(ranking(WHALE, rank=1, date="2026-05-31"))  # an older one changes nothing
    assert set(bot.followed) == {others[3], others[4]}
    with_book(bot)
    assert bot.on_wallet_fill(whale_fill()) == []  # WHALE is no longer followed
    [intent] = bot.on_wallet_fill(whale_fill(wallet=others[4], n=2))  # pinned, unranked: no probability
    assert intent.probability is None and intent.price == D("0.31")


def fill_order(bot: CopyTrader, intent: OrderIntent, qty: str, px: str) -> None:
    bot.on_execution_report(report(intent, "fill", qty=qty, px=px))


def test_exits_in_proportion_when_the_whale_sells_and_forgets_at_resolution() -> None:
    bot = followed_bot()
    [buy] = bot.on_wallet_fill(whale_fill(shares="1000"))
    fill_order(bot, buy, "100", "0.31")
    with_book(bot, bid="0.35", ask="0.36", ts=T0 + 1000)
    # the whale sells 400 of its 1,000: we sell 40% of our 100 copied shares at the bid
    [sell] = bot.on_wallet_fill(whale_fill("SELL", shares="400", price="0.35", n=2))
    assert legs([sell]) == [("place", "yes1", "SELL", D("0.35"), D(40), "FAK")]
    assert sell.cause is not None and sell.cause.signal_id == "0xtx2:7" and WHALE in sell.cause.note
    fill_order(bot, sell, "40", "0.35")
    # it sells more than the 600 it has left (bought elsewhere too): we sell all 60 we have left
    [rest] = bot.on_wallet_fill(whale_fill("SELL", shares="900", price="0.35", n=3))
    assert rest.size == D(60)
    fill_order(bot, rest, "60", "0.35")
    assert bot.held("yes1") == 0
    # a new copy, then the market resolves before the whale sells
    [again] = bot.on_wallet_fill(whale_fill(shares="1000", price="0.35", n=4))
    fill_order(bot, again, "100", "0.36")
    bot.on_market(market("m1", closed=True, winning_asset_id="yes1"))
    assert bot.held("yes1") == 0 and bot.copied == {}  # settled by the venue at resolution
    assert bot.on_wallet_fill(whale_fill("SELL", shares="500", price="0.99", n=5)) == []


def test_the_shipped_bot_3_is_enabled_and_built() -> None:
    [bot] = [b for b in build_bots(CONFIG) if b.bot_id == "bot_03"]
    assert isinstance(bot, CopyTrader) and bot.data_topics == ("chain.fill", "whale.rankings")
