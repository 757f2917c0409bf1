"""The shipped config validates; every kind of mistake is reported with its file, key and problem.

Each error test copies config/ into tmp_path, breaks one thing in the YAML text and runs
`pets config validate --config-dir` through the real CLI.
"""

from __future__ import annotations

import itertools
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from pets.cli import main
from pets.schemas.config import (
    STRATEGIES,
    InvalidConfigError,
    MarketMakingParams,
    TailRiskMmParams,
    load_config,
)
from pets.settings import project_root

SHIPPED = project_root() / "config"
BOT_05 = "bots/bot_05_market_making.yaml"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(SHIPPED, target)
    return target


def validate(config_dir: Path) -> Result:
    return CliRunner().invoke(main, ["config", "validate", "--config-dir", str(config_dir)])


def edit(config_dir: Path, file: str, old: str, new: str) -> None:
    path = config_dir / file
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not exactly once in the shipped {file}"
    path.write_text(text.replace(old, new))


def error_line(result: Result, file: str, key: str, problem: str) -> str:
    """The one stderr line naming the file, the key and the problem (fails if none)."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    matching = [line for line in lines if file in line and f": {key}: " in line and problem in line]
    assert matching, f"no line with {file!r}, key {key!r} and {problem!r} in:\n{result.stderr}"
    return matching[0]


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


# ------------------------------------------------------------------------------------ shipped config


def test_shipped_config_validates_and_cli_summarises_it() -> None:
    bot_files = sorted((SHIPPED / "bots").glob("bot_*.yaml"))
    raw_bots = [read_yaml(path) for path in bot_files]
    enabled = [raw["id"] for raw in raw_bots if raw["enabled"]]

    result = validate(SHIPPED)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"config OK: {len(bot_files)} bots ({len(enabled)} enabled: ")
    assert ", ".join(enabled) in result.stdout


def test_shipped_config_is_coherent() -> None:
    config = load_config(SHIPPED)
    raw_risk = read_yaml(SHIPPED / "risk_management.yaml")

    present = {p.name[:6] for p in (SHIPPED / "bots").glob("*.yaml")}
    ids = [f"bot_{n:02d}" for n in range(1, 11)]
    assert [bot.id for bot in config.bots] == [bot_id for bot_id in ids if bot_id in present]
    for bot in config.bots:
        assert isinstance(bot.params, STRATEGIES[bot.strategy].params), bot.id
        assert bot.capital_allocation <= Decimal(raw_risk["limits"]["max_bot_allocation"])
    assert sum(bot.capital_allocation for bot in config.bots if bot.enabled) <= 1
    zones = config.zones.zones
    assert (zones[0].lower, zones[-1].upper) == (0, 1)
    assert all(a.upper == b.lower for a, b in itertools.pairwise(zones))
    # The tail-risk bot buys at 0.1-5 cents: that range lies in a zone that allows tail risk.
    tail = config.bot("bot_08").params_as(TailRiskMmParams)
    tail_zone = next(z for z in zones if z.lower <= tail.tail_min_price < z.upper)
    assert tail.tail_max_price < tail_zone.upper and "tail_risk" in tail_zone.allowed_strategies
    assert [z.directional_prohibited for z in zones] == [False, False, False, True, True]


# The product's lineup: (id, file, risk profile, zone strategies, allocation where the product or the
# issue fixes it). Bots 9 and 10 are built on another branch (their files arrive with it).
LINEUP = [
    ("bot_01", "bot_01_market_rebalancing_arb.yaml", "aggressive", ("arbitrage",), Decimal("0.12")),
    ("bot_02", "bot_02_esports_live_events.yaml", "aggressive", ("esports_live",), Decimal("0.14")),
    ("bot_03", "bot_03_copy_trading.yaml", "aggressive", ("copy_trading",), None),
    ("bot_04", "bot_04_news_scalping.yaml", "aggressive", ("news_scalping",), None),
    ("bot_05", "bot_05_market_making.yaml", "neutral_aggressive", ("market_making",), None),
    ("bot_06", "bot_06_multi_outcome_arb.yaml", "neutral_aggressive", ("arbitrage",), None),
    ("bot_07", "bot_07_ai_contrarian_attention.yaml", "neutral_aggressive", ("contrarian",), None),
    ("bot_08", "bot_08_tail_risk_mm.yaml", "neutral_aggressive", ("tail_risk", "market_making"),
     Decimal("0.14")),
    ("bot_09", "bot_09_kelly_value_betting.yaml", "conservative", ("value_betting",), Decimal("0.10")),
    ("bot_10", "bot_10_long_term_value.yaml", "conservative", ("long_term_value",), Decimal("0.08")),
]


def test_the_lineup_is_the_products_ten_bots() -> None:
    config = load_config(SHIPPED)
    files = sorted(p.name for p in (SHIPPED / "bots").glob("*.yaml"))
    assert files == [row[1] for row in LINEUP]
    for bot_id, file, profile, zone_strategies, allocation in LINEUP:
        bot = config.bot(bot_id)
        assert f"{bot.id}_{bot.name}.yaml" == file
        assert (bot.risk_profile.value, bot.zone_strategies) == (profile, zone_strategies), bot_id
        assert allocation is None or bot.capital_allocation == allocation, bot_id
        assert bot.capital_allocation <= Decimal("0.20"), bot_id
    assert sum(bot.capital_allocation for bot in config.bots) <= 1
    assert {"bot_04", "bot_07"} <= {b.id for b in config.bots if b.enabled}


def test_decimals_from_strings_and_yaml_numbers_are_exact(config_dir: Path) -> None:
    edit(config_dir, "pets.yaml", 'crypto: "0.072"', "crypto: 0.072")
    edit(config_dir, BOT_05, 'half_spread: "0.01"', "half_spread: 0.1")

    config = load_config(config_dir)

    assert config.system.venue.fee_rates["crypto"] == Decimal("0.072")
    assert config.bot("bot_05").params_as(MarketMakingParams).half_spread == Decimal("0.1")
    rates = read_yaml(config_dir / "pets.yaml")["venue"]["fee_rates"]
    assert config.system.venue.fee_rate("politics") == Decimal(rates["politics"])
    assert config.system.venue.fee_rate("no_such_category") == Decimal(rates["default"])


def test_params_as_refuses_the_wrong_params_type() -> None:
    bot = load_config(SHIPPED).bot("bot_05")
    with pytest.raises(TypeError, match="bot_05: params are MarketMakingParams, not TailRiskMmParams"):
        bot.params_as(TailRiskMmParams)


# ------------------------------------------------------------------------------------- error kinds

# (file, shipped text, broken text, the file named, key, problem)
BREAKAGES = {
    "unknown key": (
        "pets.yaml", "  ping_interval_s: 10", "  ping_intervall_s: 10",
        "pets.yaml", "market_data.ping_intervall_s",
        "unknown key; expected one of: shard_size, ping_interval_s",
    ),
    "missing key": (
        "pets.yaml", "  ping_interval_s: 10", "  ping_intervall_s: 10",
        "pets.yaml", "market_data.ping_interval_s", "missing required key",
    ),
    "wrong type: decimal": (
        BOT_05, 'half_spread: "0.01"', "half_spread: abc",
        BOT_05, "params.half_spread", "expected a decimal, got 'abc'",
    ),
    "wrong type: integer": (
        "risk_management.yaml", "max_orders_per_second: 20", "max_orders_per_second: five",
        "risk_management.yaml", "limits.max_orders_per_second", "expected an integer, got 'five'",
    ),
    "wrong enum value": (
        "pets.yaml", "mode: paper", "mode: papr",
        "pets.yaml", "trading.mode", "expected one of: paper, live, got 'papr'",
    ),
    "integer out of range": (
        "pets.yaml", "shard_size: 200", "shard_size: 600",
        "pets.yaml", "market_data.shard_size", "expected an integer <= 500, got 600",
    ),
    "overlapping zones": (
        "zone_framework.yaml", 'upper: "0.40"', 'upper: "0.45"',
        "zone_framework.yaml", "zones[2].lower", "overlap: prices [0.40, 0.45) are in zone 2 and zone 3",
    ),
    "gap between zones": (
        "zone_framework.yaml", 'upper: "0.80"', 'upper: "0.70"',
        "zone_framework.yaml", "zones[4].lower", "gap: prices [0.70, 0.80) are in no zone",
    ),
    "zones not starting at 0 (the seed's 0.05)": (
        "zone_framework.yaml", 'lower: "0"\n', 'lower: "0.05"\n',
        "zone_framework.yaml", "zones[0].lower", "the first zone must start at 0, got 0.05",
    ),
    "zones not ending at 1 (the seed's 0.98)": (
        "zone_framework.yaml", 'upper: "1.00"', 'upper: "0.98"',
        "zone_framework.yaml", "zones[4].upper", "the last zone must end at 1, got 0.98",
    ),
    "directional minimum on a zone without directional bets": (
        "zone_framework.yaml", "    allowed_strategies: [market_making, arbitrage]\n",
        "    allowed_strategies: [market_making, arbitrage]\n    directional_min_probability: \"0.6\"\n",
        "zone_framework.yaml", "zones[3].directional_min_probability", "prohibits directional bets",
    ),
    "directional strategy listed in a zone that prohibits them": (
        "zone_framework.yaml", "    allowed_strategies: [market_making, arbitrage]\n",
        "    allowed_strategies: [market_making, arbitrage, copy_trading]\n",
        "zone_framework.yaml", "zones[3].allowed_strategies[2]",
        "copy_trading is directional and zone 4 prohibits directional bets",
    ),
    "unknown strategy in a zone": (
        "zone_framework.yaml", "    allowed_strategies: [arbitrage]\n",
        "    allowed_strategies: [arbitrag]\n",
        "zone_framework.yaml", "zones[4].allowed_strategies[0]", "unknown zone strategy 'arbitrag'; known: ",
    ),
    "zone strategy named twice": (
        "zone_framework.yaml", "  - name: contrarian\n", "  - name: tail_risk\n",
        "zone_framework.yaml", "strategies[3].name", "duplicate zone strategy 'tail_risk'",
    ),
    "exception for a zone that does not exist": (
        "zone_framework.yaml", "    zones: [1, 2]\n", "    zones: [1, 7]\n",
        "zone_framework.yaml", "exceptions[1].zones[1]", "no zone 7",
    ),
    "exception without a reason": (
        "zone_framework.yaml", "    baskets_only: true\n    reason: >-\n",
        "    baskets_only: true\n    reasn: >-\n",
        "zone_framework.yaml", "exceptions[0].reason", "missing required key",
    ),
    "bot without a risk profile": (
        BOT_05, "risk_profile: neutral_aggressive\n", "",
        BOT_05, "risk_profile", "missing required key",
    ),
    "bot with an unknown risk profile": (
        BOT_05, "risk_profile: neutral_aggressive", "risk_profile: reckless",
        BOT_05, "risk_profile",
        "expected one of: aggressive, neutral_aggressive, conservative, got 'reckless'",
    ),
    "bot without zone strategies": (
        BOT_05, "zone_strategies: [market_making]\n", "",
        BOT_05, "zone_strategies", "missing required key",
    ),
    "bot with an empty zone strategy list": (
        BOT_05, "zone_strategies: [market_making]", "zone_strategies: []",
        BOT_05, "zone_strategies", "empty: name the zone strategies",
    ),
    "bot naming a zone strategy the zone file does not know": (
        BOT_05, "zone_strategies: [market_making]", "zone_strategies: [market_makin]",
        BOT_05, "zone_strategies[0]", "unknown zone strategy 'market_makin'; known: arbitrage, market_making",
    ),
    "bot whose zone strategies miss its own strategy type": (
        BOT_05, "zone_strategies: [market_making]", "zone_strategies: [copy_trading]",
        BOT_05, "zone_strategies", "none is of the bot's strategy_type market_making",
    ),
    "bot naming two zone strategies of one order type": (
        "bots/bot_04_news_scalping.yaml", "zone_strategies: [news_scalping]",
        "zone_strategies: [news_scalping, copy_trading]",
        "bot_04_news_scalping.yaml", "zone_strategies[1]",
        "copy_trading and news_scalping both judge directional orders",
    ),
    "kelly default 0": (
        "risk_management.yaml", 'default_fraction: "0.5"', 'default_fraction: "0"',
        "risk_management.yaml", "kelly.default_fraction", "expected a decimal in (0, 1], got 0",
    ),
    "kelly default 1.5": (
        "risk_management.yaml", 'default_fraction: "0.5"', "default_fraction: 1.5",
        "risk_management.yaml", "kelly.default_fraction", "expected a decimal in (0, 1], got 1.5",
    ),
    "kelly min 0": (
        "risk_management.yaml", 'min_fraction: "0.25"', 'min_fraction: "0"',
        "risk_management.yaml", "kelly.min_fraction", "expected a decimal in (0, 1], got 0",
    ),
    "kelly min above default": (
        "risk_management.yaml", 'min_fraction: "0.25"', 'min_fraction: "0.75"',
        "risk_management.yaml", "kelly.min_fraction", "0.75 is above kelly.default_fraction 0.5",
    ),
    "kelly override 1.5": (
        "bots/bot_04_news_scalping.yaml", 'kelly_fraction: "0.25"', 'kelly_fraction: "1.5"',
        "bot_04_news_scalping.yaml", "risk.kelly_fraction", "expected a decimal in (0, 1], got 1.5",
    ),
    "kelly override 0": (
        "bots/bot_04_news_scalping.yaml", 'kelly_fraction: "0.25"', 'kelly_fraction: "0"',
        "bot_04_news_scalping.yaml", "risk.kelly_fraction", "expected a decimal in (0, 1], got 0",
    ),
    "kelly override below the floor": (
        "bots/bot_04_news_scalping.yaml", 'kelly_fraction: "0.25"', 'kelly_fraction: "0.1"',
        "bot_04_news_scalping.yaml", "risk.kelly_fraction", "within kelly.min_fraction 0.25 and "
        "kelly.default_fraction 0.5 (risk_management.yaml), got 0.1",
    ),
    "risk override looser than the global limit": (
        "bots/bot_08_tail_risk_mm.yaml", 'drawdown_halt: "0.20"', 'drawdown_halt: "0.30"',
        "bot_08_tail_risk_mm.yaml", "risk.drawdown_halt",
        "0.30 is looser than circuit_breakers.bot_drawdown_halt 0.25",
    ),
    "allocation over max_bot_allocation": (
        BOT_05, 'capital_allocation: "0.12"', 'capital_allocation: "0.25"',
        BOT_05, "capital_allocation", "0.25 is above limits.max_bot_allocation 0.20 (risk_management.yaml)",
    ),
    "unknown strategy": (
        BOT_05, "strategy: market_making", "strategy: market_makin",
        BOT_05, "strategy", "unknown strategy 'market_makin'; known: market_rebalancing_arb",
    ),
    "strategy type not the strategy's": (
        BOT_05, "strategy_type: market_making", "strategy_type: directional",
        BOT_05, "strategy_type", "strategy 'market_making' is of type market_making, got directional",
    ),
    "unknown param": (
        BOT_05, "  half_spread:", "  half_sprad:",
        BOT_05, "params.half_sprad", "unknown key; expected one of: half_spread, quote_size_shares",
    ),
    "nested param of the wrong type": (
        "bots/bot_08_tail_risk_mm.yaml", 'requote_interval_ms: 5000', 'requote_interval_ms: "soon"',
        "bot_08_tail_risk_mm.yaml", "params.market_making.requote_interval_ms",
        "expected an integer, got 'soon'",
    ),
    "min position above max position": (
        BOT_05, 'min_position_usdc: "5"', 'min_position_usdc: "400"',
        BOT_05, "min_position_usdc", "400 is above max_position_usdc 300",
    ),
    "max position above the bot's capital": (
        BOT_05, 'max_position_usdc: "300"', 'max_position_usdc: "1300"',
        BOT_05, "max_position_usdc", "1300 is above the bot's capital 1200",
    ),
    "id not matching the file name": (
        BOT_05, "id: bot_05", "id: bot_11",
        BOT_05, "id", "id 'bot_11' and name 'market_making' do not match the file name",
    ),
    "duplicate YAML key": (
        BOT_05, "enabled: true", "enabled: true\nenabled: false",
        BOT_05, "", "invalid YAML: line 10, column 1: duplicate key 'enabled'",
    ),
    "malformed YAML": (
        "risk_management.yaml", "kelly:", "kelly: [",
        "risk_management.yaml", "", "invalid YAML: line",
    ),
    "topic schema type missing from an existing module": (
        "topics.yaml", "schema: pets.schemas.orders:OrderIntent\n",
        "schema: pets.schemas.orders:NoSuchIntent\n",
        "topics.yaml", "topics[11].schema", "module pets.schemas.orders has no type 'NoSuchIntent'",
    ),
    "topic schema that is not a msgspec type": (
        "topics.yaml", "schema: pets.schemas.orders:OrderIntent\n",
        "schema: pets.schemas.topics:load_topic_registry\n",
        "topics.yaml", "topics[11].schema", "is not a msgspec type",
    ),
    "topic with an unknown key": (
        "topics.yaml", "  - name: md.tob\n", "  - name: md.tob\n    replicas: 3\n",
        "topics.yaml", "topics[1].replicas", "unknown key; expected one of: name, partitions",
    ),
}


@pytest.mark.parametrize(("file", "old", "new", "named", "key", "problem"), BREAKAGES.values(), ids=BREAKAGES)
def test_each_mistake_names_file_key_and_problem(
    config_dir: Path, file: str, old: str, new: str, named: str, key: str, problem: str
) -> None:
    edit(config_dir, file, old, new)

    result = validate(config_dir)

    if key:
        error_line(result, named, key, problem)
    else:  # a file-level problem: "file: message"
        assert result.exit_code == 1
        assert any(named in line and problem in line for line in result.stderr.splitlines()), result.stderr


def test_allocations_over_100_percent_name_every_file_and_the_sum(config_dir: Path) -> None:
    edit(config_dir, "bots/bot_03_copy_trading.yaml", 'capital_allocation: "0.07"',
         'capital_allocation: "0.20"')
    edit(config_dir, "bots/bot_07_ai_contrarian_attention.yaml", 'capital_allocation: "0.06"',
         'capital_allocation: "0.20"')
    raw = {p.name: Decimal(read_yaml(p)["capital_allocation"]) for p in (config_dir / "bots").glob("*.yaml")}
    total = sum(raw.values())
    assert total > 1

    line = error_line(validate(config_dir), "bots", "capital_allocation", f"allocations sum to {total}")

    for name, allocation in raw.items():
        assert f"{name} {allocation}" in line


def test_duplicate_bot_id_names_both_files(config_dir: Path) -> None:
    text = (config_dir / BOT_05).read_text().replace("name: market_making", "name: market_making_b")
    (config_dir / "bots/bot_05_market_making_b.yaml").write_text(text)

    result = validate(config_dir)

    line = error_line(result, "bot_05_market_making_b.yaml", "id", "duplicate bot id 'bot_05'")
    assert "bot_05_market_making.yaml" in line.split("also in", 1)[1]


def test_badly_named_bot_file(config_dir: Path) -> None:
    shutil.move(config_dir / BOT_05, config_dir / "bots/market_making.yaml")

    result = validate(config_dir)

    assert result.exit_code == 1
    assert "market_making.yaml: a bot file must be named bot_NN_<name>.yaml" in result.stderr


def test_missing_file(config_dir: Path) -> None:
    (config_dir / "zone_framework.yaml").unlink()

    result = validate(config_dir)

    assert result.exit_code == 1
    assert "zone_framework.yaml: file not found" in result.stderr


def test_all_errors_across_files_are_reported_together(config_dir: Path) -> None:
    edit(config_dir, "pets.yaml", "mode: paper", "mode: papr")
    edit(config_dir, "pets.yaml", "seed: 42", "seed: forty-two")
    edit(config_dir, "risk_management.yaml", "cooldown_s: 86400", "cooldown_s: 0")
    edit(config_dir, "zone_framework.yaml", 'upper: "0.80"', 'upper: "0.70"')
    edit(config_dir, BOT_05, 'half_spread: "0.01"', "half_spread: abc")

    result = validate(config_dir)

    error_line(result, "pets.yaml", "trading.mode", "expected one of")
    error_line(result, "pets.yaml", "simulator.seed", "expected an integer, got 'forty-two'")
    error_line(result, "risk_management.yaml", "circuit_breakers.cooldown_s", "expected an integer >= 1")
    error_line(result, "zone_framework.yaml", "zones[4].lower", "gap")
    error_line(result, BOT_05, "params.half_spread", "expected a decimal")
    assert result.stderr.splitlines()[-1].startswith("5 config error(s) in ")

    with pytest.raises(InvalidConfigError) as raised:
        load_config(config_dir)
    assert len(raised.value.errors) == 5
    expected = "bot_05_market_making.yaml: params.half_spread: expected a decimal, got 'abc'"
    assert any(str(error).endswith(expected) for error in raised.value.errors)


def test_schema_module_not_written_yet_is_reported_but_not_an_error(config_dir: Path) -> None:
    edit(config_dir, "topics.yaml", "schema: pets.schemas.signals:NewsItem\n",
         "schema: pets.schemas.not_written_yet:NewsItem\n")

    result = validate(config_dir)

    assert result.exit_code == 0, result.output
    assert "schema modules not written yet: pets.schemas.not_written_yet" in result.stdout


def test_config_dir_defaults_to_the_settings(config_dir: Path) -> None:
    (config_dir / "pets.yaml").write_text("")

    result = CliRunner().invoke(main, ["config", "validate"], env={"PETS_CONFIG_DIR": str(config_dir)})

    assert result.exit_code == 1
    assert f"{config_dir / 'pets.yaml'}: expected a mapping, got None" in result.stderr


def test_a_value_bots_bankroll_may_not_exceed_its_capital(config_dir: Path) -> None:
    file = "bot_09_kelly_value_betting.yaml"
    edit(config_dir, f"bots/{file}", 'bankroll_usdc: "1000"', 'bankroll_usdc: "1000.01"')
    problem = "1000.01 is above the bot's capital 1000.00"
    error_line(validate(config_dir), file, "params.bankroll_usdc", problem)
