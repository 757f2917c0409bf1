"""Which class runs which strategy, and `build_bots`: one instance of every ENABLED bot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from pets.bots.ai_contrarian import AiContrarian
from pets.bots.base import Bot
from pets.bots.copy_trading import CopyTrader
from pets.bots.esports_live import EsportsLiveEvents
from pets.bots.kelly_value_betting import KellyValueBetting
from pets.bots.long_term_value import LongTermValue
from pets.bots.market_making import MarketMaker
from pets.bots.market_rebalancing_arb import MarketRebalancingArb
from pets.bots.multi_outcome_arb import MultiOutcomeArb
from pets.bots.news_scalping import NewsScalping
from pets.bots.tail_risk_mm import TailRiskMM
from pets.schemas.config import BotConfig, PetsConfig

STRATEGY_CLASSES: Mapping[str, type[Bot]] = MappingProxyType(
    {
        "market_rebalancing_arb": MarketRebalancingArb,
        "esports_live": EsportsLiveEvents,
        "market_making": MarketMaker,
        "multi_outcome_arb": MultiOutcomeArb,
        "tail_risk_mm": TailRiskMM,
        "kelly_value_betting": KellyValueBetting,
        "long_term_value": LongTermValue,
        "copy_trading": CopyTrader,
        "news_scalping": NewsScalping,
        "ai_contrarian_attention": AiContrarian,
    }
)


class UnimplementedStrategyError(LookupError):
    """An enabled bot's strategy has no class yet."""


def bot_class(bot: BotConfig, classes: Mapping[str, type[Bot]] = STRATEGY_CLASSES) -> type[Bot]:
    """The class running `bot`'s strategy (`classes`: another registry, e.g. a test's)."""
    try:
        return classes[bot.strategy]
    except KeyError:
        raise UnimplementedStrategyError(
            f"{bot.id} ({bot.strategy}) is enabled but its strategy is not implemented; implemented: "
            f"{', '.join(classes)}. Set `enabled: false` in its config file."
        ) from None


def enabled_bots(config: PetsConfig) -> list[BotConfig]:
    return [bot for bot in config.bots if bot.enabled]


def build_bots(config: PetsConfig, classes: Mapping[str, type[Bot]] = STRATEGY_CLASSES) -> list[Bot]:
    """One instance per enabled bot (disabled bots never run), in bot-id order, with the zone rules."""
    bots = [bot_class(bot, classes)(bot, config.system.venue) for bot in enabled_bots(config)]
    for bot in bots:
        bot.use_zones(config.zones)
    return bots


def signal_topics(classes: Iterable[type[Bot]]) -> tuple[str, ...]:
    """The signal.* topics (and chain.fill, whale.rankings) some of these bot classes read, sorted."""
    classes = list(classes)
    signals = {f"signal.{source}" for cls in classes for source in cls.signal_sources}
    return tuple(sorted(signals | {topic for cls in classes for topic in cls.data_topics}))
