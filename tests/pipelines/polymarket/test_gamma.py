"""GammaClient against the local Gamma server; parse_market on real Gamma objects."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pets.pipelines.polymarket.gamma import GammaClient, MarketParseError, parse_market
from pets.pipelines.venue_sim.gamma_server import load_markets, serve_gamma

EXAMPLES = Path("polymarket/rest_examples/more")


def _example(shared_data: Path, name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((shared_data / EXAMPLES / name).read_text())
    return result


@pytest.fixture(scope="module")
def markets_2024(shared_data: Path) -> list[dict[str, Any]]:
    return load_markets(shared_data / "polymarket/gamma/markets_raw_2024.jsonl.gz")


@pytest.mark.shared_data
def test_offset_paging_returns_every_market_of_the_file_in_order(markets_2024: list[dict[str, Any]]) -> None:
    with serve_gamma(markets_2024) as gamma:
        got = list(GammaClient(gamma.url, page_size=500).iter_markets())
        pages = len(gamma.requests)
    assert [m["id"] for m in got] == [m["id"] for m in markets_2024]
    assert got == markets_2024
    assert pages == -(-len(markets_2024) // 500) + 1  # full pages, then the empty page that ends it


@pytest.mark.shared_data
def test_keyset_paging_and_filters_match_the_raw_fields(markets_2024: list[dict[str, Any]]) -> None:
    neg_risk_open = [m for m in markets_2024 if m.get("closed") is False]
    with serve_gamma(markets_2024) as gamma:
        client = GammaClient(gamma.url, paging="keyset")
        assert [m["id"] for m in client.iter_markets()] == [m["id"] for m in markets_2024]
        assert [m["id"] for m in client.iter_markets(closed=False)] == [m["id"] for m in neg_risk_open]
        picked = markets_2024[100:103]
        by_condition = GammaClient(gamma.url).iter_markets(condition_ids=[m["conditionId"] for m in picked])
        assert [m["id"] for m in by_condition] == [m["id"] for m in picked]
        token = json.loads(picked[1]["clobTokenIds"])[1]
        by_token = GammaClient(gamma.url).iter_markets(clob_token_ids=[token])
        assert [m["id"] for m in by_token] == [picked[1]["id"]]


@pytest.mark.shared_data
def test_every_real_gamma_market_parses(shared_data: Path, markets_2024: list[dict[str, Any]]) -> None:
    older = load_markets(shared_data / "polymarket/gamma/markets_raw_2020_2022.jsonl.gz")
    resolved = 0
    for raw in markets_2024 + older:
        info = parse_market(raw)
        assert info.condition_id == raw["conditionId"]
        assert len(info.token_ids) in (0, len(info.outcomes))
        if info.winning_asset_id is not None:
            resolved += 1
            winner = info.token_ids.index(info.winning_asset_id)
            assert json.loads(raw["outcomePrices"])[winner] == "1"
        if raw.get("negRisk"):
            assert info.neg_risk and info.neg_risk_market_id == raw["negRiskMarketID"]
    assert resolved > len(markets_2024) // 2  # the 2024 file is almost all resolved markets


@pytest.mark.shared_data
def test_parse_open_crypto_market_with_fees(shared_data: Path) -> None:
    raw = _example(shared_data, "gamma_market.json")
    info = parse_market(raw)
    assert info.token_ids == tuple(json.loads(raw["clobTokenIds"]))
    assert info.outcomes == ("Up", "Down")
    assert info.tick_size == Decimal("0.01") and info.min_order_size == Decimal("5")
    assert (info.active, info.closed, info.accepting_orders) == (True, False, True)
    assert info.outcome_prices == (Decimal("0.505"), Decimal("0.495"))
    assert info.winning_asset_id is None
    assert info.fee_rate == Decimal("0.072")  # feeType crypto_fees; VENUE.md fee table
    assert info.end_date_ms == 1773307500000  # 2026-03-12T09:25:00Z


@pytest.mark.shared_data
def test_parse_resolution_from_outcome_prices(shared_data: Path) -> None:
    lost_yes = _example(shared_data, "gamma_market_closed_binary_accepting_false.json")
    info = parse_market(lost_yes)
    assert info.closed and not info.accepting_orders
    assert info.winning_asset_id == json.loads(lost_yes["clobTokenIds"])[1]  # prices ["0", "1"]
    sports = _example(shared_data, "gamma_market_sports_market_money_line.json")
    assert parse_market(sports).winning_asset_id == json.loads(sports["clobTokenIds"])[0]
    assert parse_market(sports).fee_rate == Decimal("0.03")
    for unresolved in (
        "gamma_market_closed_zero_zero_legacy.json",
        "gamma_market_closed_nonbinary_legacy.json",
    ):
        legacy = parse_market(_example(shared_data, unresolved))
        assert legacy.winning_asset_id is None
        assert legacy.tick_size == Decimal("0.01")  # legacy markets carry no tick size: venue default


def _synthetic(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": str(1000 + i),
            "conditionId": f"0x{i:064x}",
            "clobTokenIds": json.dumps([str(10 * i + 1), str(10 * i + 2)]),
            "outcomes": '["Yes", "No"]',
            "closed": i % 3 == 0,
            "active": True,
        }
        for i in range(n)
    ]


def test_client_backs_off_on_429_and_pages_a_capped_limit() -> None:
    markets = _synthetic(1234)
    with serve_gamma(markets) as gamma:
        gamma.inject_errors(429, 2)
        got = list(GammaClient(gamma.url, page_size=5000, backoff_s=0.01).iter_markets(closed=True))
        assert any("limit=5000" in r for r in gamma.requests)
    assert [m["id"] for m in got] == [m["id"] for m in markets if m["closed"]]


def test_bad_filter_is_a_clear_error() -> None:
    from pets.pipelines.polymarket.http import VenueHttpError

    with serve_gamma(_synthetic(3)) as gamma, pytest.raises(VenueHttpError, match="closed='maybe'"):
        list(GammaClient(gamma.url).iter_markets(closed="maybe"))


def test_malformed_token_ids_name_market_and_field() -> None:
    raw = {**_synthetic(1)[0], "clobTokenIds": "[1, 2"}
    with pytest.raises(MarketParseError, match=r"gamma market 1000: clobTokenIds"):
        parse_market(raw)


@pytest.mark.shared_data
def test_events_carry_their_markets(markets_2024: list[dict[str, Any]]) -> None:
    expected: dict[str, list[str]] = {}
    for market in markets_2024:
        for event in market.get("events") or []:
            expected.setdefault(str(event["id"]), []).append(market["id"])
            break
    with serve_gamma(markets_2024) as gamma:
        events = list(GammaClient(gamma.url).iter_events())
        keyset = list(GammaClient(gamma.url, paging="keyset").iter_events())
    assert {e["id"]: [m["id"] for m in e["markets"]] for e in events} == expected
    assert [e["id"] for e in keyset] == [e["id"] for e in events]
    assert any(len(e["markets"]) > 1 for e in events)  # neg-risk groups


@pytest.mark.parametrize("tick", [0.00001, -0.01, 0.5, 0, 0.0002, "abc"])
def test_a_tick_size_off_the_venue_ticks_is_a_parse_error(tick: object) -> None:
    raw = {**_synthetic(1)[0], "orderPriceMinTickSize": tick}
    with pytest.raises(MarketParseError, match=r"gamma market 1000: orderPriceMinTickSize"):
        parse_market(raw)


@pytest.mark.parametrize("tick", [0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001])
def test_every_venue_tick_size_is_kept_exactly(tick: float) -> None:
    raw = {**_synthetic(1)[0], "orderPriceMinTickSize": tick}
    assert parse_market(raw).tick_size == Decimal(str(tick))
