"""Bot 9: enters with the model's edge over ask + fee, exact Kelly on its equity, exits when the edge is
gone, reloads a newly promoted model from a real on-disk model store."""

from __future__ import annotations

import pickle
from decimal import Decimal as D
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
from bot_factories import CONFIG, CONFIG_DIR, T0, VENUE, legs, report, tob
from value_factories import (
    DAY_MS,
    FEE,
    config_of,
    constant_model,
    cost,
    kelly_params,
    kelly_shares,
    promote,
    value_market,
)

from pets.bots.kelly_value_betting import KellyValueBetting
from pets.bots.registry import build_bots
from pets.pipelines.calibration import fit, simulate_calibration
from pets.pipelines.forecasts import FixedModelSource, ModelStoreSource, probability
from pets.schemas.signals import Signal
from signal_bots import signal


def new_bot(p: float = 0.40, **params: object) -> KellyValueBetting:
    bot = KellyValueBetting(
        config_of("kelly_value_betting", kelly_params(**params)),
        VENUE,
        model_source=FixedModelSource(constant_model(p), "v0001"),
    )
    bot.on_market(value_market("m1"))
    return bot


def book(
    bot: KellyValueBetting, bid: str, ask: str, ts: int = T0, asset: str = "yes1", size: str = "1000"
) -> list:  # type: ignore[type-arg]
    return bot.on_top_of_book(tob(asset, "m1", bid, ask, ts_ms=ts, bid_size=size, ask_size=size))


def test_probability_equals_the_models_own_prediction() -> None:
    data = simulate_calibration(markets=300)
    model = fit(data)
    rows = data.head(40)
    expected = model.predict(rows)
    got = [
        probability(model, price, horizon / 86_400, category, volume)
        for price, horizon, category, volume in rows.select("price", "horizon_s", "category", "volume").rows()
    ]
    assert np.allclose(got, expected, rtol=0, atol=1e-12)
    # without a volume the feature sits at its training mean
    mean_volume = float(np.expm1(model.means["log_volume"]))
    one = pl.DataFrame(
        {"price": [0.3], "horizon_s": [864_000], "category": ["sports"], "volume": [mean_volume]}
    )
    assert probability(model, 0.3, 10, "sports") == pytest.approx(float(model.predict(one)[0]), abs=1e-12)


def test_enters_with_the_edge_sized_by_exact_kelly() -> None:
    bot = new_bot(0.40)
    (buy,) = book(bot, "0.29", "0.30")
    # c = 0.30 + 0.03 x 0.30 x 0.70 = 0.3063; f* = (0.40 - 0.3063) / 0.6937; quarter Kelly of 1000
    assert cost(D("0.30")) == D("0.3063")
    size = kelly_shares(D("0.40"), D("0.30"), D(1000))
    assert size == D("110.24")  # 0.25 x 0.1350728 x 1000 / 0.3063
    assert legs([buy]) == [("place", "yes1", "BUY", D("0.30"), size, "FAK")]
    assert buy.strategy_type == "directional" and buy.probability == D("0.4")
    assert buy.cause is not None
    assert (buy.cause.source, buy.cause.model_version, buy.cause.probability) == ("model", "v0001", D("0.4"))
    assert "30.0 days to end" in buy.cause.note


def test_no_entry_without_the_edge_after_the_fee_nor_outside_the_zones() -> None:
    # ask 0.36: p - ask = 0.04 clears min_edge 0.035, but p - (ask + fee 0.006912) = 0.033088 does not
    assert book(new_bot(0.40, min_edge=D("0.035")), "0.35", "0.36") == []
    assert len(book(new_bot(0.40, min_edge=D("0.033")), "0.35", "0.36")) == 1
    assert book(new_bot(0.70), "0.44", "0.45") == []  # zone 3: above max_price 0.40 (zones 1-2)
    assert book(new_bot(0.20), "0.29", "0.30") == []  # the model says less than the price


def test_no_model_no_order() -> None:
    bot = KellyValueBetting(
        config_of("kelly_value_betting", kelly_params()), VENUE, model_source=FixedModelSource()
    )
    bot.on_market(value_market("m1"))
    assert book(bot, "0.29", "0.30") == []


def model_forecast(p: str, asset: str = "yes1", n: int = 1, expires_ms: int = T0 + 60_000) -> Signal:
    return signal(n, source="model", asset_id=asset, probability=D(p), expires_ns=expires_ms * 1_000_000)


