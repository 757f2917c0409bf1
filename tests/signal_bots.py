"""Tiny signal-driven bots for the signal machinery's tests (Bots 2, 3, 4, 7 come in later issues)
and the signals they read. SignalTaker buys the signalled token at the best ask (10 shares, FAK) when
the signal says BUY with a probability, recording the signal as the intent's cause; WhaleCopier
buys what a ranked whale wallet bought (chain.fill, whale.rankings)."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any

import msgspec

from pets.bots.base import Bot
from pets.bots.registry import STRATEGY_CLASSES
from pets.schemas.config import PetsConfig
from pets.schemas.orders import IntentCause, OrderIntent
from pets.schemas.signals import Signal, WalletFill, WhaleRanking
from venue_factories import MS, T0


class SignalTaker(Bot):
    strategy_type = "directional"
    signal_sources = ("news", "model")

    def _on_signal(self, signal: Signal) -> list[OrderIntent]:
        if signal.asset_id is None or signal.side != "BUY" or signal.probability is None:
            return []
        book = self.fresh_book(signal.asset_id)
        if book is None or book.best_ask is None:
            return []
        intent = self.place(
            signal.asset_id, "BUY", book.best_ask, Decimal(10), order_type="FAK", passive=False,
            probability=signal.probability, cause=self.cause_of(signal),
        )  # fmt: skip
        return [intent] if intent is not None else []


class EsportsTaker(SignalTaker):
    signal_sources = ("esports",)


class WhaleCopier(Bot):
    strategy_type = "directional"
    data_topics = ("chain.fill", "whale.rankings")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ranked: set[str] = set()

    def _on_whale_ranking(self, ranking: WhaleRanking) -> list[OrderIntent]:
        self.ranked.add(ranking.wallet)
        return []

    def _on_wallet_fill(self, fill: WalletFill) -> list[OrderIntent]:
        book = self.fresh_book(fill.asset_id)
        if fill.wallet not in self.ranked or fill.side != "BUY" or book is None or book.best_ask is None:
            return []
        cause = IntentCause(source="whale", signal_id=f"{fill.tx_hash}:{fill.log_index}", note=fill.wallet)
        intent = self.place(
            fill.asset_id, "BUY", book.best_ask, Decimal(10), order_type="FAK", passive=False,
            probability=Decimal("0.6"), cause=cause,
        )  # fmt: skip
        return [intent] if intent is not None else []


# bot_04 (news scalping) runs SignalTaker, bot_02 (esports) EsportsTaker, bot_03 (copy trading) WhaleCopier
TEST_CLASSES = {"news_scalping": SignalTaker, "esports_live": EsportsTaker, "copy_trading": WhaleCopier}
CLASSES = MappingProxyType({**STRATEGY_CLASSES, **TEST_CLASSES})


def wallet_fill(wallet: str, asset_id: str = "yes1", n: int = 1) -> WalletFill:
    return WalletFill(
        tx_hash=f"0xtx{n}", log_index=0, block_number=1, exchange="ctf_v2", wallet=wallet, counterparty=None,
        asset_id=asset_id, side="BUY", price=Decimal("0.47"), shares=Decimal(1000), usdc=Decimal(470),
        fee=Decimal(0), ts_ms=T0,
    )  # fmt: skip


def ranking(wallet: str, rank: int = 1) -> WhaleRanking:
    return WhaleRanking(
        ranking_date="2025-06-15", rank=rank, wallet=wallet, pnl=Decimal(10_000), volume=Decimal(10**6),
        trades=500, markets=40, win_rate=Decimal("0.6"), roi=Decimal("0.1"),
    )  # fmt: skip


def enable(config: PetsConfig, *bot_ids: str) -> PetsConfig:
    """`config` with exactly `bot_ids` enabled."""
    bots = tuple(msgspec.structs.replace(b, enabled=b.id in bot_ids) for b in config.bots)
    return msgspec.structs.replace(config, bots=bots)


def signal(n: int = 1, **changes: Any) -> Signal:
    fields: dict[str, Any] = {
        "signal_id": f"s{n}",
        "source": "news",
        "market": "m1",
        "asset_id": "yes1",
        "side": "BUY",
        "probability": Decimal("0.62"),
        "confidence": Decimal("0.8"),
        "rationale": "test",
        "ts_ns": T0 * MS,
        "expires_ns": (T0 + 60_000) * MS,
        "model_version": "test-model@1",
    }
    fields.update(changes)
    return Signal(**fields)
