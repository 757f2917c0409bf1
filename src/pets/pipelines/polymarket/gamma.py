"""Gamma REST client and the mapping of a raw Gamma market to our `MarketInfo`.

Gamma quirks handled here (and only here): `clobTokenIds`, `outcomes` and `outcomePrices` are
JSON-encoded strings inside the object (some older payloads carry real lists); numbers such as
`orderPriceMinTickSize` are JSON floats (converted through their shortest repr so 0.001 stays
Decimal("0.001")); legacy AMM-era markets lack tick size, min size and token ids; the category sits
on the market, on its event, or nowhere. Resolution is read from `outcomePrices`: a closed market
whose prices are exactly one "1" and the rest "0" resolved to that outcome's token.

Paging: `/markets` and `/events` page with limit/offset; `/markets/keyset` and `/events/keyset`
page with `after_cursor` / `next_cursor` (absent on the last page). The venue may cap `limit`
below what was asked, so offset paging advances by the rows actually returned and stops on an
empty page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pets.pipelines.polymarket.http import JsonHttpClient, QueryValue
from pets.schemas.market_data import MarketInfo
from pets.venue.order_book import VENUE_TICKS
from pets.venue.units import BadValue, tick_units

Paging = Literal["offset", "keyset"]

DEFAULT_TICK_SIZE = Decimal("0.01")
DEFAULT_MIN_ORDER_SIZE = Decimal("5")
DEFAULT_CATEGORY = "default"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Taker fee rate by Gamma `feeType` prefix (fee = C x rate x p x (1 - p)); VENUE.md "Fees and rewards".
FEE_RATE_BY_FEE_TYPE_PREFIX: tuple[tuple[str, Decimal], ...] = (
    ("crypto", Decimal("0.072")),
    ("sports", Decimal("0.03")),
    ("geopolitics", Decimal("0")),
    ("politics", Decimal("0.04")),
)


class MarketParseError(ValueError):
    """A raw Gamma market that cannot become a MarketInfo; the message names the market and field."""


@dataclass(frozen=True, slots=True)
class GammaClient:
    """Reads markets and events from Gamma (or a local server speaking the same protocol)."""

    base_url: str
    page_size: int = 500
    keyset_page_size: int = 100
    paging: Paging = "offset"
    timeout_s: float = 10.0
    backoff_s: float = 0.5
    http: JsonHttpClient = field(init=False)

    def __post_init__(self) -> None:
        http = JsonHttpClient(self.base_url, timeout_s=self.timeout_s, backoff_s=self.backoff_s)
        object.__setattr__(self, "http", http)

    def iter_markets(self, **filters: QueryValue | None) -> Iterator[dict[str, Any]]:
        """Every raw market matching the filters (e.g. closed=False, condition_ids=[...]), all pages."""
        yield from self._iter("/markets", "markets", filters)

    def iter_events(self, **filters: QueryValue | None) -> Iterator[dict[str, Any]]:
        """Every raw event (with its `markets`) matching the filters, all pages."""
        yield from self._iter("/events", "events", filters)

    def _iter(
        self, path: str, key: str, filters: Mapping[str, QueryValue | None]
    ) -> Iterator[dict[str, Any]]:
        if self.paging == "keyset":
            yield from self._iter_keyset(f"{path}/keyset", key, filters)
        else:
            yield from self._iter_offset(path, filters)

    def _iter_offset(self, path: str, filters: Mapping[str, QueryValue | None]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.http.get(path, {**filters, "limit": self.page_size, "offset": offset})
            if not isinstance(page, list):
                raise MarketParseError(f"{path}: expected a JSON array page, got {type(page).__name__}")
            if not page:
                return
            yield from page
            offset += len(page)

    def _iter_keyset(
        self, path: str, key: str, filters: Mapping[str, QueryValue | None]
    ) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            body = self.http.get(path, {**filters, "limit": self.keyset_page_size, "after_cursor": cursor})
            if not isinstance(body, dict) or not isinstance(body.get(key), list):
                raise MarketParseError(f"{path}: expected an object with a {key!r} array")
            yield from body[key]
            next_cursor = body.get("next_cursor")
            if not next_cursor or not body[key]:
                return
            if next_cursor == cursor:
                raise MarketParseError(f"{path}: next_cursor did not advance ({cursor!r}); refusing to loop")
            cursor = next_cursor


def parse_market(raw: Mapping[str, Any]) -> MarketInfo:
    """Our MarketInfo from one raw Gamma market; raises MarketParseError naming the market and field."""
    market_id = str(raw.get("id", ""))
    where = f"gamma market {market_id or '?'}"
    condition_id = raw.get("conditionId")
    if not isinstance(condition_id, str) or not condition_id:
        raise MarketParseError(f"{where}: conditionId missing")
    token_ids = tuple(str(t) for t in _json_list(raw, "clobTokenIds", where))
    outcomes = tuple(str(o) for o in _json_list(raw, "outcomes", where))
    if token_ids and outcomes and len(token_ids) != len(outcomes):
        raise MarketParseError(f"{where}: {len(token_ids)} clobTokenIds but {len(outcomes)} outcomes")
    prices_raw = _json_list(raw, "outcomePrices", where)
    outcome_prices = tuple(_decimal(p, "outcomePrices", where) for p in prices_raw) if prices_raw else None
    closed = bool(raw.get("closed") or False)
    return MarketInfo(
        condition_id=condition_id,
        market_id=market_id,
        question=str(raw.get("question") or ""),
        slug=str(raw.get("slug") or ""),
        category=_category(raw),
        token_ids=token_ids,
        outcomes=outcomes,
        neg_risk=bool(raw.get("negRisk") or False),
        neg_risk_market_id=raw.get("negRiskMarketID") or None,
        tick_size=_tick_size(raw, where),
        min_order_size=_optional_decimal(raw, "orderMinSize", where) or DEFAULT_MIN_ORDER_SIZE,
        end_date_ms=_end_date_ms(raw, where),
        active=bool(raw.get("active") or False),
        closed=closed,
        accepting_orders=bool(raw.get("acceptingOrders") or False),
        outcome_prices=outcome_prices,
        winning_asset_id=winning_asset_id(token_ids, outcome_prices) if closed else None,
        fee_rate=fee_rate(raw),
    )


def winning_asset_id(token_ids: tuple[str, ...], outcome_prices: tuple[Decimal, ...] | None) -> str | None:
    """The token that resolved to 1 when the prices are exactly one 1 and zeros; None otherwise."""
    if not outcome_prices or len(outcome_prices) != len(token_ids):
        return None
    winners = [i for i, p in enumerate(outcome_prices) if p == 1]
    if len(winners) != 1 or any(p != 0 for i, p in enumerate(outcome_prices) if i != winners[0]):
        return None
    return token_ids[winners[0]]


def fee_rate(raw: Mapping[str, Any]) -> Decimal | None:
    """Taker fee rate: 0 when fees are disabled, by fee type when known, None when it cannot be told."""
    if not raw.get("feesEnabled"):
        return Decimal("0")
    fee_type = str(raw.get("feeType") or "").lower()
    for prefix, rate in FEE_RATE_BY_FEE_TYPE_PREFIX:
        if fee_type.startswith(prefix):
            return rate
    return None


def _category(raw: Mapping[str, Any]) -> str:
    candidates = [raw.get("category")]
    events = raw.get("events")
    if isinstance(events, list) and events and isinstance(events[0], dict):
        candidates.append(events[0].get("category"))
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return DEFAULT_CATEGORY


def _json_list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MarketParseError(f"{where}: {key} is not a JSON-encoded list: {exc}") from None
    if not isinstance(value, list):
        raise MarketParseError(f"{where}: {key} should be a list, got {type(value).__name__}")
    return value


def _decimal(value: Any, key: str, where: str) -> Decimal:
    try:
        result = Decimal(str(value))  # str() of a float is its shortest repr: 0.001 -> "0.001"
    except InvalidOperation:
        raise MarketParseError(f"{where}: {key}={value!r} is not a number") from None
    if not result.is_finite():
        raise MarketParseError(f"{where}: {key}={value!r} is not finite")
    return result


def _optional_decimal(raw: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = raw.get(key)
    return None if value is None or value == "" else _decimal(value, key, where)


def _tick_size(raw: Mapping[str, Any], where: str) -> Decimal:
    """The stated tick size when it is one of the venue's ticks (a book cannot work on another grid)."""
    tick = _optional_decimal(raw, "orderPriceMinTickSize", where)
    if tick is None:
        return DEFAULT_TICK_SIZE
    try:
        units = tick_units(str(tick))
    except BadValue as exc:
        raise MarketParseError(f"{where}: orderPriceMinTickSize: {exc}") from None
    if units not in VENUE_TICKS:
        raise MarketParseError(
            f"{where}: orderPriceMinTickSize={tick} is not a venue tick size (0.1, 0.01, 0.005, 0.0025, "
            "0.001, 0.0001)"
        )
    return tick


def _end_date_ms(raw: Mapping[str, Any], where: str) -> int | None:
    value = raw.get("endDate") or raw.get("endDateIso")
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MarketParseError(f"{where}: endDate={value!r} is not an ISO date") from None
    if parsed.tzinfo is None:  # a bare date ("2024-01-31") is midnight UTC on the venue
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)
