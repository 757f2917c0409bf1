"""Bots 9 and 10 in the Bytewax bots flow: built from the config, on the model store of the state dir, and
their intents say which model version (or fair value) made them."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from pets.assets.resources import ModelStoreResource
from pets.flows.bots import build_flow
from pets.flows.trading_io import Routed
from pets.pipelines.calibration import CalibrationModel, model_to_json
from pets.schemas.codec import encode
from pets.schemas.config import PetsConfig, load_config
from pets.schemas.orders import OrderIntent
from pets.settings import Settings
from venue_factories import T0, market, tob

PREFIX = "unit."
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DAY_MS = 86_400_000


def only(*names: str) -> PetsConfig:
    shipped = load_config(CONFIG_DIR)
    venue = msgspec.structs.replace(shipped.system.venue, fee_rates={"default": D("0.03")})
    bots = tuple(msgspec.structs.replace(b, enabled=b.name in names) for b in shipped.bots)
    return msgspec.structs.replace(
        shipped, system=msgspec.structs.replace(shipped.system, venue=venue), bots=bots
    )


def msg(topic: str, message: Any) -> KafkaSourceMessage[bytes, bytes]:
    return KafkaSourceMessage(
        key=None, value=encode(message), topic=f"{PREFIX}{topic}", offset=0, partition=0
    )  # type: ignore[arg-type]


def says(p: float) -> CalibrationModel:
    import math

    names = ("logit_price", "log_horizon_days", "log_volume")
    return CalibrationModel(
        features=("intercept", *names),
        weights=(math.log(p / (1 - p)), 0.0, 0.0, 0.0),
        means=dict.fromkeys(names, 0.0),
        scales=dict.fromkeys(names, 1.0),
        categories=("election",),
        l2=1.0,
    )


def test_value_bots_in_the_flow_name_the_promoted_model(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStoreResource(root=str(tmp_path / "models"))
    store.save("calibration", model_to_json(says(0.40)), {}, promote=True, reason="test")
    monkeypatch.setenv("PETS_STATE_DIR", str(tmp_path))  # where the bots find the model store
    monkeypatch.setenv("PETS_CONFIG_DIR", str(CONFIG_DIR))
    config = only("kelly_value_betting", "long_term_value")
    items = [
        msg("md.markets", market("m1", ("y1", "n1"), end_date_ms=T0 + 20 * DAY_MS)),
        msg("md.tob", tob("y1", "m1", "0.29", "0.30", T0, ask_size="1000")),
    ]
    out: list[Routed] = []
    run_main(
        build_flow(
            dataclasses.replace(settings, topic_prefix=PREFIX),
            TestingSource(items),
            TestingSink(out),
            config=config,
        )
    )
    intents: list[OrderIntent] = [r.message for r in out if r.topic == "order.intent"]  # type: ignore[misc]
    assert sorted(i.bot_id for i in intents) == ["bot_09", "bot_10"]
    for intent in intents:
        assert (intent.side, intent.price, intent.order_type) == ("BUY", D("0.30"), "FAK")
        assert intent.cause is not None
        assert (intent.cause.source, intent.cause.model_version, intent.cause.probability) == (
            "model",
            "v0001",
            D("0.4"),
        )
