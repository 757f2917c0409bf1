"""The esports flow keyed by match: one key links each match to its markets, the match keys keep the
series and price the events; two workers publish what one does, in order per market."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from pets.flows.esports import build_flow
from pets.flows.trading_io import Routed
from pets.pipelines.esports import winmodel as wm
from pets.schemas.codec import encode
from pets.schemas.signals import EsportsEvent, GameSnapshot, Signal, TeamState
from pets.settings import Settings, project_root
from venue_factories import market

D = Decimal
TEAMS = {"m1": ("Alpha", "Bravo"), "m2": ("Charlie", "Delta")}


def _model_store(state_dir: Path) -> None:
    """A promoted esports_win model without an intercept: an even game is 0.5."""
    model = wm.WinModel(
        features=("gold_diff",), weights=(0.0, 1.0), means={"gold_diff": 0.0}, scales={"gold_diff": 2500.0},
        reference_total_gold=33_000.0, l2=1.0,
    )  # fmt: skip
    folder = state_dir / "models" / wm.MODEL_NAME
    (folder / "v1").mkdir(parents=True)
    (folder / "v1" / "model.json").write_bytes(wm.model_to_json(model))
    (folder / "current").write_text("v1")


def _event(match: str, n: int, kind: str, game: int, blue_gold: int) -> KafkaSourceMessage[Any, Any]:
    snapshot = GameSnapshot(
        state="in_game", blue=TeamState(team="100", gold=blue_gold), red=TeamState(team="200", gold=20_000)
    )
    event = EsportsEvent(
        event_id=f"{match}-e{n}", match_id=match, game="lol", event_type=kind, game_time_ms=600_000 + n,
        team="100", payload={"teams": dict(zip(("100", "200"), TEAMS[match], strict=True)), "best_of": 3},
        received_ns=n, game_number=game, snapshot=snapshot,
    )  # fmt: skip
    return KafkaSourceMessage(key=match.encode(), value=encode(event), topic="esports.event")


def _inputs() -> list[KafkaSourceMessage[Any, Any]]:
    markets = [
        market(f"{m}s", (f"{m}s-a", f"{m}s-b"), category="esports", question=f"LoL: {a} vs {b} (BO3)",
               outcomes=(a, b))
        for m, (a, b) in TEAMS.items()
    ] + [
        market(f"{m}g1", (f"{m}g1-a", f"{m}g1-b"), category="esports",
               question=f"LoL: {a} vs {b} - Game 1 Winner", outcomes=(a, b))
        for m, (a, b) in TEAMS.items()
    ]  # fmt: skip
    out = [
        KafkaSourceMessage(key=i.condition_id.encode(), value=encode(i), topic="md.markets") for i in markets
    ]
    for n in range(6):  # the two matches' events interleaved: game 1 in play, won by blue, game 2 even
        for match in TEAMS:
            kind, game = ("kill", 1) if n < 3 else ("game_end", 1) if n == 3 else ("kill", 2)
            out.append(_event(match, n, kind, game, 21_000 + 1000 * n if n < 3 else 20_000))
    return out


def _signals(settings: Settings, workers: int) -> dict[str, list[Signal]]:
    routed: list[Routed] = []
    flow = build_flow(settings, TestingSource(_inputs()), TestingSink(routed))
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    by_market: dict[str, list[Signal]] = {}
    for item in routed:
        assert item.topic == "signal.esports", item
        by_market.setdefault(item.message.market, []).append(item.message)
    return by_market


def test_two_workers_publish_the_signals_of_one_in_order_per_market(tmp_path: Path) -> None:
    settings = replace(Settings(config_dir=project_root() / "config", topic_prefix=""), state_dir=tmp_path)
    _model_store(tmp_path)
    one, two = _signals(settings, 1), _signals(settings, 2)
    assert sorted(one) == ["m1g1", "m1s", "m2g1", "m2s"]
    assert two == one
    for match in TEAMS:
        series, game = one[f"{match}s"], one[f"{match}g1"]
        # 3 kills of game 1, its end, 2 kills of game 2 (no game-2 market): each priced on the series
        assert len(series) == 6 and len(game) == 4
        assert game[-1].probability is None and game[-1].rationale == "game 1 ended"
        # blue ahead and gaining in game 1: its game chance rises
        assert game[0].probability is not None and game[2].probability is not None
        assert D("0.5") < game[0].probability < game[2].probability
        # 1-0 up in a best of 3, the next games even: 1 - 0.5 x 0.5 = 0.75, after the end and on
        assert [s.probability for s in series[3:]] == [D("0.75")] * 3
        assert {s.asset_id for s in series} == {f"{match}s-a"}