def test_a_published_forecast_stands_in_for_the_model_until_it_expires() -> None:
    bot = KellyValueBetting(
        config_of("kelly_value_betting", kelly_params()), VENUE, model_source=FixedModelSource()
    )
    bot.on_market(value_market("m1"))
    assert book(bot, "0.29", "0.30") == []  # no model yet
    # the forecast names NO at 0.60, so YES is worth 0.40: the same edge as the constant model above
    (buy,) = bot.on_signal(model_forecast("0.60", asset="no1"))
    assert legs([buy]) == [
        ("place", "yes1", "BUY", D("0.30"), kelly_shares(D("0.40"), D("0.30"), D(1000)), "FAK")
    ]
    assert buy.cause is not None
    assert (buy.cause.source, buy.cause.signal_id, buy.cause.model_version) == ("model", "s1", "test-model@1")
    bot.on_execution_report(report(buy, "cancel"))
    (again,) = book(bot, "0.29", "0.30", ts=T0 + 59_999)  # still standing just before it expires
    bot.on_execution_report(report(again, "cancel", ts_ms=T0 + 59_999))
    # once it expired (venue time past expires_ns) the bot has no probability again
    assert book(bot, "0.29", "0.30", ts=T0 + 60_000) == []


def test_a_published_forecast_lapses_once_the_mid_moved_past_the_drift() -> None:
    def after_move(bid: str, ask: str) -> list:  # type: ignore[type-arg]
        bot = KellyValueBetting(
            config_of("kelly_value_betting", kelly_params()), VENUE, model_source=FixedModelSource()
        )
        bot.on_market(value_market("m1"))
        book(bot, "0.29", "0.31")  # mid 0.30 when the forecast arrives
        (buy,) = bot.on_signal(model_forecast("0.60", asset="no1"))  # YES worth 0.40
        bot.on_execution_report(report(buy, "cancel"))
        return book(bot, bid, ask, ts=T0 + 1)

    assert len(after_move("0.26", "0.28")) == 1  # mid 0.27: 0.03 away, within forecast_max_drift 0.05
    assert after_move("0.20", "0.22") == []  # mid 0.21: 0.09 away: made for a price that is gone


def test_kelly_counts_the_held_position_and_the_equity_after_the_fill() -> None:
    bot = new_bot(0.40)
    (buy,) = book(bot, "0.29", "0.30", size="60")  # the best ask shows 60 shares
    assert buy.size == D(60)
    fee = D(60) * FEE * D("0.30") * D("0.70")  # 0.378
    bot.on_execution_report(report(buy, "fill", "60", "0.30", str(fee)))
    assert bot.cash == D(1000) - D(18) - fee
    (more,) = book(bot, "0.29", "0.30", ts=T0 + 1)
    equity = D(1000) - D(18) - fee + D(60) * D("0.295")  # cash + 60 shares at the mid
    assert bot.equity() == equity
    assert more.size == kelly_shares(D("0.40"), D("0.30"), equity, held=D(60))


def test_never_adds_past_the_kelly_target() -> None:
    bot = new_bot(0.40)
    (buy,) = book(bot, "0.29", "0.30")
    bot.on_execution_report(report(buy, "fill", str(buy.size), "0.30"))
    assert book(bot, "0.29", "0.30", ts=T0 + 1) == []  # the target is held
    assert book(bot, "0.30", "0.31", ts=T0 + 2) == []  # a higher price: a smaller target, still no add


def test_exits_when_the_edge_is_gone() -> None:
    bot = new_bot(0.40)
    (buy,) = book(bot, "0.29", "0.30")
    bot.on_execution_report(report(buy, "fill", "100", "0.30"))
    # bid 0.40 net of fee: 0.40 - 0.03 x 0.40 x 0.60 = 0.3928 < p 0.40: holding is still worth more
    assert [i.side for i in book(bot, "0.40", "0.41", ts=T0 + 1)] == []
    # bid 0.42 net of fee: 0.42 - 0.007308 = 0.412692 > p: sell everything at the bid
    (sell,) = book(bot, "0.42", "0.43", ts=T0 + 2)
    assert legs([sell]) == [("place", "yes1", "SELL", D("0.42"), D(100), "FAK")]
    assert sell.cause is not None and sell.cause.note.startswith("edge gone")


def test_settles_at_resolution() -> None:
    bot = new_bot(0.40)
    (buy,) = book(bot, "0.29", "0.30")
    bot.on_execution_report(report(buy, "fill", "100", "0.30", "0.63"))
    bot.on_market(value_market("m1", closed=True, winning_asset_id="yes1"))
    assert bot.held("yes1") == 0 and bot.spent == {}
    assert bot.cash == D(1000) - D(30) - D("0.63") + D(100)


