"""Alternative-data wire messages (news, esports, whale fills, rankings) and the signals derived from them."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any, Literal

import msgspec

from pets.schemas.orders import Side

# "data_api": a fill the Data API reported (it names no exchange, log index nor block)
Exchange = Literal["ctf_v1", "negrisk_v1", "ctf_v2", "negrisk_v2", "data_api"]
SignalSource = Literal["news", "esports", "whale", "model"]


def news_item_id(feed_url: str, guid: str) -> str:
    """Stable id of a feed entry, so a re-polled feed yields the same ids (dedup downstream)."""
    return hashlib.blake2b(f"{feed_url}|{guid}".encode(), digest_size=8).hexdigest()


class NewsItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    item_id: str
    source: str
    feed_url: str
    title: str
    summary: str
    link: str
    published_ms: int | None
    received_ns: int  # first seen by us: received - published is the source's latency
    tags: tuple[str, ...] = ()
    story_id: str | None = None  # the same story from several sources shares one id (its first item's)
    sighting: int = 1  # this item is the story's n-th sighting (1: the first source to carry it)


class TeamState(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One team's counters in a game snapshot (what every game's feed reports, in its own units)."""

    team: str  # the feed's team id or code
    gold: int = 0
    kills: int = 0
    towers: int = 0
    inhibitors: int = 0
    barons: int = 0
    dragons: int = 0


class GameSnapshot(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The state of one game after an event: `blue` and `red` are the two sides (radiant/dire in Dota 2,
    attackers/defenders in VALORANT); `state` is in_game, paused or finished; `winner` the winning side's
    team once finished and known."""

    state: str
    blue: TeamState
    red: TeamState
    winner: str | None = None


EsportsEventType = Literal[
    "game_start", "kill", "tower", "inhibitor", "dragon", "baron", "herald", "round", "pause", "resume",
    "game_end", "stall", "recovered",
]  # fmt: skip


class EsportsEvent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One game event (topic esports.event, keyed by match), the same across games. `game_time_ms` is the
    game clock; `feed_lag_ms` how far the feed ran behind when the frame arrived (received - frame time);
    `snapshot` the game's state after the event. `stall` says the feed stopped delivering (no trading on
    that match until `recovered`)."""

    event_id: str
    match_id: str
    game: str
    event_type: str
    game_time_ms: int
    team: str | None
    payload: dict[str, Any]
    received_ns: int
    game_number: int = 1
    snapshot: GameSnapshot | None = None
    feed_lag_ms: int | None = None
    frame_ts_ms: int | None = None  # the feed's own time of the frame (rfc460Timestamp, ...)


class WalletFill(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tx_hash: str
    log_index: int
    block_number: int
    exchange: Exchange
    wallet: str
    counterparty: str | None
    asset_id: str
    side: Side
    price: Decimal
    shares: Decimal
    usdc: Decimal
    fee: Decimal
    ts_ms: int  # block time
    # the fast path (`pets chain follow --confirmations latest`): a fill of a block not yet finalized,
    # and its retraction (same tx hash and log index) when a reorg drops it
    confirmed: bool = True
    retracted: bool = False


class Signal(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A trading signal for one market (topics signal.<source>, keyed by market).

    `asset_id` + `side` give a direction (BUY the token: it should rise), `probability` the estimated
    win probability of `asset_id` (or of the market's first outcome when no asset is named);
    `ts_ns` is when it was created and `expires_ns` when it stops being worth acting on, both on
    the clock of the events it was derived from. A signal id is unique: a repeat is a duplicate.
    `reference_mid` is the mid of `asset_id` when the signal's source event was first seen (news: the
    item's first sighting), what a bot measures how far the book has moved since against.
    """

    signal_id: str
    source: SignalSource
    market: str
    asset_id: str | None
    side: Side | None
    probability: Decimal | None
    confidence: Decimal
    rationale: str
    ts_ns: int
    expires_ns: int | None = None
    model_version: str | None = None  # the model (and version) that produced `probability`
    feed_lag_ms: int | None = None  # live feeds: how far the source ran behind when the signal was made
    reference_mid: Decimal | None = None

    @property
    def topic(self) -> str:
        return f"signal.{self.source}"


class NewsAttention(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Attention features of one market when a news item about it arrives (topic features.news, keyed
    by market): news volume over rolling windows and against its own 24 h rate; the YES mid's move and
    realised volatility (stdev of its changes) over the last 5 minutes of md.tob; the shares traded
    (md.book last_trade_price) over 5 min and 1 h."""

    market: str
    ts_ns: int  # the item's first sighting
    news_5m: int
    news_1h: int
    news_24h: int
    news_5m_vs_24h: float  # items in 5 min / the 24 h rate per 5 min
    news_1h_vs_24h: float
    momentum_5m: Decimal | None  # YES mid now - 5 min ago
    realized_vol_5m: float | None
    volume_5m: Decimal  # shares traded (last_trade_price, both tokens) in the last 5 min
    volume_1h: Decimal
    volume_5m_vs_1h: float  # 5 min volume / the 1 h rate per 5 min (0 without trades)


class WhaleRanking(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ranking_date: str
    rank: int
    wallet: str
    pnl: Decimal
    volume: Decimal
    trades: int
    markets: int
    win_rate: Decimal
    roi: Decimal
