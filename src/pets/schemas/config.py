"""The YAML configuration as typed frozen objects: loader and cross-file validation.

    config = load_config(settings.config_dir)   # raises InvalidConfigError listing every ConfigError

Files (every key is described in docs/configuration.md): pets.yaml -> `GlobalConfig`,
risk_management.yaml -> `RiskConfig`, zone_framework.yaml -> `ZoneFramework`,
bots/bot_NN_<name>.yaml -> `BotConfig` (params typed per strategy, see `STRATEGIES`), topics.yaml ->
`TopicRegistry`. Money and prices are Decimals: YAML strings ("0.01") or numbers, which are converted
through their shortest text form (0.1 -> Decimal("0.1")), never through a binary float.
Decimal bounds are declared on the type (`Meta(extra=...)`: msgspec constrains only int/float itself)
and checked after conversion, so every out-of-range value is reported, not only the first.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType, NoneType, UnionType
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, Union, get_args, get_origin, get_type_hints

import msgspec
import yaml

from pets.schemas.topics import TopicRegistry, load_topic_registry

# ---------------------------------------------------------------------------------------------- types

PositiveDecimal = Annotated[Decimal, msgspec.Meta(extra={"gt": Decimal(0)})]
NonNegativeDecimal = Annotated[Decimal, msgspec.Meta(extra={"ge": Decimal(0)})]
Fraction = Annotated[Decimal, msgspec.Meta(extra={"gt": Decimal(0), "le": Decimal(1)})]  # (0, 1]
Probability = Annotated[Decimal, msgspec.Meta(extra={"ge": Decimal(0), "le": Decimal(1)})]  # [0, 1]
FeeRate = Annotated[Decimal, msgspec.Meta(extra={"ge": Decimal(0), "lt": Decimal(1)})]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]+$")]

DEFAULT_FEE_CATEGORY = "default"


class StrategyType(StrEnum):
    ARBITRAGE = "arbitrage"
    MARKET_MAKING = "market_making"
    DIRECTIONAL = "directional"
    TAIL_RISK = "tail_risk"


class RiskProfile(StrEnum):
    """How much risk a bot is meant to take (the product's lineup)."""

    AGGRESSIVE = "aggressive"
    NEUTRAL_AGGRESSIVE = "neutral_aggressive"
    CONSERVATIVE = "conservative"


class TradingMode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class _Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every config section: immutable, and an unknown key is an error."""


# ------------------------------------------------------------------------------------------ pets.yaml


class TradingConfig(_Config, frozen=True, kw_only=True):
    mode: TradingMode = TradingMode.PAPER
    starting_capital: PositiveDecimal
    base_currency: str = "pUSD"


class VenueConfig(_Config, frozen=True, kw_only=True):
    fee_rates: dict[str, FeeRate]  # taker feeRate by market category; must hold "default"
    maker_rebate_share: Probability
    min_order_shares: PositiveDecimal
    min_marketable_usdc: PositiveDecimal
    size_decimals: NonNegativeInt
    max_batch_orders: PositiveInt

    def fee_rate(self, category: str | None) -> Decimal:
        """The taker feeRate of a market category (the "default" rate for an unlisted one)."""
        return self.fee_rates.get(category or DEFAULT_FEE_CATEGORY, self.fee_rates[DEFAULT_FEE_CATEGORY])


class MarketDataConfig(_Config, frozen=True, kw_only=True):
    shard_size: Annotated[int, msgspec.Meta(ge=1, le=500)]  # tokens per connection; venue max ~500
    ping_interval_s: PositiveFloat
    silence_timeout_s: PositiveFloat
    reconnect_backoff_min_s: PositiveFloat
    reconnect_backoff_max_s: PositiveFloat


class SimulatorConfig(_Config, frozen=True, kw_only=True):
    seed: int
    binary_markets: NonNegativeInt
    neg_risk_outcomes: NonNegativeInt
    duration_s: PositiveFloat
    step_ms: PositiveInt


class PaperExchangeConfig(_Config, frozen=True, kw_only=True):
    """How the paper exchange fills resting orders (docs/execution.md)."""

    queue_position: bool = True  # false: no queue ahead, a resting order fills on the first touch
    trade_fraction: Fraction = Decimal("0.5")  # share of a decrease beyond the queue ahead that is trades
    consume_liquidity: bool = True  # a paper taker's fills use up displayed size until the level updates


class RunConfig(_Config, frozen=True, kw_only=True):
    """The single-process main job (`pets run`)."""

    snapshot_interval_ms: PositiveInt = 10_000  # P&L snapshot every this much venue time
    timer_interval_ms: PositiveInt = 1_000  # GTD expiry and bot timers at least this often


class StorageConfig(_Config, frozen=True, kw_only=True):
    batch_rows: PositiveInt
    flush_interval_ms: PositiveInt


class SignalsConfig(_Config, frozen=True, kw_only=True):
    """How the bots take signals (bots/signal_gate.py)."""

    book_wait_ms: NonNegativeInt = 2_000  # a signal whose market has no fresh book waits this long
    dedup_window_s: PositiveInt = 3_600  # signal ids are remembered this long (venue time)


class GlobalConfig(_Config, frozen=True, kw_only=True):
    """pets.yaml."""

    trading: TradingConfig
    venue: VenueConfig
    market_data: MarketDataConfig
    simulator: SimulatorConfig
    storage: StorageConfig
    bots_dir: str = "bots"
    paper_exchange: PaperExchangeConfig = msgspec.field(default_factory=PaperExchangeConfig)
    run: RunConfig = msgspec.field(default_factory=RunConfig)
    signals: SignalsConfig = msgspec.field(default_factory=SignalsConfig)


# ------------------------------------------------------------------------------- risk_management.yaml


class KellyConfig(_Config, frozen=True, kw_only=True):
    default_fraction: Fraction
    min_fraction: Fraction


class LeverageConfig(_Config, frozen=True, kw_only=True):
    max_gross_leverage: Fraction  # 1 = no leverage, the most allowed


class LimitsConfig(_Config, frozen=True, kw_only=True):
    max_bot_allocation: Fraction
    max_category_exposure: Fraction
    max_orders_per_second: PositiveInt
    max_orders_per_minute: PositiveInt
    daily_loss_halt: Fraction
    stale_book_max_age_ms: PositiveInt


class CircuitBreakersConfig(_Config, frozen=True, kw_only=True):
    consecutive_losses: PositiveInt
    cooldown_s: PositiveInt
    bot_drawdown_halt: Fraction
    portfolio_drawdown_emergency: Fraction


class RiskConfig(_Config, frozen=True, kw_only=True):
    """risk_management.yaml."""

    kelly: KellyConfig
    leverage: LeverageConfig
    limits: LimitsConfig
    circuit_breakers: CircuitBreakersConfig


# -------------------------------------------------------------------------------- zone_framework.yaml


class ZoneStrategy(_Config, frozen=True, kw_only=True):
    """A strategy the zone rules name; a bot's order of strategy_type `type` is judged as it."""

    name: Slug
    type: StrategyType
    description: str = ""

    @property
    def directional(self) -> bool:
        return self.type == StrategyType.DIRECTIONAL


class Zone(_Config, frozen=True, kw_only=True):
    """Prices [lower, upper) of the token being bought; the last zone also includes upper (1)."""

    zone: PositiveInt
    name: Slug
    lower: Probability
    upper: Probability
    allowed_strategies: tuple[Slug, ...]  # names of ZoneFramework.strategies
    directional_min_probability: Probability | None = None  # any directional buy needs p(win) above this
    directional_prohibited: bool = False  # no directional strategy, not even by exception
    description: str


class ZoneException(_Config, frozen=True, kw_only=True):
    """Where a strategy may buy beyond the zones' lists, and why (zone_framework.yaml `exceptions`)."""

    strategy: Slug
    zones: tuple[PositiveInt, ...]
    baskets_only: bool = False  # only the legs of a complete-set basket (group_id set)
    reason: Annotated[str, msgspec.Meta(min_length=1)]


class ZoneFramework(_Config, frozen=True, kw_only=True):
    """zone_framework.yaml: zones in price order, covering [0, 1] without gaps or overlaps."""

    strategies: tuple[ZoneStrategy, ...]
    zones: tuple[Zone, ...]
    exceptions: tuple[ZoneException, ...] = ()

    def strategy(self, name: str) -> ZoneStrategy | None:
        return next((s for s in self.strategies if s.name == name), None)


# ------------------------------------------------------------------------------------ bots/*.yaml


class MarketRebalancingArbParams(_Config, frozen=True, kw_only=True):
    min_edge: PositiveDecimal
    max_basket_shares: PositiveDecimal
    unwind_after_ms: PositiveInt
    sell_bid_sum_above: Annotated[Decimal, msgspec.Meta(extra={"gt": Decimal(1)})]


class NewsScalpingParams(_Config, frozen=True, kw_only=True):
    """Bot 4 (bots/news_scalping.py)."""

    min_confidence: Probability  # signal confidence (source reliability x match) needed to trade
    max_news_age_s: PositiveInt = 90  # the edge window: trade only this soon after the item's first sighting
    max_price_move: Probability = Decimal("0.03")  # "already priced?": the mid rose more since the item
    max_slippage_ticks: NonNegativeInt = 2  # the marketable limit: best ask + this many ticks at most
    order_type: Literal["FAK", "FOK"] = "FAK"
    take_profit: PositiveDecimal = Decimal("0.03")  # exit when the mid is this far above the entry
    stop_loss: PositiveDecimal = Decimal("0.02")  # ... or this far below it
    hold_s: PositiveInt  # ... or this long after the entry
    passive_exit_s: PositiveInt = 10  # a passive exit rests this long before the bot sells at the bid


class CopyTradingParams(_Config, frozen=True, kw_only=True):
    """Bot 3 (bots/copy_trading.py)."""

    top_n_wallets: PositiveInt  # follow the best N eligible wallets of the latest whale ranking
    min_wallet_trades: PositiveInt  # eligible: at least this many trades ...
    min_resolved_markets: PositiveInt = 1  # ... in at least this many resolved markets
    pinned_wallets: tuple[str, ...] = ()  # followed whatever the ranking says
    excluded_wallets: tuple[str, ...] = ()  # never followed
    copy_fraction: Fraction  # our size = this x the whale's shares (then capped by the bot's limits)
    max_delay_s: PositiveFloat  # do not copy a fill older than this (venue clock - block time)
    max_price_drift: NonNegativeDecimal = Decimal("0.02")  # do not chase: ask - whale price above this
    min_whale_usdc: NonNegativeDecimal = Decimal(50)  # dust filter: ignore whale fills smaller than this


class MarketMakingParams(_Config, frozen=True, kw_only=True):
    half_spread: PositiveDecimal
    quote_size_shares: PositiveDecimal
    max_inventory_shares: PositiveDecimal
    inventory_skew_per_share: NonNegativeDecimal
    volatility_window_s: PositiveInt
    max_volatility: PositiveDecimal
    requote_interval_ms: PositiveInt
    requote_min_move_ticks: PositiveInt


class MultiOutcomeArbParams(_Config, frozen=True, kw_only=True):
    min_edge: PositiveDecimal
    max_basket_usdc: PositiveDecimal
    include_no_side: bool = True


class TailRiskMmParams(_Config, frozen=True, kw_only=True):
    tail_min_price: Probability
    tail_max_price: Probability
    position_usdc: PositiveDecimal
    max_positions: PositiveInt
    max_positions_per_event: PositiveInt
    market_making: MarketMakingParams


class AiContrarianAttentionParams(_Config, frozen=True, kw_only=True):
    """Bot 7 (bots/ai_contrarian.py)."""

    min_edge: PositiveDecimal  # |q' - price| needed to bet against the crowd
    shrink_weight: Fraction = Decimal("0.5")  # w of q' = w * q + (1 - w) * price
    attention_window_s: PositiveInt = 300  # a market's attention features (features.news) count this long
    min_attention_ratio: PositiveDecimal = Decimal(3)  # a spike: 5 min items / the 24 h rate per 5 min
    min_news: PositiveInt = 1  # and at least this many items in 5 min
    baseline_floor: PositiveDecimal = Decimal("0.25")  # items per 5 min assumed when the 24 h rate is lower
    min_price_move: Probability = Decimal("0.03")
    max_signal_age_s: PositiveInt  # forecasts older than this are not used
    cooldown_s: PositiveInt = 600  # per market, after an entry
    bankroll_usdc: PositiveDecimal  # the budget risk gives the bot: capital_allocation x starting_capital
    kelly_fraction: Fraction = Decimal("0.25")


class KellyValueBettingParams(_Config, frozen=True, kw_only=True):
    """Bot 9 (bots/kelly_value_betting.py)."""

    model_name: str = "calibration"  # the model store's name of the promoted model
    min_edge: PositiveDecimal  # model probability - all-in cost per share (ask + taker fee)
    bankroll_usdc: PositiveDecimal  # the budget risk gives the bot: capital_allocation x starting_capital
    kelly_fraction: Fraction = Decimal("0.25")  # share of full Kelly staked
    min_price: Probability = Decimal(0)  # entries only at asks in [min_price, max_price): the allowed zones
    max_price: Probability
    coin_flip_from: Probability = Decimal("0.40")  # zone 3's lower bound ...
    coin_flip_min_probability: Probability = Decimal("0.52")  # ... where a buy needs p above this
    reload_interval_ms: PositiveInt = 60_000  # how often the promoted model version is checked
    # a forecast from signal.model is dropped once the token's mid moved this far from its mid when the
    # forecast arrived: it was made for a price that is gone (a market running to its outcome)
    forecast_max_drift: Probability = Decimal("0.05")


class LongTermValueParams(KellyValueBettingParams, frozen=True, kw_only=True):
    """Bot 10 (bots/long_term_value.py): Bot 9's knobs plus the hold-to-resolution rules."""

    min_annual_return: PositiveDecimal  # edge / cost x 365 / days to the end date
    max_total_usdc: PositiveDecimal  # capital locked across all markets (cost of what is held)
    exit_margin: NonNegativeDecimal  # exit only when p < best bid net of fee - exit_margin
    fair_values_file: str = "fair_values.yaml"  # in the config directory; overrides the model


class EsportsLiveParams(KellyValueBettingParams, frozen=True, kw_only=True):
    """Bot 2 (bots/esports_live.py): Bot 9's sizing on the esports win model's signals."""

    model_name: str = "esports_win"  # the model store's name (the esports_win_model asset)
    game: Slug = "lol"
    max_feed_lag_ms: PositiveInt  # enter only on signals whose feed ran at most this far behind
    exit_edge: NonNegativeDecimal  # sell when p - (bid net of fee) is at most this: the gap has closed
    venue_pause_ms: PositiveInt = 5_000  # after the venue cancels or rejects an order, no entry in that
    # market on signals created sooner than this (the venue pauses markets around game events)


class StrategySpec(NamedTuple):
    strategy_type: StrategyType
    params: type[msgspec.Struct]


STRATEGIES: Mapping[str, StrategySpec] = MappingProxyType({
    "market_rebalancing_arb": StrategySpec(StrategyType.ARBITRAGE, MarketRebalancingArbParams),
    "esports_live": StrategySpec(StrategyType.DIRECTIONAL, EsportsLiveParams),
    "copy_trading": StrategySpec(StrategyType.DIRECTIONAL, CopyTradingParams),
    "news_scalping": StrategySpec(StrategyType.DIRECTIONAL, NewsScalpingParams),
    "market_making": StrategySpec(StrategyType.MARKET_MAKING, MarketMakingParams),
    "multi_outcome_arb": StrategySpec(StrategyType.ARBITRAGE, MultiOutcomeArbParams),
    "ai_contrarian_attention": StrategySpec(StrategyType.DIRECTIONAL, AiContrarianAttentionParams),
    "tail_risk_mm": StrategySpec(StrategyType.TAIL_RISK, TailRiskMmParams),
    "kelly_value_betting": StrategySpec(StrategyType.DIRECTIONAL, KellyValueBettingParams),
    "long_term_value": StrategySpec(StrategyType.DIRECTIONAL, LongTermValueParams),
})


class RiskOverrides(_Config, frozen=True, kw_only=True):
    """A bot's own limits; each may only be tighter than the global one it replaces."""

    kelly_fraction: Fraction | None = None  # within [kelly.min_fraction, kelly.default_fraction]
    max_orders_per_second: PositiveInt | None = None
    max_orders_per_minute: PositiveInt | None = None
    consecutive_losses: PositiveInt | None = None
    drawdown_halt: Fraction | None = None  # replaces circuit_breakers.bot_drawdown_halt
    max_daily_loss_usdc: PositiveDecimal | None = None  # the bot pauses for the day after losing this


P = TypeVar("P", bound=msgspec.Struct)


class BotConfig(_Config, frozen=True, kw_only=True):
    """bots/bot_NN_<name>.yaml."""

    id: Annotated[str, msgspec.Meta(pattern=r"^bot_\d{2}$")]
    name: Slug
    description: str = ""
    strategy: str  # a key of STRATEGIES
    strategy_type: StrategyType
    risk_profile: RiskProfile
    zone_strategies: tuple[Slug, ...]  # names of zone_framework.yaml `strategies`, one per order type
    enabled: bool
    capital_allocation: Fraction  # of trading.starting_capital
    min_position_usdc: PositiveDecimal  # smallest position worth opening (cost)
    max_position_usdc: PositiveDecimal  # largest position in one market (cost)
    categories: tuple[str, ...] = ()  # market categories traded; empty = all
    risk: RiskOverrides = msgspec.field(default_factory=RiskOverrides)
    params: Any = msgspec.field(default_factory=dict)  # after loading: STRATEGIES[strategy].params

    def zone_strategy(self, strategy_type: str, zones: ZoneFramework) -> str | None:
        """The zone strategy that judges this bot's orders of `strategy_type` (None: none named)."""
        for name in self.zone_strategies:
            spec = zones.strategy(name)
            if spec is not None and spec.type == strategy_type:
                return name
        return None

    def params_as(self, params_type: type[P]) -> P:
        """The params, typed: `bot.params_as(MarketMakingParams)`."""
        if not isinstance(self.params, params_type):
            raise TypeError(f"{self.id}: params are {type(self.params).__name__}, not {params_type.__name__}")
        return self.params


class PetsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The whole validated configuration of one config directory."""

    system: GlobalConfig  # pets.yaml
    risk: RiskConfig
    zones: ZoneFramework
    bots: tuple[BotConfig, ...]  # sorted by id
    topics: TopicRegistry

    def bot(self, bot_id: str) -> BotConfig:
        for bot in self.bots:
            if bot.id == bot_id:
                return bot
        raise KeyError(f"unknown bot {bot_id!r}; known: {', '.join(b.id for b in self.bots)}")


# ----------------------------------------------------------------------------------------- errors


class ConfigError(msgspec.Struct, frozen=True):
    """One problem: the file, the dotted key (`zones[2].upper`, `params.half_spread`) and what is wrong."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}" if self.key else f"{self.file}: {self.message}"


class InvalidConfigError(ValueError):
    """Every ConfigError found in a config directory, one per line."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


# ----------------------------------------------------------------------------------------- loading

_MISSING: Any = object()
BOT_FILE = re.compile(r"^(?P<id>bot_\d{2})_(?P<name>[a-z0-9_]+)\.yaml$")
T = TypeVar("T")


def load_config(config_dir: Path) -> PetsConfig:
    """Load and validate every config file of `config_dir`; raises InvalidConfigError listing all errors."""
    errors: list[ConfigError] = []
    system = _load(config_dir / "pets.yaml", GlobalConfig, errors)
    risk = _load(config_dir / "risk_management.yaml", RiskConfig, errors)
    zones = _load(config_dir / "zone_framework.yaml", ZoneFramework, errors)
    bots_dir = config_dir / (system.bots_dir if system is not None else "bots")
    bot_files = _load_bots(bots_dir, errors)
    topics = _load_topics(config_dir / "topics.yaml", errors)

    if system is not None:
        errors += _check_system(_display(config_dir / "pets.yaml"), system)
    if risk is not None:
        errors += _check_risk(_display(config_dir / "risk_management.yaml"), risk)
    if zones is not None:
        errors += _check_zones(_display(config_dir / "zone_framework.yaml"), zones)
        errors += _check_zone_strategies(_display(config_dir / "zone_framework.yaml"), zones)
    errors += _check_bots(bots_dir, bot_files, system, risk, zones)
    if errors:
        raise InvalidConfigError(errors)
    assert system is not None and risk is not None and zones is not None and topics is not None
    bots = tuple(sorted((bot for _, bot in bot_files), key=lambda b: b.id))
    return PetsConfig(system=system, risk=risk, zones=zones, bots=bots, topics=topics)


def _display(path: Path) -> str:
    """The path as a user typed it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path, errors: list[ConfigError]) -> Any:
    """The parsed YAML document, or _MISSING (with an error appended) when absent or malformed."""
    try:
        return yaml.load(path.read_text(), Loader=_StrictLoader)  # a SafeLoader subclass
    except FileNotFoundError:
        errors.append(ConfigError(_display(path), "", "file not found"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        errors.append(ConfigError(_display(path), "", f"invalid YAML: {where}{exc.problem}"))
    except yaml.YAMLError as exc:
        errors.append(ConfigError(_display(path), "", f"invalid YAML: {exc}"))
    return _MISSING


def _load(path: Path, typ: type[T], errors: list[ConfigError]) -> T | None:
    data = _read_yaml(path, errors)
    return None if data is _MISSING else _convert(data, typ, _display(path), (), errors)


def _convert(data: Any, typ: type[T], file: str, prefix: KeyPath, errors: list[ConfigError]) -> T | None:
    """msgspec.convert; on failure every conversion error, on success every Decimal out of its bounds."""
    try:
        value = msgspec.convert(data, typ)
    except msgspec.ValidationError:
        found = _conversion_errors(data, typ)
        errors.extend(ConfigError(file, _format_key((*prefix, *path)), message) for path, message in found)
        return None
    found = _bound_errors(value, typ)
    errors.extend(ConfigError(file, _format_key((*prefix, *path)), message) for path, message in found)
    return value


def _load_bots(bots_dir: Path, errors: list[ConfigError]) -> list[tuple[str, BotConfig]]:
    """(displayed file, bot) for every bot file that converts; params typed by the bot's strategy."""
    if not bots_dir.is_dir():
        errors.append(ConfigError(_display(bots_dir), "", "bots directory not found"))
        return []
    bots: list[tuple[str, BotConfig]] = []
    for path in sorted([*bots_dir.glob("*.yaml"), *bots_dir.glob("*.yml")]):
        file = _display(path)
        if not BOT_FILE.match(path.name):
            errors.append(ConfigError(file, "", "a bot file must be named bot_NN_<name>.yaml"))
            continue
        bot = _load(path, BotConfig, errors)
        if bot is None:
            continue
        spec = STRATEGIES.get(bot.strategy)
        if spec is None:
            errors.append(ConfigError(
                file, "strategy", f"unknown strategy {bot.strategy!r}; known: {', '.join(STRATEGIES)}"
            ))
            continue
        params = _convert(bot.params, spec.params, file, ("params",), errors)
        if params is not None:
            bots.append((file, msgspec.structs.replace(bot, params=params)))
    return bots


def _load_topics(path: Path, errors: list[ConfigError]) -> TopicRegistry | None:
    """The registry, read here for keyed errors, then through its own loader (topics.py) to honour it."""
    if _load(path, TopicRegistry, errors) is None:
        return None
    try:
        registry = load_topic_registry(path.parent)
    except ValueError as exc:
        errors.append(ConfigError(_display(path), "", str(exc)))
        return None
    file = _display(path)
    errors.extend(ConfigError(file, key, message) for key, message in topic_schema_errors(registry))
    return registry


def topic_schema_errors(registry: TopicRegistry) -> Iterator[tuple[str, str]]:
    """(key, message) for duplicate topic names and schemas that do not resolve to a msgspec type.

    A schema whose module does not exist yet is skipped (see `pending_schema_modules`); a module that
    exists but lacks the type, fails to import or holds a non-msgspec type is an error.
    """
    seen: set[str] = set()
    for i, topic in enumerate(registry.topics):
        if topic.name in seen:
            yield f"topics[{i}].name", f"duplicate topic {topic.name!r}"
        seen.add(topic.name)
        module_name, _, type_name = topic.schema.partition(":")
        key = f"topics[{i}].schema"
        if not type_name:
            yield key, f"expected 'module:Type', got {topic.schema!r}"
            continue
        if not _module_exists(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any import failure is a config-time finding, reported by name
            yield key, f"importing {module_name} failed: {type(exc).__name__}: {exc}"
            continue
        schema = getattr(module, type_name, None)
        if schema is None:
            yield key, f"module {module_name} has no type {type_name!r}"
            continue
        try:
            msgspec.json.Decoder(schema)
        except TypeError as exc:
            yield key, f"{topic.schema} is not a msgspec type: {exc}"


def pending_schema_modules(registry: TopicRegistry) -> tuple[str, ...]:
    """Schema modules named in topics.yaml that do not exist (yet)."""
    modules = {t.schema.partition(":")[0] for t in registry.topics}
    return tuple(sorted(m for m in modules if not _module_exists(m)))


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


# ------------------------------------------------------------------------------ cross-file checks


def _check_system(file: str, system: GlobalConfig) -> Iterator[ConfigError]:
    if DEFAULT_FEE_CATEGORY not in system.venue.fee_rates:
        yield ConfigError(file, "venue.fee_rates", f"missing the {DEFAULT_FEE_CATEGORY!r} rate")
    md = system.market_data
    if md.reconnect_backoff_min_s > md.reconnect_backoff_max_s:
        yield ConfigError(file, "market_data.reconnect_backoff_min_s",
                          f"{md.reconnect_backoff_min_s} is above reconnect_backoff_max_s "
                          f"{md.reconnect_backoff_max_s}")
    if md.silence_timeout_s <= md.ping_interval_s:
        yield ConfigError(file, "market_data.silence_timeout_s",
                          f"{md.silence_timeout_s} must be longer than ping_interval_s {md.ping_interval_s}")


def _check_risk(file: str, risk: RiskConfig) -> Iterator[ConfigError]:
    kelly = risk.kelly
    if kelly.min_fraction > kelly.default_fraction:
        yield ConfigError(file, "kelly.min_fraction",
                          f"{kelly.min_fraction} is above kelly.default_fraction {kelly.default_fraction}")
    limits = risk.limits
    if limits.max_orders_per_second > limits.max_orders_per_minute:
        yield ConfigError(file, "limits.max_orders_per_second",
                          f"{limits.max_orders_per_second} is above max_orders_per_minute "
                          f"{limits.max_orders_per_minute}")


def _check_zones(file: str, framework: ZoneFramework) -> Iterator[ConfigError]:
    zones = framework.zones
    if not zones:
        yield ConfigError(file, "zones", "no zones: they must cover prices [0, 1]")
        return
    if zones[0].lower != 0:
        yield ConfigError(file, "zones[0].lower",
                          f"the first zone must start at 0, got {zones[0].lower}: prices "
                          f"[0, {zones[0].lower}) are in no zone")
    last = len(zones) - 1
    if zones[last].upper != 1:
        yield ConfigError(file, f"zones[{last}].upper",
                          f"the last zone must end at 1, got {zones[last].upper}: prices "
                          f"({zones[last].upper}, 1] are in no zone")
    for i, zone in enumerate(zones):
        if zone.zone != i + 1:
            yield ConfigError(file, f"zones[{i}].zone", f"zones are numbered 1, 2, ... in price order; "
                                                          f"expected {i + 1}, got {zone.zone}")
        if zone.lower >= zone.upper:
            yield ConfigError(file, f"zones[{i}].upper",
                              f"{zone.upper} must be above lower {zone.lower}")
        if zone.directional_min_probability is not None and zone.directional_prohibited:
            yield ConfigError(file, f"zones[{i}].directional_min_probability",
                              "set on a zone that prohibits directional bets")
        for j, name in enumerate(zone.allowed_strategies):
            spec = framework.strategy(name)
            if spec is None:
                yield ConfigError(file, f"zones[{i}].allowed_strategies[{j}]",
                                  _unknown_zone_strategy(name, framework))
            elif spec.directional and zone.directional_prohibited:
                yield ConfigError(file, f"zones[{i}].allowed_strategies[{j}]",
                                  f"{name} is directional and zone {zone.zone} prohibits directional bets")
        if i == 0:
            continue
        previous = zones[i - 1]
        if zone.lower > previous.upper:
            yield ConfigError(file, f"zones[{i}].lower",
                              f"gap: prices [{previous.upper}, {zone.lower}) are in no zone "
                              f"(zone {previous.zone} ends at {previous.upper})")
        elif zone.lower < previous.upper:
            yield ConfigError(file, f"zones[{i}].lower",
                              f"overlap: prices [{zone.lower}, {previous.upper}) are in zone "
                              f"{previous.zone} and zone {zone.zone}")


def _check_zone_strategies(file: str, framework: ZoneFramework) -> Iterator[ConfigError]:
    """Strategy names unique; exceptions name known strategies and zones, and no directional one where
    directional bets are prohibited."""
    names = [s.name for s in framework.strategies]
    for i, name in enumerate(names):
        if name in names[:i]:
            yield ConfigError(file, f"strategies[{i}].name", f"duplicate zone strategy {name!r}")
    by_number = {zone.zone: zone for zone in framework.zones}
    for i, exception in enumerate(framework.exceptions):
        spec = framework.strategy(exception.strategy)
        if spec is None:
            yield ConfigError(file, f"exceptions[{i}].strategy",
                              _unknown_zone_strategy(exception.strategy, framework))
        for j, number in enumerate(exception.zones):
            zone = by_number.get(number)
            if zone is None:
                yield ConfigError(file, f"exceptions[{i}].zones[{j}]", f"no zone {number}")
            elif spec is not None and spec.directional and zone.directional_prohibited:
                yield ConfigError(file, f"exceptions[{i}].zones[{j}]",
                                  f"{spec.name} is directional and zone {number} prohibits directional bets")


def _unknown_zone_strategy(name: str, framework: ZoneFramework) -> str:
    return f"unknown zone strategy {name!r}; known: {', '.join(s.name for s in framework.strategies)}"


def _check_bot_zone_strategies(file: str, bot: BotConfig, zones: ZoneFramework) -> Iterator[ConfigError]:
    if not bot.zone_strategies:
        yield ConfigError(file, "zone_strategies", "empty: name the zone strategies of the bot's orders")
    types: dict[str, str] = {}
    for i, name in enumerate(bot.zone_strategies):
        spec = zones.strategy(name)
        if spec is None:
            yield ConfigError(file, f"zone_strategies[{i}]", f"{_unknown_zone_strategy(name, zones)} "
                                                               f"(zone_framework.yaml)")
        elif spec.type in types:
            yield ConfigError(file, f"zone_strategies[{i}]",
                              f"{name} and {types[spec.type]} both judge {spec.type.value} orders; "
                              f"name one zone strategy per order type")
        else:
            types[spec.type] = name
    if bot.zone_strategies and bot.strategy_type not in types and len(types) == len(bot.zone_strategies):
        yield ConfigError(file, "zone_strategies",
                          f"none is of the bot's strategy_type {bot.strategy_type.value} "
                          f"(types: {', '.join(sorted(types)) or 'none'})")


def _check_bots(
    bots_dir: Path,
    bot_files: list[tuple[str, BotConfig]],
    system: GlobalConfig | None,
    risk: RiskConfig | None,
    zones: ZoneFramework | None,
) -> Iterator[ConfigError]:
    first_file: dict[str, str] = {}
    for file, bot in bot_files:
        match = BOT_FILE.match(Path(file).name)
        assert match  # _load_bots keeps only matching names
        if (match["id"], match["name"]) != (bot.id, bot.name):
            yield ConfigError(file, "id", f"id {bot.id!r} and name {bot.name!r} do not match the file "
                                          f"name (expected {bot.id}_{bot.name}.yaml)")
        if bot.id in first_file:
            yield ConfigError(file, "id", f"duplicate bot id {bot.id!r} (also in {first_file[bot.id]})")
        first_file.setdefault(bot.id, file)
        spec = STRATEGIES[bot.strategy]
        if bot.strategy_type != spec.strategy_type:
            yield ConfigError(file, "strategy_type",
                              f"strategy {bot.strategy!r} is of type {spec.strategy_type.value}, "
                              f"got {bot.strategy_type.value}")
        if bot.min_position_usdc > bot.max_position_usdc:
            yield ConfigError(file, "min_position_usdc",
                              f"{bot.min_position_usdc} is above max_position_usdc {bot.max_position_usdc}")
        if zones is not None:
            yield from _check_bot_zone_strategies(file, bot, zones)
        if system is not None:
            yield from _check_bot_against_system(file, bot, system)
        if risk is not None:
            yield from _check_bot_against_risk(file, bot, risk)

    total = sum((bot.capital_allocation for _, bot in bot_files), Decimal(0))
    if total > 1:
        parts = ", ".join(f"{Path(file).name} {bot.capital_allocation}" for file, bot in bot_files)
        yield ConfigError(_display(bots_dir), "capital_allocation",
                          f"allocations sum to {total} (over 1.00 = 100% of capital): {parts}")


def _check_bot_against_system(file: str, bot: BotConfig, system: GlobalConfig) -> Iterator[ConfigError]:
    budget = bot.capital_allocation * system.trading.starting_capital
    if bot.max_position_usdc > budget:
        yield ConfigError(file, "max_position_usdc",
                          f"{bot.max_position_usdc} is above the bot's capital {budget} "
                          f"(capital_allocation {bot.capital_allocation} x starting_capital "
                          f"{system.trading.starting_capital} in pets.yaml)")
    bankroll = getattr(bot.params, "bankroll_usdc", None)
    if bankroll is not None and bankroll > budget:
        yield ConfigError(file, "params.bankroll_usdc",
                          f"{bankroll} is above the bot's capital {budget} (capital_allocation "
                          f"{bot.capital_allocation} x starting_capital {system.trading.starting_capital})")


def _check_bot_against_risk(file: str, bot: BotConfig, risk: RiskConfig) -> Iterator[ConfigError]:
    limit = risk.limits.max_bot_allocation
    if bot.capital_allocation > limit:
        yield ConfigError(file, "capital_allocation",
                          f"{bot.capital_allocation} is above limits.max_bot_allocation {limit} "
                          f"(risk_management.yaml)")
    overrides = bot.risk
    kelly = risk.kelly
    if overrides.kelly_fraction is not None and not (
        kelly.min_fraction <= overrides.kelly_fraction <= kelly.default_fraction
    ):
        yield ConfigError(file, "risk.kelly_fraction",
                          f"expected a value within kelly.min_fraction {kelly.min_fraction} and "
                          f"kelly.default_fraction {kelly.default_fraction} (risk_management.yaml), "
                          f"got {overrides.kelly_fraction}")
    looser: list[tuple[str, Any, Any, str]] = [
        ("max_orders_per_second", overrides.max_orders_per_second, risk.limits.max_orders_per_second,
         "limits.max_orders_per_second"),
        ("max_orders_per_minute", overrides.max_orders_per_minute, risk.limits.max_orders_per_minute,
         "limits.max_orders_per_minute"),
        ("consecutive_losses", overrides.consecutive_losses, risk.circuit_breakers.consecutive_losses,
         "circuit_breakers.consecutive_losses"),
        ("drawdown_halt", overrides.drawdown_halt, risk.circuit_breakers.bot_drawdown_halt,
         "circuit_breakers.bot_drawdown_halt"),
    ]
    for key, value, global_value, global_key in looser:
        if value is not None and value > global_value:
            yield ConfigError(file, f"risk.{key}", f"{value} is looser than {global_key} {global_value} "
                                                   f"(risk_management.yaml); overrides may only tighten")


# ------------------------------------------------------------ conversion errors and Decimal bounds

KeyPath = tuple[str | int, ...]  # field names / dict keys (str) and list indices (int)
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.(?P<field>[^.\[]+)|\[(?P<index>\d+)\]")
_TYPE_NAMES = {
    "decimal": "a decimal", "int": "an integer", "float": "a number", "str": "a string",
    "bool": "true or false", "object": "a mapping", "array": "a list", "null": "null",
}


def _format_key(path: KeyPath) -> str:
    key = ""
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else part)
    return key


def _conversion_errors(data: Any, annotation: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """Every conversion error in `data` (msgspec stops at the first): descends structs, lists and dicts."""
    target = _strip(annotation)
    if isinstance(data, dict) and isinstance(target, type) and issubclass(target, msgspec.Struct):
        fields = _field_types(target)
        for key, value in data.items():
            if key in fields:
                yield from _conversion_errors(value, fields[key], (*path, key))
            else:
                yield (*path, str(key)), f"unknown key; expected one of: {', '.join(fields)}"
        for field in msgspec.structs.fields(target):
            if field.required and field.name not in data:
                yield (*path, field.name), "missing required key"
    elif isinstance(data, list) and get_origin(target) is tuple:
        for i, item in enumerate(data):
            yield from _conversion_errors(item, get_args(target)[0], (*path, i))
    elif isinstance(data, dict) and get_origin(target) is dict:
        for key, value in data.items():
            if isinstance(key, str):
                yield from _conversion_errors(value, get_args(target)[1], (*path, key))
            else:
                yield path, f"keys must be strings, got {key!r}"
    else:
        try:
            msgspec.convert(data, annotation)
        except msgspec.ValidationError as exc:
            yield _leaf_error(str(exc), data, annotation, path)


def _leaf_error(text: str, data: Any, annotation: Any, path: KeyPath) -> tuple[KeyPath, str]:
    """A msgspec ValidationError text -> (key path, a message naming the expected and the given value)."""
    match = _AT.match(text)
    assert match  # the pattern matches any text
    node: Any = data
    parts = list(path)
    for step in _PATH_PART.finditer(match["path"] or ""):
        part: str | int = step["field"] if step["field"] is not None else int(step["index"])
        node = node[part]
        annotation = _child_type(annotation, part)
        parts.append(part)
    raw, got = match["message"], f", got {node!r}"
    if raw.startswith("Invalid enum value"):
        message = f"expected one of: {', '.join(_choices(annotation))}{got}"
    elif raw == "Invalid decimal string":
        message = f"expected a decimal{got}"
    elif expected_match := re.match(r"Expected `([^`]+)`(.*?)(?:, got `[^`]*`)?$", raw):
        names, constraint = expected_match.groups()
        expected = " or ".join(_TYPE_NAMES.get(name, name) for name in names.split(" | "))
        message = f"expected {expected}{constraint}{got}"
    else:
        message = raw[:1].lower() + raw[1:]
    return tuple(parts), message


def _choices(annotation: Any) -> list[str]:
    annotation = _strip(annotation)
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return [member.value for member in annotation]
    return []


def _strip(annotation: Any) -> Any:
    """The annotation without Annotated[...] and without `| None`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not NoneType]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


@cache
def _field_types(struct: type[msgspec.Struct]) -> dict[str, Any]:
    return get_type_hints(struct, include_extras=True)


def _child_type(annotation: Any, part: str | int) -> Any:
    annotation = _strip(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict:
        return args[1]
    if origin is tuple and args:
        return args[0]
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct) and isinstance(part, str):
        return _field_types(annotation).get(part, Any)
    return Any


def _bound_errors(value: Any, annotation: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """Every Decimal outside the bounds its annotation declares (Meta(extra=...)), or not finite."""
    if get_origin(annotation) in (Union, UnionType):  # `X | None` holding an X
        members = [a for a in get_args(annotation) if a is not NoneType]
        annotation = members[0] if len(members) == 1 else Any
    if isinstance(value, Decimal):
        bounds: dict[str, Decimal] = {}
        if get_origin(annotation) is Annotated:
            for meta in get_args(annotation)[1:]:
                bounds |= getattr(meta, "extra", None) or {}
        if not value.is_finite():
            yield path, f"expected a finite decimal{_bounds_text(bounds)}, got {value}"
        elif not _within(value, bounds):
            yield path, f"expected a decimal{_bounds_text(bounds)}, got {value}"
    elif isinstance(value, msgspec.Struct):
        for name, field_type in _field_types(type(value)).items():
            yield from _bound_errors(getattr(value, name), field_type, (*path, name))
    elif isinstance(value, (tuple, dict)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for part, item in items:
            yield from _bound_errors(item, _child_type(annotation, part), (*path, part))


def _within(value: Decimal, bounds: dict[str, Decimal]) -> bool:
    return (
        ("gt" not in bounds or value > bounds["gt"])
        and ("ge" not in bounds or value >= bounds["ge"])
        and ("lt" not in bounds or value < bounds["lt"])
        and ("le" not in bounds or value <= bounds["le"])
    )


def _bounds_text(bounds: dict[str, Decimal]) -> str:
    low = ("(", bounds["gt"]) if "gt" in bounds else ("[", bounds["ge"]) if "ge" in bounds else None
    high = (")", bounds["lt"]) if "lt" in bounds else ("]", bounds["le"]) if "le" in bounds else None
    if low and high:
        return f" in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f" {'>' if low[0] == '(' else '>='} {low[1]}"
    if high:
        return f" {'<' if high[0] == ')' else '<='} {high[1]}"
    return ""


# ---------------------------------------------------------------------------------------- alerts.yaml

AlertType = Literal["circuit_breaker", "drawdown", "feed", "daily_summary", "major_win"]
AlertSetting = Literal["on", "silent", "off"]  # silent: delivered without a sound on the phone
DailyTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class AlertsConfig(_Config, frozen=True, kw_only=True):
    """alerts.yaml: what the alert flow sends to Telegram and Discord (secrets come from the
    environment: PETS_TELEGRAM_BOT_TOKEN, PETS_TELEGRAM_CHAT_ID, PETS_DISCORD_WEBHOOK_URL)."""

    types: dict[AlertType, AlertSetting] = {}  # a type not listed is "on"; critical alerts always go
    bot_drawdown_warning: Fraction = Decimal("0.20")
    portfolio_drawdown_warning: Fraction = Decimal("0.35")
    major_win_usd: PositiveDecimal = Decimal(1000)
    daily_summary_utc: DailyTime = "20:00"
    min_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 300.0  # per type and key (bot, feed, ...)
    feed_stall_s: PositiveFloat = 60.0
    retries: NonNegativeInt = 4
    backoff_s: PositiveFloat = 1.0  # doubled at every retry, up to backoff_max_s
    backoff_max_s: PositiveFloat = 30.0

    def setting(self, kind: AlertType) -> AlertSetting:
        return self.types.get(kind, "on")


def load_alerts_config(config_dir: Path) -> AlertsConfig:
    """config/alerts.yaml; raises InvalidConfigError listing every error."""
    errors: list[ConfigError] = []
    config = _load(config_dir / "alerts.yaml", AlertsConfig, errors)
    if errors or config is None:
        raise InvalidConfigError(errors)
    return config