def test_reloads_a_newly_promoted_model_while_running(tmp_path: Path) -> None:
    assert promote(tmp_path, constant_model(0.40)) == "v0001"
    bot = KellyValueBetting(
        config_of("kelly_value_betting", kelly_params()), VENUE, model_source=ModelStoreSource(tmp_path)
    )
    bot.on_market(value_market("m1"))
    (first,) = book(bot, "0.29", "0.30")
    assert first.cause is not None and first.cause.model_version == "v0001"
    bot.on_execution_report(report(first, "cancel"))  # nothing filled

    promote(tmp_path, constant_model(0.45), promote=False)  # v0002: trained, not promoted
    promote(tmp_path, constant_model(0.38))  # v0003: promoted
    (before,) = book(bot, "0.29", "0.30", ts=T0 + 1_000)  # before the next check: still v0001
    assert before.cause is not None and before.cause.model_version == "v0001"
    bot.on_execution_report(report(before, "cancel", ts_ms=T0 + 1_000))

    (after,) = book(bot, "0.29", "0.30", ts=T0 + 60_000)  # the reload timer is due
    assert after.cause is not None
    assert (after.cause.model_version, after.probability) == ("v0003", D("0.38"))
    assert after.size == kelly_shares(D("0.38"), D("0.30"), D(1000))


def test_the_model_pointer_is_read_again_only_when_a_promotion_replaced_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    from pets.pipelines import forecasts

    reads: list[str] = []

    def counting_open(file: str, *args: object, **kwargs: object) -> object:
        reads.append(str(file))
        return builtins.open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(forecasts, "open", counting_open, raising=False)
    source = ModelStoreSource(tmp_path)
    assert source.current_version() is None  # nothing promoted yet
    promote(tmp_path, constant_model(0.40))
    # three reload checks, the pointer unchanged: one read
    assert [source.current_version() for _ in range(3)] == ["v0001"] * 3
    assert len(reads) == 1 and reads[0].endswith("current")
    promote(tmp_path, constant_model(0.45), promote=False)  # a version saved, the pointer untouched
    assert source.current_version() == "v0001" and len(reads) == 1
    promote(tmp_path, constant_model(0.38))  # v0003 promoted: the pointer replaced
    assert source.current_version() == "v0003" and len(reads) == 2
    (tmp_path / "calibration" / "current").unlink()
    assert source.current_version() is None
    # a source pickled before the stamp existed reads the pointer at its first check
    promote(tmp_path, constant_model(0.38))
    old = pickle.loads(pickle.dumps(ModelStoreSource(tmp_path)))
    assert old.current_version() == "v0004"


def test_a_market_past_its_end_date_is_not_traded() -> None:
    bot = new_bot(0.40)
    assert book(bot, "0.29", "0.30", ts=T0 + 31 * DAY_MS) == []


def test_the_registry_builds_both_bots_on_the_model_store_of_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote(tmp_path / "models", constant_model(0.40))
    monkeypatch.setenv("PETS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PETS_CONFIG_DIR", str(CONFIG_DIR))
    on = msgspec.structs.replace(
        CONFIG,
        bots=tuple(
            msgspec.structs.replace(b, enabled=b.strategy in ("kelly_value_betting", "long_term_value"))
            for b in CONFIG.bots
        ),
    )
    bots = build_bots(on)
    assert [(type(b).__name__, b.model_version) for b in bots] == [  # type: ignore[attr-defined]
        ("KellyValueBetting", "v0001"),
        ("LongTermValue", "v0001"),
    ]


def test_survives_a_recovery_snapshot() -> None:
    bot = new_bot(0.40)
    (buy,) = book(bot, "0.29", "0.30", size="60")
    bot.on_execution_report(report(buy, "fill", "60", "0.30"))
    restored = pickle.loads(pickle.dumps(bot))
    assert not restored.bound
    restored.bind(bot.config, VENUE)
    assert (restored.cash, restored.held("yes1"), restored.model_version) == (bot.cash, D(60), "v0001")
    (more,) = book(restored, "0.29", "0.30", ts=T0 + 1)
    assert more.size == kelly_shares(D("0.40"), D("0.30"), bot.equity(), held=D(60))


def test_a_fill_of_an_order_no_longer_tracked_still_moves_the_cash() -> None:
    bot = new_bot(0.40)
    (buy,) = book(bot, "0.29", "0.30")
    bot.on_execution_report(report(buy, "cancel"))  # gone here ...
    bot.on_execution_report(report(buy, "fill", "10", "0.30", "0.06", n=2))  # ... but it had filled
    assert (bot.held("yes1"), bot.cash, bot.spent) == (D(10), D(1000) - D(3) - D("0.06"), {"yes1": D("3.06")})


def test_an_unreadable_promoted_version_keeps_the_current_model(tmp_path: Path) -> None:
    promote(tmp_path, constant_model(0.40))
    source = ModelStoreSource(tmp_path)
    bot = KellyValueBetting(config_of("kelly_value_betting", kelly_params()), VENUE, model_source=source)
    assert bot.model_version == "v0001"
    version = promote(tmp_path, constant_model(0.45))
    (tmp_path / "calibration" / version / "model.json").write_text("{not json")
    assert not bot.reload_model()
    assert bot.model_version == "v0001" and bot.model == constant_model(0.40)
