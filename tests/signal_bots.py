"""A tiny signal-driven bot for the signal machinery's tests (Bots 2, 3, 4, 7 come in later issues)
and the signals it reads. It buys the signalled token at the best ask (10 shares, FAK) when the
signal says BUY with a probability, recording the signal as the intent's cause."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any

import msgspec

from pets.bots.base import Bot
from pets.bots.registry import STRATEGY_CLASSES
from pets.schemas.config import PetsConfig
from pets.schemas.orders import OrderIntent
from pets.schemas.signals import Signal
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


# bot_04 (news scalping) runs SignalTaker, bot_02 (esports) EsportsTaker
CLASSES = MappingProxyType({**STRATEGY_CLASSES, "news_scalping": SignalTaker, "esports_live": EsportsTaker})


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
