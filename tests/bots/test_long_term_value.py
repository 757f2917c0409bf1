"""Bot 10: the annualised-return rule, capital caps, fair values before the model (and their expiry),
exit only on a reversal beyond the margin, hold to resolution; the fair-value file's loader."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from bot_factories import T0, VENUE, report, tob
from value_factories import DAY_MS, config_of, constant_model, cost, kelly_shares, ltv_params, value_market

from pets.bots.long_term_value import LongTermValue, annualised_return
from pets.pipelines.forecasts import FileFairValues, FixedModelSource, NoFairValues
from pets.schemas.config import InvalidConfigError
from pets.schemas.fair_values import FairValue, FairValues, load_fair_values

UNTIL = datetime.fromtimestamp((T0 + 100 * DAY_MS) / 1000, UTC)


class StaticFairValues:
    def __init__(self, *values: FairValue) -> None:
        self.values = FairValues(by_market={v.market: v for v in values})
        self.reads = 0

    def current(self) -> FairValues:
        self.reads += 1
        return self.values


def fair(market: str, p: str, until: datetime = UNTIL) -> FairValue:
    return FairValue(market=market, probability=D(p), note="polls", valid_until=until)


def new_bot(
    *fairs: FairValue, model_p: float = 0.10, days: float = 10, max_position: str = "200", **params: object
) -> LongTermValue:
    bot = LongTermValue(
        config_of("long_term_value", ltv_params(**params), max_position_usdc=D(max_position)),
        VENUE,
        model_source=FixedModelSource(constant_model(model_p), "v0007"),
        fair_values=StaticFairValues(*fairs) if fairs else NoFairValues(),
    )
    for i in (1, 2):
        bot.on_market(value_market(f"m{i}", days=days))
    return bot


def bot_reading(source: StaticFairValues) -> LongTermValue:
    """A bot on market m1 alone whose fair values the test changes (and counts the reads of)."""
    bot = LongTermValue(
        config_of("long_term_value", ltv_params()), VENUE,
        model_source=FixedModelSource(), fair_values=source,
    )  # fmt: skip
    bot.on_market(value_market("m1"))
    return bot


def book(
    bot: LongTermValue, bid: str, ask: str, ts: int = T0, asset: str = "yes1", size: str = "100000"
) -> list:  # type: ignore[type-arg]
    market = "m" + asset.removeprefix("yes").removeprefix("no")
    return bot.on_top_of_book(tob(asset, market, bid, ask, ts_ms=ts, bid_size=size, ask_size=size))


def test_annualised_return() -> None:
    # a 5% edge on capital 0.5 over 300 days: 0.1 x 365 / 300; 3% over 10 days: 0.06 x 36.5
    assert annualised_return(D("0.05"), D("0.5"), D(300)) == D("0.1") * D(365) / D(300)
    assert annualised_return(D("0.03"), D("0.5"), D(10)) == D("2.19")


def test_a_5pct_edge_over_300_days_is_refused_a_3pct_edge_over_10_days_taken() -> None:
    c = cost(D("0.30"))  # 0.3063
    # edge 0.05: 0.05 / 0.3063 x 365 / 300 = 0.1986 < min_annual_return 0.20
    assert book(new_bot(fair("m1", str(c + D("0.05"))), days=300), "0.29", "0.30") == []
    # edge 0.03: 0.03 / 0.3063 x 365 / 10 = 3.57
    (buy,) = book(new_bot(fair("m1", str(c + D("0.03"))), days=10), "0.29", "0.30")
    assert (buy.side, buy.price, buy.order_type) == ("BUY", D("0.30"), "FAK")
    assert buy.size == kelly_shares(c + D("0.03"), D("0.30"), D(1000))
    # the same 5% edge over 200 days clears it: 0.05 / 0.3063 x 365 / 200 = 0.298
    assert len(book(new_bot(fair("m1", str(c + D("0.05"))), days=200), "0.29", "0.30")) == 1


def test_fair_value_takes_precedence_over_the_model_until_it_expires() -> None:
    bot = new_bot(fair("m1", "0.45"), model_p=0.10)  # the model sees no edge at 0.30
    (buy,) = book(bot, "0.29", "0.30")
    assert buy.cause is not None
    assert (buy.cause.source, buy.cause.probability, buy.cause.model_version) == (
        "fair_value",
        D("0.45"),
        None,
    )
    assert "polls" in buy.cause.note
    # the NO token's fair value is 1 - 0.45; the model would say 0.10
    bot.on_execution_report(report(buy, "cancel"))
    expired = new_bot(fair("m1", "0.45", until=datetime.fromtimestamp(T0 / 1000, UTC)), model_p=0.10)
    assert book(expired, "0.29", "0.30") == []  # past valid_until: the model decides
    model_only = new_bot(model_p=0.45)
    (by_model,) = book(model_only, "0.29", "0.30")
    assert by_model.cause is not None and (by_model.cause.source, by_model.cause.model_version) == (
        "model",
        "v0007",
    )


def test_the_fair_value_of_the_other_token_is_its_complement() -> None:
    bot = new_bot(fair("m1", "0.30"))  # NO is worth 0.70
    (buy,) = book(bot, "0.55", "0.56", asset="no1")  # zone 3, p 0.70 > 0.52
    assert buy.asset_id == "no1" and buy.probability == D("0.70")


def test_zone_3_needs_a_probability_above_0_52() -> None:
    # ask 0.45 (zone 3): p 0.515 has an edge of 0.051 over c 0.4574 but is not above 0.52
    assert book(new_bot(fair("m1", "0.515")), "0.44", "0.45") == []
    assert len(book(new_bot(fair("m1", "0.53")), "0.44", "0.45")) == 1
    assert book(new_bot(fair("m1", "0.90")), "0.64", "0.65") == []  # zone 4: no directional bets


def test_capital_caps_per_market_and_in_total() -> None:
    p = "0.60"  # Kelly alone: 0.25 x (0.60 - 0.3063) / 0.6937 x 1000 / 0.3063 = 345.56 shares (105.85 pUSD)
    assert kelly_shares(D(p), D("0.30"), D(1000)) == D("345.56")
    per_market = new_bot(fair("m1", p), max_position="50")
    (buy,) = book(per_market, "0.29", "0.30")
    assert buy.size == D("163.23")  # 50 / 0.3063 = 163.238...
    per_market.on_execution_report(report(buy, "fill", "163.23", "0.30", "0"))
    # NO is worth 0.40 at 0.30 too, but the market's cap leaves 1.03 pUSD: below min_position_usdc 10
    assert book(per_market, "0.29", "0.30", asset="no1", ts=T0 + 1) == []
    assert len(book(new_bot(fair("m1", p), max_position="50"), "0.29", "0.30", asset="no1")) == 1
    bot = new_bot(fair("m1", p), fair("m2", p), max_position="50", max_total_usdc=D(80))
    (first,) = book(bot, "0.29", "0.30")
    bot.on_execution_report(report(first, "fill", str(first.size), "0.30", "0"))
    assert bot.locked() == D("163.23") * D("0.30")  # 48.969
    (second,) = book(bot, "0.29", "0.30", asset="yes2")
    assert second.size == D("101.30")  # (80 - 48.969) / 0.3063 = 101.309...
    bot.on_execution_report(report(second, "fill", str(second.size), "0.30", "0"))
    assert bot.locked() == D("79.359")  # 48.969 + 101.30 x 0.30
    # m2's own cap leaves 19.61 pUSD and Kelly wants more, but the total leaves 0.641: not a $1 order
    assert book(bot, "0.29", "0.30", ts=T0 + 1, asset="yes2") == []


def test_exits_only_on_a_reversal_beyond_the_margin_and_holds_to_resolution() -> None:
    source = StaticFairValues(fair("m1", "0.45"))
    bot = bot_reading(source)
    (buy,) = book(bot, "0.29", "0.30")
    bot.on_execution_report(report(buy, "fill", "100", "0.30", "0"))
    # the trader lowers the fair value to 0.40, read on the bot's reload timer (60 s after its first
    # book): bid 0.44 net of fee 0.432608 is above p, by less than 0.05
    source.values = FairValues(by_market={"m1": fair("m1", "0.40")})
    later = T0 + 60_000
    assert book(bot, "0.44", "0.45", ts=later) == []
    # bid 0.46 net of fee: 0.46 - 0.007452 = 0.452548 > 0.40 + 0.05: sell
    (sell,) = book(bot, "0.46", "0.47", ts=later + 1)
    assert (sell.side, sell.price, sell.size) == ("SELL", D("0.46"), D(100))
    bot.on_execution_report(report(sell, "cancel", ts_ms=later + 1))
    # resolution: the winner pays 1, the inventory and its locked capital are gone
    cash = bot.cash
    bot.on_market(value_market("m1", closed=True, winning_asset_id="yes1"))
    assert (bot.held("yes1"), bot.locked(), bot.cash) == (0, 0, cash + 100)
    assert book(bot, "0.29", "0.30", ts=later + 2) == []  # a closed market is not traded


def test_fair_values_are_read_on_the_reload_timer_not_per_top_of_book() -> None:
    source = StaticFairValues(fair("m1", "0.45"))
    bot = bot_reading(source)
    assert source.reads == 1  # at start
    # the first book schedules the reload timer 60 s of venue time on; a sell-side book only (no ask
    # to buy) so the bot keeps evaluating the estimate on every top without trading
    for i in range(50):
        assert book(bot, "0.10", "0.95", ts=T0 + i * 1_000) == []
    assert source.reads == 1
    source.values = FairValues(by_market={"m1": fair("m1", "0.99")})
    assert book(bot, "0.10", "0.95", ts=T0 + 59_999) == []
    assert source.reads == 1
    assert book(bot, "0.10", "0.95", ts=T0 + 60_000) == []  # the timer: read once
    assert source.reads == 2
    assert bot.fairs.by_market["m1"].probability == D("0.99")


FILE = """fair_values:
  - market: "0xabc"
    probability: "0.62"
    note: state polls
    valid_until: "2027-01-31T00:00:00Z"
"""


def test_fair_value_file_loads_and_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "fair_values.yaml"
    path.write_text(FILE)
    values = load_fair_values(path)
    fair_value = values.by_market["0xabc"]
    assert (fair_value.probability, fair_value.note) == (D("0.62"), "state polls")
    assert fair_value.valid_until == datetime(2027, 1, 31, tzinfo=UTC)
    assert values.current("0xabc", fair_value.valid_until_ms - 1) is fair_value
    assert values.current("0xabc", fair_value.valid_until_ms) is None

    source = FileFairValues(path)
    assert source.current().by_market["0xabc"].probability == D("0.62")
    path.write_text(FILE.replace("0.62", "0.58"))
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    assert source.current().by_market["0xabc"].probability == D("0.58")
    path.write_text(FILE.replace("0.62", "1.5"))
    os.utime(path, ns=(2, 2))
    assert source.current().by_market["0xabc"].probability == D("0.58")  # the last good values stay
    assert source.error is not None and "fair_values[0].probability" in source.error


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (FILE.replace('"0.62"', '"1.5"'), "fair_values[0].probability", "1.5"),
        (
            FILE.replace('    valid_until: "2027-01-31T00:00:00Z"\n', ""),
            "fair_values[0].valid_until",
            "missing",
        ),
        (
            FILE.replace("2027-01-31T00:00:00Z", "2027-01-31T00:00:00"),
            "fair_values[0].valid_until",
            "time zone",
        ),
        (FILE + FILE.removeprefix("fair_values:\n"), "fair_values[1].market", "duplicate market '0xabc'"),
        (FILE.replace("note:", "notes:"), "fair_values[0].notes", "unknown key"),
    ],
)
def test_fair_value_file_errors_name_the_file_and_the_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = tmp_path / "fair_values.yaml"
    path.write_text(text)
    with pytest.raises(InvalidConfigError) as raised:
        load_fair_values(path)
    (line,) = str(raised.value).splitlines()
    assert line.startswith(f"{path}: {key}: ") and problem in line, line


def test_the_shipped_fair_value_file_loads() -> None:
    from bot_factories import CONFIG_DIR

    assert load_fair_values(CONFIG_DIR / "fair_values.yaml").by_market == {}
